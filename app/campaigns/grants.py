"""Rewards without a rule: campaign bonuses, contest prizes and lead fees.

They are ordinary `rewards` rows (so the ledger, the HELD -> AVAILABLE release, refunds and
payouts treat them as any other), made once-only by a `grant_key` unique in the merchant:
of N concurrent or retried grants with one key, exactly one inserts the row, the others
meet the key and grant nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.fraud import clearance
from app.fraud.models import FraudReview, ReviewStatus
from app.referrals import notify
from app.referrals.models import Action, Referral
from app.rewards import lifecycle
from app.rewards.models import Recipient, Reward, RewardKind, RewardStatus
from app.rewards.rules import RuleSpec
from app.webhooks import events as webhook_events

CAMPAIGN = "CAMPAIGN"
LEAD = "LEAD"


@dataclass(frozen=True)
class Waits:
    """What a reward earned by a referral's sale waits for besides its hold, as the rules'
    rewards of that referral do: its clearance (screened again from `clearance_due_at` on,
    app.fraud.clearance) and an open fraud review."""

    clearance: bool = False
    clearance_due_at: datetime | None = None
    review: bool = False


async def waits_of(session: AsyncSession, referral: Referral, action: Action, kind: RewardKind) -> Waits:
    """What a reward of the referral's sale `action` waits for: the program's clearance policy
    decides as for the rules' rewards (app.fraud.clearance.waits); an open review holds it.
    The caller holds the referral's lock, so a clearance or review deciding meanwhile either
    came first (and is read here) or sees this reward after."""
    policy = await clearance.program_clearance(session, referral)
    waits_for_clearance, due_at = clearance.waits(policy, referral, action, Recipient.REFERRER, kind)
    in_review = await session.scalar(
        select(FraudReview.id).where(FraudReview.referral_id == referral.id, FraudReview.status == ReviewStatus.OPEN).limit(1)
    )
    return Waits(clearance=waits_for_clearance, clearance_due_at=due_at, review=in_review is not None)


async def grant_once(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    customer_id: uuid.UUID,
    kind: RewardKind,
    amount: int,
    currency: str,
    grant_key: str,
    source: str,
    hold_days: int = 0,
    referral_id: uuid.UUID | None = None,
    trigger_action_id: uuid.UUID | None = None,
    waits: Waits | None = None,
) -> Reward | None:
    """Grant `amount` to the referrer under `grant_key`, HELD for `hold_days` (then released
    by `rewards.release_due`), or None when the key was granted before (or amount is 0).
    With a `trigger_action_id`, a refund of that action's order takes the reward back; with
    `waits`, the reward also waits for its referral's clearance or open review."""
    if amount <= 0:
        return None
    now = utcnow()
    waits = waits or Waits()
    held = hold_days > 0 or waits.clearance or waits.review
    values = dict(
        id=new_id(),
        merchant_id=merchant_id,
        program_id=program_id,
        rule_id=None,
        rule_version_id=None,
        referral_id=referral_id,
        trigger_action_id=trigger_action_id,
        recipient=Recipient.REFERRER,
        customer_id=customer_id,
        kind=kind.value,
        amount=amount,
        unit=currency,
        reversed_amount=0,
        remaining=0 if held else amount,
        status=(RewardStatus.HELD if held else RewardStatus.AVAILABLE).value,
        milestone=None,
        hold_until=now + timedelta(days=hold_days) if hold_days > 0 else None,
        review_hold=waits.review,
        clearance_hold=waits.clearance,
        clearance_due_at=waits.clearance_due_at if waits.clearance else None,
        leaked_amount=0,
        awaiting_coupon=False,
        created_at=now,
        available_at=None if held else now,
        expires_at=None,
        source=source,
        grant_key=grant_key,
    )
    reward: Reward | None = await session.scalar(
        insert_ignoring_conflicts(session, Reward, ["merchant_id", "grant_key"]).values(**values).returning(Reward)
    )
    if reward is None:
        return None
    await notify.reward_event(session, webhook_events.REWARD_GRANTED, reward)
    await lifecycle.on_granted(session, reward, RuleSpec())
    return reward
