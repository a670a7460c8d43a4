"""Rewards without a rule: campaign bonuses, contest prizes and lead fees.

They are ordinary `rewards` rows (so the ledger, the HELD -> AVAILABLE release, refunds and
payouts treat them as any other), made once-only by a `grant_key` unique in the merchant:
of N concurrent or retried grants with one key, exactly one inserts the row, the others
meet the key and grant nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.rewards import lifecycle
from app.rewards.models import Recipient, Reward, RewardKind, RewardStatus
from app.rewards.rules import RuleSpec
from app.webhooks import events as webhook_events
from app.webhooks import notify

CAMPAIGN = "CAMPAIGN"
LEAD = "LEAD"


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
) -> Reward | None:
    """Grant `amount` to the referrer under `grant_key`, HELD for `hold_days` (then released
    by `rewards.release_due`), or None when the key was granted before (or amount is 0).
    With a `trigger_action_id`, a refund of that action's order takes the reward back."""
    if amount <= 0:
        return None
    now = utcnow()
    held = hold_days > 0
    values = dict(
        id=new_id(), merchant_id=merchant_id, program_id=program_id, rule_id=None, rule_version_id=None,
        referral_id=referral_id, trigger_action_id=trigger_action_id, recipient=Recipient.REFERRER.value,
        customer_id=customer_id, kind=kind.value, amount=amount, unit=currency, reversed_amount=0,
        remaining=0 if held else amount, status=(RewardStatus.HELD if held else RewardStatus.AVAILABLE).value,
        milestone=None, hold_until=now + timedelta(days=hold_days) if held else None, review_hold=False,
        clearance_hold=False, clearance_due_at=None, leaked_amount=0, awaiting_coupon=False, created_at=now,
        available_at=None if held else now, expires_at=None, source=source, grant_key=grant_key,
    )
    reward = await session.scalar(
        insert_ignoring_conflicts(session, Reward, ["merchant_id", "grant_key"]).values(**values).returning(Reward)
    )
    if reward is None:
        return None
    await notify.reward_event(session, webhook_events.REWARD_GRANTED, reward)
    await lifecycle.on_granted(session, reward, RuleSpec())
    return reward
