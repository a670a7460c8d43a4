"""Checking referrals: when one is created and before each of its actions earns rewards.

A check measures every signal (`signals.observe`), lets the program's policy judge them
(`policy.judge`), adjusts for what people already decided (trusted customers, an approved
or open review), stores the decision with its evidence, and acts on it:

- ALLOW: nothing.
- REVIEW: a review is opened (or the open one joined); the referral's held rewards, and the
  rewards this action is about to get, stay HELD until a reviewer decides.
- BLOCK: the referral is REJECTED and keeps no reward.

When a REVIEW or BLOCK rests on evidence other referrals share (the rest of a device farm,
of a ring, of a burst), those referrals are put in review too: the first account of a
farm looked clean when it arrived.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_ignoring_conflicts, insert_one, new_id, utcnow
from app.fraud import memory, signals
from app.fraud import policy as policies
from app.fraud.case import Case
from app.fraud.models import FraudDecision, FraudReview, ListKind, Outcome, ReviewStatus, Stage
from app.fraud.policy import Fired, Policy, Verdict
from app.fraud.signals import Observation
from app.merchants import audit
from app.referrals import notify
from app.referrals import status as referral_status
from app.referrals.models import Action, Customer, Referral, ReferralStatus
from app.rewards import lifecycle
from app.tenancy import get_scoped
from app.webhooks import events

logger = logging.getLogger("app.fraud")

MAX_RELATED = 50  # referrals put in review because of one decision


async def screen_new_referral(session: AsyncSession, *, referral: Referral, action: Action | None, at: datetime) -> Outcome:
    """Check a referral just created (by an action's code or link, or a claim)."""
    decision = await _check(session, referral, Stage.REFERRAL, action, at)
    return Outcome(decision.outcome)


async def screen_grants(session: AsyncSession, *, referral: Referral, action: Action) -> Outcome:
    """Check a referral again before `action` earns rewards: purchases bring new evidence
    (payment fingerprint, shipping address) and time brings velocity and farms."""
    decision = await _check(session, referral, Stage.REWARD, action, action.occurred_at)
    return Outcome(decision.outcome)


async def screen_again(session: AsyncSession, *, referral: Referral, at: datetime, stage: Stage) -> Outcome:
    """Check a referral again with what is known at `at`: before its rewards are cleared, or
    when new evidence about one of its customers arrived."""
    decision = await _check(session, referral, stage, None, at)
    return Outcome(decision.outcome)


async def _check(session: AsyncSession, referral: Referral, stage: Stage, action: Action | None, at: datetime) -> FraudDecision:
    policy = await policies.current_policy(session, merchant_id=referral.merchant_id, program_id=referral.program_id)
    referrer = await get_scoped(session, Customer, referral.referrer_id, referral.merchant_id)
    referee = await get_scoped(session, Customer, referral.referee_id, referral.merchant_id)
    assert referrer is not None and referee is not None  # the referral's merchant's customers
    case = Case(session, referral.merchant_id, referral.program_id, referral.id, referrer, referee, at)
    await case.prefetch()
    observations = await signals.observe(case)
    verdict = policies.judge(policy, observations)
    trusted = [
        role
        for role, customer in (("referrer", referrer), ("referee", referee))
        if any(e.kind == ListKind.TRUSTED_CUSTOMER and e.value == str(customer.id) for e in await case.list_entries())
    ]
    outcome, adjustments, review = await _adjusted(session, referral, stage, verdict, trusted)
    decision = await _store(session, referral, stage, action, policy, verdict, observations, outcome, adjustments)
    await _act(session, referral, decision, verdict, review)
    if outcome is not Outcome.ALLOW:
        await _flag_related(session, referral, verdict, policy.version)
        await memory.remember(session, referral, decision, verdict.fired_signals(), enabled=policy.setting(memory.SIGNAL).enabled)
    return decision


async def _adjusted(
    session: AsyncSession, referral: Referral, stage: Stage, verdict: Verdict, trusted: list[str]
) -> tuple[Outcome, list[str], FraudReview | None]:
    """The policy's outcome after what people decided: trust softens it (see
    `policy.trusted_outcome`), approved signals do not ask again, an open review keeps new
    rewards held."""
    outcome, adjustments = verdict.outcome, []
    reviews = (
        []
        if stage is Stage.REFERRAL
        else list(
            (
                await session.scalars(  # a new referral has none
                    select(FraudReview)
                    .where(FraudReview.merchant_id == referral.merchant_id, FraudReview.referral_id == referral.id)
                    .order_by(FraudReview.id)
                )
            ).all()
        )
    )
    open_review = next((r for r in reviews if r.status == ReviewStatus.OPEN), None)
    if trusted and outcome is not Outcome.ALLOW:
        softened = policies.trusted_outcome(outcome, verdict.fired_signals())
        if softened is not outcome:
            adjustments.append(f"{' and '.join(trusted)} trusted: {outcome.value} -> {softened.value}")
            outcome = softened
    if outcome is Outcome.REVIEW and open_review is None:
        approved = {s for r in reviews if r.status == ReviewStatus.APPROVED for s in r.signals}
        if approved and set(verdict.fired_signals()) <= approved:
            outcome = Outcome.ALLOW
            adjustments.append("these signals were approved in an earlier review: REVIEW -> ALLOW")
    if outcome is Outcome.ALLOW and open_review is not None:
        outcome = Outcome.REVIEW
        adjustments.append("a review of this referral is open: ALLOW -> REVIEW")
    return outcome, adjustments, open_review


async def _store(
    session: AsyncSession,
    referral: Referral,
    stage: Stage,
    action: Action | None,
    policy: Policy,
    verdict: Verdict,
    observations: list[Observation],
    outcome: Outcome,
    adjustments: list[str],
) -> FraudDecision:
    fired = {id(f.observation): f for f in verdict.fired}
    values = {
        "id": new_id(),
        "merchant_id": referral.merchant_id,
        "program_id": referral.program_id,
        "referral_id": referral.id,
        "action_id": action.id if action is not None else None,
        "review_id": None,
        "stage": stage.value,
        "outcome": outcome.value,
        "policy_outcome": verdict.outcome.value,
        "score": verdict.score,
        "policy_version": policy.version,
        "observations": [
            {**o.to_json(), "fired": id(o) in fired, "weight": fired[id(o)].weight if id(o) in fired else 0} for o in observations
        ],
        "adjustments": adjustments,
        "created_at": utcnow(),
    }
    return await insert_one(session, FraudDecision, values)


async def _act(
    session: AsyncSession, referral: Referral, decision: FraudDecision, verdict: Verdict, review: FraudReview | None
) -> None:
    outcome = Outcome(decision.outcome)
    if outcome is Outcome.BLOCK:
        await reject_referral(session, referral, reason="fraud: blocked", decision=decision)
    elif outcome is Outcome.REVIEW:
        await open_review(session, referral, decision, verdict.fired_signals(), existing=review)


async def reject_referral(session: AsyncSession, referral: Referral, *, reason: str, decision: FraudDecision | None) -> None:
    """REJECTED, and every reward it earned taken back; an open review is closed with it."""
    if not referral_status.reject(referral):
        return
    open_review = await session.scalar(
        select(FraudReview).where(
            FraudReview.merchant_id == referral.merchant_id,
            FraudReview.referral_id == referral.id,
            FraudReview.status == ReviewStatus.OPEN,
        )
    )
    if open_review is not None:  # nothing left to decide
        close_review(open_review, ReviewStatus.REJECTED, note=reason, actor=audit.SYSTEM)
    await session.flush()
    await lifecycle.take_back_referral_rewards(session, referral.id, merchant_id=referral.merchant_id, reason=reason)
    await notify.fraud_referral_rejected(session, referral, decision)


async def open_review(
    session: AsyncSession, referral: Referral, decision: FraudDecision, fired: list[str], *, existing: FraudReview | None
) -> FraudReview:
    """Join the referral's open review, or open one; hold its rewards either way."""
    review = existing
    if review is None:
        review = await session.scalar(
            select(FraudReview).where(
                FraudReview.merchant_id == referral.merchant_id,
                FraudReview.referral_id == referral.id,
                FraudReview.status == ReviewStatus.OPEN,
            )
        )
    opened = False
    if review is None:
        # One OPEN review per referral (a partial unique index): a concurrent check that
        # opened it first wins, and this one joins it.
        review = await session.scalar(
            insert_ignoring_conflicts(session, FraudReview)
            .values(
                id=new_id(),
                merchant_id=referral.merchant_id,
                program_id=referral.program_id,
                referral_id=referral.id,
                status=ReviewStatus.OPEN.value,
                score=decision.score,
                signals=sorted(set(fired)),
                opened_at=utcnow(),
            )
            .returning(FraudReview)
        )
        opened = review is not None
        if review is None:
            review = await session.scalar(
                select(FraudReview).where(
                    FraudReview.merchant_id == referral.merchant_id,
                    FraudReview.referral_id == referral.id,
                    FraudReview.status == ReviewStatus.OPEN,
                )
            )
            assert review is not None
    if not opened:
        review.score = max(review.score, decision.score)
        review.signals = sorted(set(review.signals) | set(fired))
    await session.flush()
    decision.review_id = review.id
    await lifecycle.hold_for_review(session, referral.id, merchant_id=referral.merchant_id)
    # Flagged after some of its rewards became spendable (late evidence, a related referral): take them back.
    await lifecycle.take_back_spendable(session, referral.id, merchant_id=referral.merchant_id, reason="fraud: under review")
    if opened:
        await notify.fraud_review_event(session, events.FRAUD_REVIEW_OPENED, review, [decision])
    return review


def close_review(review: FraudReview, status: ReviewStatus, *, note: str | None, actor: audit.Actor) -> None:
    review.status = status
    review.resolved_at = utcnow()
    review.resolved_by_key_id = actor.key_id
    review.resolved_by_admin_id = actor.admin_id
    review.resolution_note = note


async def _flag_related(session: AsyncSession, referral: Referral, verdict: Verdict, policy_version: int) -> None:
    """Put the referrals that share the fired evidence in review (see the module doc): each
    once, under the first signal that names it, unless it is rejected, already in review, or a
    reviewer approved that signal for it. Two queries for all of them."""
    named: dict[uuid.UUID, Fired] = {}
    for fired in verdict.fired:
        for related_id in fired.observation.related_referral_ids:
            named.setdefault(uuid.UUID(related_id), fired)
    named.pop(referral.id, None)
    if not named:
        return
    candidates = (
        await session.scalars(
            select(Referral)
            .where(
                Referral.id.in_(list(named)),
                Referral.merchant_id == referral.merchant_id,
                Referral.status != ReferralStatus.REJECTED,
            )
            .order_by(Referral.id)
            .limit(MAX_RELATED * 2)
        )
    ).all()
    reviews = (await session.scalars(select(FraudReview).where(FraudReview.referral_id.in_([c.id for c in candidates])))).all()
    flagged = 0
    for related in candidates:
        fired = named[related.id]
        signal = fired.observation.signal
        if any(
            r.referral_id == related.id
            and (r.status == ReviewStatus.OPEN or (r.status == ReviewStatus.APPROVED and signal in r.signals))
            for r in reviews
        ):
            continue
        if flagged >= MAX_RELATED:
            return
        evidence = Observation(
            signal,
            fired.observation.value,
            f"named by the check of referral {referral.id}: {fired.observation.evidence}",
            {**fired.observation.details, "named_by_referral": str(referral.id)},
        )
        decision = FraudDecision(
            merchant_id=related.merchant_id,
            program_id=related.program_id,
            referral_id=related.id,
            stage=Stage.RELATED.value,
            outcome=Outcome.REVIEW.value,
            policy_outcome=verdict.outcome.value,
            score=fired.weight,
            policy_version=policy_version,
            observations=[{**evidence.to_json(), "fired": True, "weight": fired.weight}],
            adjustments=[],
            created_at=utcnow(),
        )
        session.add(decision)
        await session.flush()
        await open_review(session, related, decision, [signal], existing=None)
        flagged += 1
