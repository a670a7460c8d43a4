"""Re-screening when evidence arrives: a customer seen with a device, card, address, browser
on a network, payout destination or mailbox they were never seen with before may change the
verdict on referrals already judged (the referrer's own card shows up after their alias
bought; the fifth account of a farm reuses the first one's phone).

`app.fraud.identifiers` enqueues a `fraud.rescreen` job in the transaction that recorded the
evidence (the outbox); the worker then checks again, at the moment the evidence arrived, the
customer's referrals (as referrer or referee) within the lookback window, and the referrals of
the customers who share the new identifiers. A new REVIEW or BLOCK holds what is still held and
takes back what was already spendable (see `engine.open_review`, `engine.reject_referral`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fraud import engine
from app.fraud.models import CustomerIdentifier, FraudDecision, Stage
from app.referrals.models import Referral, ReferralStatus

LOOKBACK = timedelta(days=90)  # referrals older than this are not judged again
MAX_SHARING = 10  # customers sharing one identifier beyond which it says nothing about any of them
MAX_REFERRALS = 100  # referrals checked again per job


async def rescreen(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    identifiers: list[tuple[str, str]],
    at: datetime,
    action_id: uuid.UUID | None = None,
) -> int:
    """Check again the referrals the new evidence may change; returns how many were checked.
    A referral the recording action already checked with this evidence is skipped."""
    customers = {customer_id}
    for kind, value_hash in identifiers:
        sharing = set(
            (
                await session.scalars(
                    select(CustomerIdentifier.customer_id)
                    .where(
                        CustomerIdentifier.merchant_id == merchant_id,
                        CustomerIdentifier.kind == kind,
                        CustomerIdentifier.value_hash == value_hash,
                        CustomerIdentifier.customer_id != customer_id,
                    )
                    .limit(MAX_SHARING + 1)
                )
            ).all()
        )
        if len(sharing) <= MAX_SHARING:  # more: a shared network or a popular phone model, not evidence about anyone
            customers |= sharing
    referrals = list(
        (
            await session.scalars(
                select(Referral)
                .where(
                    Referral.merchant_id == merchant_id,
                    or_(Referral.referrer_id.in_(customers), Referral.referee_id.in_(customers)),
                    Referral.status != ReferralStatus.REJECTED,
                    Referral.referred_at >= at - LOOKBACK,
                    Referral.referred_at <= at,
                )
                .order_by(Referral.id)
                .limit(MAX_REFERRALS)
                .with_for_update()
            )
        ).all()
    )
    if action_id is not None and referrals:
        already = set(
            (
                await session.scalars(
                    select(FraudDecision.referral_id).where(
                        FraudDecision.action_id == action_id, FraudDecision.referral_id.in_([r.id for r in referrals])
                    )
                )
            ).all()
        )
        referrals = [r for r in referrals if r.id not in already]
    for referral in referrals:
        if referral.status != ReferralStatus.REJECTED:  # an earlier one's verdict may have rejected it
            await engine.screen_again(session, referral=referral, at=at, stage=Stage.RESCREEN)
    return len(referrals)


def parse_identifiers(text: str) -> list[tuple[str, str]]:
    """`DEVICE:ab12;PAYMENT:cd34` (the job's argument) -> [("DEVICE", "ab12"), ("PAYMENT", "cd34")]."""
    return [tuple(part.split(":", 1)) for part in text.split(";") if ":" in part]  # type: ignore[misc]
