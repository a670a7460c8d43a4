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

from app.db import insert_at_commit, insert_many, insert_one, new_id, utcnow
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
    if outcome is Outcome.ALLOW:  # nothing in this transaction reads it back or points at it
        return await insert_at_commit(session, FraudDecision, values)
    return await insert_one(session, FraudDecision, values)  # its review or rejection points at it


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
    known = {referral.id: existing} if existing is not None else {}
    return (await open_reviews(session, [(referral, decision, fired)], known=known))[0]


async def open_reviews(
    session: AsyncSession,
    flagged: list[tuple[Referral, FraudDecision, list[str]]],
    *,
    known: dict[uuid.UUID, FraudReview] | None = None,
) -> list[FraudReview]:
    """`open_review` for each of `flagged` (a referral of one merchant, its stored decision, the
    signals it fired; `known`: open reviews already read, by referral), in the same few
    statements whatever their number. One flag puts up to MAX_RELATED + memory.MAX_HELD other
    referrals in review; one at a time, each cost a dozen statements, and a burst of flagged
    purchases slowed every purchase of the shop. Returns each one's review, in order."""
    merchant_id = flagged[0][0].merchant_id
    reviews = dict(known or {})
    unread = [referral.id for referral, _decision, _fired in flagged if referral.id not in reviews]
    if unread:
        reviews |= await _open_reviews_of(session, merchant_id, unread)
    # One OPEN review per referral (a partial unique index): where a concurrent check opened it
    # first, this one joins it. The first of `flagged` to name a referral opens its review.
    openers: dict[uuid.UUID, FraudDecision] = {}
    for referral, decision, _fired in flagged:
        if referral.id not in reviews and referral.id not in openers:
            openers[referral.id] = decision
    opened: dict[uuid.UUID, FraudDecision] = {}
    if openers:
        rows = [
            {
                "id": new_id(),
                "merchant_id": referral.merchant_id,
                "program_id": referral.program_id,
                "referral_id": referral.id,
                "status": ReviewStatus.OPEN.value,
                "score": decision.score,
                "signals": sorted(set(fired)),
                "opened_at": utcnow(),
            }
            for referral, decision, fired in flagged
            if openers.get(referral.id) is decision
        ]
        for review in await insert_many(session, FraudReview, rows, ignoring_conflicts=()):
            reviews[review.referral_id] = review
            opened[review.referral_id] = openers[review.referral_id]
        lost = [referral_id for referral_id in openers if referral_id not in opened]
        if lost:
            reviews |= await _open_reviews_of(session, merchant_id, lost)
    for referral, decision, fired in flagged:
        review = reviews[referral.id]
        if opened.get(referral.id) is not decision:  # joined
            review.score = max(review.score, decision.score)
            review.signals = sorted(set(review.signals) | set(fired))
        decision.review_id = review.id
    await session.flush()
    referral_ids = list(dict.fromkeys(referral.id for referral, _decision, _fired in flagged))
    await lifecycle.hold_for_review(session, referral_ids, merchant_id=merchant_id)
    # Flagged after some of its rewards became spendable (late evidence, a related referral): take them back.
    await lifecycle.take_back_spendable(session, referral_ids, merchant_id=merchant_id, reason="fraud: under review")
    for referral_id, decision in opened.items():
        await notify.fraud_review_event(session, events.FRAUD_REVIEW_OPENED, reviews[referral_id], [decision])
    return [reviews[referral.id] for referral, _decision, _fired in flagged]


async def _open_reviews_of(
    session: AsyncSession, merchant_id: uuid.UUID, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, FraudReview]:
    found = await session.scalars(
        select(FraudReview).where(
            FraudReview.merchant_id == merchant_id,
            FraudReview.referral_id.in_(referral_ids),
            FraudReview.status == ReviewStatus.OPEN,
        )
    )
    return {review.referral_id: review for review in found}


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
    chosen: list[tuple[Referral, str, int, dict]] = []
    for related in candidates:
        fired = named[related.id]
        signal = fired.observation.signal
        if any(
            r.referral_id == related.id
            and (r.status == ReviewStatus.OPEN or (r.status == ReviewStatus.APPROVED and signal in r.signals))
            for r in reviews
        ):
            continue
        if len(chosen) >= MAX_RELATED:
            break
        evidence = Observation(
            signal,
            fired.observation.value,
            f"named by the check of referral {referral.id}: {fired.observation.evidence}",
            {**fired.observation.details, "named_by_referral": str(referral.id)},
        )
        chosen.append((related, signal, fired.weight, {**evidence.to_json(), "fired": True, "weight": fired.weight}))
    await put_in_review(session, chosen, policy_outcome=verdict.outcome, policy_version=policy_version)


async def put_in_review(
    session: AsyncSession, flagged: list[tuple[Referral, str, int, dict]], *, policy_outcome: Outcome, policy_version: int
) -> None:
    """Referrals another check named, each with the signal that names it, its weight and its
    evidence as stored: their RELATED decisions in one INSERT, then their reviews together
    (`open_reviews`)."""
    if not flagged:
        return
    now = utcnow()
    decisions = await insert_many(
        session,
        FraudDecision,
        [
            {
                "id": new_id(),
                "merchant_id": referral.merchant_id,
                "program_id": referral.program_id,
                "referral_id": referral.id,
                "action_id": None,
                "review_id": None,
                "stage": Stage.RELATED.value,
                "outcome": Outcome.REVIEW.value,
                "policy_outcome": policy_outcome.value,
                "score": score,
                "policy_version": policy_version,
                "observations": [observation],
                "adjustments": [],
                "created_at": now,
            }
            for referral, _signal, score, observation in flagged
        ],
    )
    await open_reviews(
        session,
        [(referral, decision, [signal]) for (referral, signal, _score, _obs), decision in zip(flagged, decisions, strict=True)],
    )
