"""Too much, too fast for one referrer: referrals and rewards per hour and per day,
counted at the time things happened (an action's occurredAt), not when they were recorded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.fraud.signals.base import Observation, SignalInfo
from app.referrals.models import Action, Referral
from app.rewards.models import Reward

REFERRALS_PER_HOUR = SignalInfo(
    name="referrals_per_hour", description="The referrer's referrals in the program in the last hour.",
    weight=60, threshold=10, value_meaning="referrals in the hour, this one included",
)
REFERRALS_PER_DAY = SignalInfo(
    name="referrals_per_day", description="The referrer's referrals in the program in the last 24 hours.",
    weight=60, threshold=30, value_meaning="referrals in 24 hours, this one included",
)
REWARDS_PER_HOUR = SignalInfo(
    name="rewards_per_hour", description="Rewards the referrer earned in the last hour.",
    weight=40, threshold=10, value_meaning="rewards in the hour",
)
REWARDS_PER_DAY = SignalInfo(
    name="rewards_per_day", description="Rewards the referrer earned in the last 24 hours.",
    weight=40, threshold=30, value_meaning="rewards in 24 hours",
)
SIGNALS = (REFERRALS_PER_HOUR, REFERRALS_PER_DAY, REWARDS_PER_HOUR, REWARDS_PER_DAY)
REPORTED_FROM = 3  # smaller counts are everyday life, not worth storing
MAX_RELATED = 50


async def detect(case) -> list[Observation]:
    observations = []
    for info, window in ((REFERRALS_PER_HOUR, timedelta(hours=1)), (REFERRALS_PER_DAY, timedelta(days=1))):
        rows = (await case.session.execute(
            select(Referral.id, Referral.referee_id)
            .where(
                Referral.referrer_id == case.referrer.id,
                Referral.program_id == case.program_id,
                Referral.referred_at > case.at - window,
                Referral.referred_at <= case.at,
            )
            .order_by(Referral.referred_at.desc())
            .limit(1000)
        )).all()
        count = len({row.id for row in rows} | {case.referral_id})
        if count >= REPORTED_FROM:
            observations.append(Observation(
                info.name, count,
                f"referrer {case.referrer.external_id} made {count} referrals in the {_span(window)} before {case.at:%Y-%m-%d %H:%M}",
                {"count": count, "window_hours": window.total_seconds() / 3600},
                tuple(str(row.id) for row in rows[:MAX_RELATED] if row.id != case.referral_id),
            ))
    for info, window in ((REWARDS_PER_HOUR, timedelta(hours=1)), (REWARDS_PER_DAY, timedelta(days=1))):
        count = await case.session.scalar(
            select(func.count(Reward.id))
            .join(Action, Action.id == Reward.trigger_action_id)
            .where(
                Reward.customer_id == case.referrer.id,
                Reward.recipient == "REFERRER",
                Action.occurred_at > case.at - window,
                Action.occurred_at <= case.at,
            )
        ) or 0
        if count >= REPORTED_FROM:
            observations.append(Observation(
                info.name, count,
                f"referrer {case.referrer.external_id} earned {count} rewards in the {_span(window)} before {case.at:%Y-%m-%d %H:%M}",
                {"count": count, "window_hours": window.total_seconds() / 3600},
            ))
    return observations


def _span(window: timedelta) -> str:
    return "hour" if window <= timedelta(hours=1) else "24 hours"
