"""Referrer memory: once a referral is flagged (REVIEW or BLOCK) for fraud, its referrer's
other referrals that are not cleared yet go to review, and their new ones start held (the
`referrer_under_review` signal), until a reviewer clears the referrer: `clear_referrer`
approves, in one action, every review opened for that reason alone.

The mark is a list entry (`REFERRER_UNDER_REVIEW`, value: the customer id), read with every
check's prefetch, so remembering costs the write path nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.fraud import engine
from app.fraud.models import FraudDecision, FraudListEntry, FraudReview, ListKind, Outcome, ReviewStatus
from app.fraud.signals import referrer_under_review
from app.merchants import audit
from app.referrals import customers
from app.referrals.models import Customer, Referral, ReferralStatus
from app.tenancy import merchant_is, scoped

SIGNAL = referrer_under_review.INFO.name
# A referral flagged only for these says nothing new about its referrer.
NOT_ABOUT_THE_REFERRER = frozenset({SIGNAL, "banned_customer"})
MAX_HELD = 50  # other referrals put in review at once


async def remember(
    session: AsyncSession, referral: Referral, decision: FraudDecision, fired: list[str], *, enabled: bool
) -> None:
    """Mark the referrer (once) and put their other open referrals in review; `enabled`: the
    program's policy has the `referrer_under_review` signal on (the default)."""
    if not enabled or not set(fired) - NOT_ABOUT_THE_REFERRER:
        return
    marked = await session.scalar(
        insert_ignoring_conflicts(session, FraudListEntry, ["merchant_id", "kind", "value"])
        .values(
            id=new_id(),
            merchant_id=referral.merchant_id,
            kind=ListKind.REFERRER_UNDER_REVIEW,
            value=str(referral.referrer_id),
            note=f"referral {referral.id} flagged: {', '.join(sorted(fired))}",
            created_at=utcnow(),
        )
        .returning(FraudListEntry.id)
    )
    if marked is None:
        return  # already under review: their open referrals were put in review then
    others = (
        await session.scalars(
            scoped(
                select(Referral).where(
                    Referral.referrer_id == referral.referrer_id,
                    Referral.id != referral.id,
                    Referral.status != ReferralStatus.REJECTED,
                    Referral.cleared_at.is_(None),
                    ~select(FraudReview.id)
                    .where(
                        merchant_is(FraudReview, referral.merchant_id),
                        FraudReview.referral_id == Referral.id,
                        FraudReview.status == ReviewStatus.OPEN,
                    )
                    .exists(),
                ),
                referral.merchant_id,
            )
            .order_by(Referral.id)
            .limit(MAX_HELD)
        )
    ).all()
    evidence = {
        "signal": SIGNAL,
        "value": 1,
        "details": {"named_by_referral": str(referral.id)},
        "related": [],
        "evidence": f"the referrer's referral {referral.id} was flagged ({', '.join(sorted(fired))})",
        "fired": True,
        "weight": referrer_under_review.INFO.weight,
    }
    await engine.put_in_review(
        session,
        [(other, SIGNAL, 0, evidence) for other in others],
        policy_outcome=Outcome.REVIEW,
        policy_version=decision.policy_version,
    )


async def clear_referrer(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str, note: str | None, actor: audit.Actor
) -> tuple[Customer, list[FraudReview]]:
    """A reviewer clears the referrer: the mark goes, and every open review of their referrals
    opened only because they were under review is approved (rewards released or cleared)."""
    from app.fraud import reviews  # reviews builds on the engine, as this module does

    note = validation.text(note, "note", 1000)
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    await session.execute(
        scoped(
            delete(FraudListEntry).where(
                FraudListEntry.kind == ListKind.REFERRER_UNDER_REVIEW, FraudListEntry.value == str(customer.id)
            ),
            merchant_id,
        )
    )
    waiting = (
        await session.scalars(
            scoped(
                select(FraudReview)
                .join(Referral, Referral.id == FraudReview.referral_id)
                .where(FraudReview.status == ReviewStatus.OPEN, Referral.referrer_id == customer.id),
                merchant_id,
            )
            .order_by(FraudReview.id)
            .with_for_update(of=FraudReview)
        )
    ).all()
    released = [review for review in waiting if set(review.signals) <= {SIGNAL}]
    for review in released:
        await reviews.resolve_open(session, review, reviews.Resolution.APPROVE, note=note or "referrer cleared", actor=actor)
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="fraud.referrer_cleared",
        subject_id=customer.id,
        note=note,
        details={"approved_reviews": [str(r.id) for r in released]},
    )
    return customer, released
