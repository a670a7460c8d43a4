"""Clearance: a reward becomes spendable only once its referral is cleared, that is screened
ALLOW after the evidence the program's policy requires (`policy.Clearance`):

- SIGNUP: the check when the referral is made is enough (rewards are spendable at once);
- FIRST_PURCHASE: the check of the referee's first purchase, which brings their card and address;
- QUIET_DAYS (the default): a fresh check `quiet_days` after the reward was earned, with
  everything learnt meanwhile (the referrer's own card, a ring that closed, the rest of a farm).

Until then a reward is HELD with `clearance_hold` (shown as `awaitingClearance`). Fraud found
before clearance costs nothing: the held reward is voided. A referee's first-order coupon may
be released at once by policy (`release_referee_discounts`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.fraud import engine
from app.fraud import policy as policies
from app.fraud.models import Outcome
from app.fraud.policy import Clearance, ClearanceEvidence
from app.referrals.models import QUALIFYING_TYPES, Action, Referral, ReferralStatus
from app.rewards import lifecycle
from app.rewards.models import Recipient, Reward, RewardKind, RewardStatus


def waits(
    clearance: Clearance, referral: Referral, action: Action, recipient: Recipient, kind: RewardKind
) -> tuple[bool, datetime | None]:
    """Whether a reward `action` earns must wait for clearance, and until when at the earliest
    (None: until the referee's first purchase is screened)."""
    if referral.cleared_at is not None or clearance.evidence is ClearanceEvidence.SIGNUP:
        return False, None
    if recipient is Recipient.REFEREE and kind is RewardKind.DISCOUNT and clearance.release_referee_discounts:
        return False, None
    if clearance.evidence is ClearanceEvidence.FIRST_PURCHASE:
        return action.type not in QUALIFYING_TYPES, None  # a purchase screened ALLOW clears what it earns
    return True, action.occurred_at + timedelta(days=clearance.quiet_days)


async def program_clearance(session: AsyncSession, referral: Referral) -> Clearance:
    """The referral's program's clearance setting (its fraud policy, read once per transaction)."""
    return (await policies.current_policy(session, merchant_id=referral.merchant_id, program_id=referral.program_id)).clearance


async def cleared_by_purchase(session: AsyncSession, referral: Referral, action: Action, *, at: datetime) -> None:
    """FIRST_PURCHASE programs: the referee's purchase was screened ALLOW, which clears the referral."""
    clearance = await program_clearance(session, referral)
    if clearance.evidence is ClearanceEvidence.FIRST_PURCHASE and action.type in QUALIFYING_TYPES and referral.cleared_at is None:
        await clear(session, referral, at=at)


async def clear(session: AsyncSession, referral: Referral, *, at: datetime) -> list[Reward]:
    """The referral is cleared: rewards waiting for it are released (or wait out their own hold)."""
    referral.cleared_at = at
    return await lifecycle.lift_clearance_hold(session, referral.id, merchant_id=referral.merchant_id, now=at)


async def clear_due(session: AsyncSession, *, now: datetime | None = None, limit: int = 200) -> int:
    """Referrals whose rewards' quiet period has ended are screened again, with everything
    learnt since; ALLOW clears them, REVIEW holds them for a person, BLOCK rejects them.
    Returns how many referrals were screened."""
    now = now or utcnow()
    due = list(
        (
            await session.scalars(
                select(Reward.referral_id)
                .where(
                    Reward.status == RewardStatus.HELD,
                    Reward.clearance_due_at <= now,
                    Reward.clearance_hold.is_(True),
                    Reward.review_hold.is_(False),
                )
                .group_by(Reward.referral_id)
                .order_by(Reward.referral_id)
                .limit(limit)
            )
        ).all()
    )
    for referral_id in due:
        referral = await session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
        if referral is None or referral.status == ReferralStatus.REJECTED:
            continue
        outcome = await engine.screen_again(session, referral=referral, at=now, stage=engine.Stage.CLEARANCE)
        if outcome is Outcome.ALLOW:
            await clear(session, referral, at=now)
    return len(due)
