"""Re-screening when evidence arrives: a customer seen with a device, card, address, browser
on a network, payout destination or mailbox they were never seen with before may change the
verdict on referrals already judged (the referrer's own card shows up after their alias
bought; the fifth account of a farm reuses the first one's phone).

`app.fraud.identifiers` enqueues a `fraud.rescreen` job in the transaction that recorded the
evidence (the outbox; on SQLite not when the job could find nothing, see
`identifiers._rescreen_job_unless_nothing_to_find`); the worker then checks again, at the
moment the evidence arrived, the customer's referrals (as referrer or referee) within the
lookback window, and the referrals of the customers who share the new identifiers. A new
REVIEW or BLOCK holds what is still held and takes back what was already spendable (see
`engine.open_review`, `engine.reject_referral`).
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.fraud import engine
from app.fraud.identifiers import RESCREEN_LOOKBACK, others_seen_with, rescreened_in_window
from app.fraud.models import FraudDecision, Stage
from app.referrals.models import Referral, ReferralStatus

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
    if identifiers:
        params: dict[str, Any] = {"merchant_id": merchant_id, "customer_id": customer_id}
        for index, (kind, value_hash) in enumerate(identifiers):
            params |= {f"kind_{index}": kind, f"value_hash_{index}": value_hash}
        sharing: dict[tuple[str, str], set[uuid.UUID]] = defaultdict(set)
        for row in await session.execute(_sharing_customers(len(identifiers)), params):
            sharing[(row.kind, row.value_hash)].add(row.customer_id)
        for others in sharing.values():
            if len(others) <= MAX_SHARING:  # more: a shared network or a popular phone model, not evidence about anyone
                customers |= others
    referrals = list(
        (
            await session.scalars(
                select(Referral)
                .where(
                    Referral.merchant_id == merchant_id,
                    or_(Referral.referrer_id.in_(customers), Referral.referee_id.in_(customers)),
                    *rescreened_in_window(at - RESCREEN_LOOKBACK, at),
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


@functools.cache
def _sharing_customers(count: int) -> Any:
    """The other customers seen with each of `count` identifiers (`kind_<i>`, `value_hash_<i>`),
    at most MAX_SHARING + 1 per identifier: one statement for all of them, built once per count."""
    parts = []
    for index in range(count):
        part = others_seen_with(index).limit(MAX_SHARING + 1).subquery()
        parts.append(select(part.c.kind, part.c.value_hash, part.c.customer_id))
    return union_all(*parts) if count > 1 else parts[0]


def parse_identifiers(text: str) -> list[tuple[str, str]]:
    """`DEVICE:ab12;PAYMENT:cd34` (the job's argument) -> [("DEVICE", "ab12"), ("PAYMENT", "cd34")]."""
    return [tuple(part.split(":", 1)) for part in text.split(";") if ":" in part]  # type: ignore[misc]
