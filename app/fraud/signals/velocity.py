"""Too much, too fast for one referrer: referrals and rewards per hour and per day,
counted at the time things happened (an action's occurredAt), not when they were recorded."""

from __future__ import annotations

from datetime import timedelta

from app.fraud.case import VELOCITY_WINDOW
from app.fraud.signals.base import Observation, SignalInfo

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
# Counts are stored from the smallest a merchant could sensibly set as a threshold (a second
# referral, a first reward in the window): a count below the floor is never stored, so it
# could never fire, live or in a backtest.
REFERRALS_REPORTED_FROM = 2
REWARDS_REPORTED_FROM = 1
MAX_RELATED = 50


async def detect(case) -> list[Observation]:
    """The referrer's referrals of the last day, and their rewards of the last day with the
    hour counted alongside (both read by `Case.prefetch`)."""
    day_ago, hour_ago = case.at - VELOCITY_WINDOW, case.at - timedelta(hours=1)
    # At most RECENT_REFERRALS are read: far above any sensible threshold.
    rows = await case.referrers_referrals(since=day_ago)
    observations = []
    for info, since in ((REFERRALS_PER_HOUR, hour_ago), (REFERRALS_PER_DAY, day_ago)):
        in_window = [row for row in rows if row.referred_at > since]
        count = len(in_window) + 1  # this referral included
        if count >= REFERRALS_REPORTED_FROM:
            observations.append(Observation(
                info.name, count,
                f"referrer {case.referrer.external_id} made {count} referrals in the {_span(info)} before {case.at:%Y-%m-%d %H:%M}",
                {"count": count},
                tuple(str(row.id) for row in in_window[:MAX_RELATED]),
            ))
    hour_count, day_count = await case.rewards_in_day()
    for info, count in ((REWARDS_PER_HOUR, hour_count), (REWARDS_PER_DAY, day_count)):
        if count >= REWARDS_REPORTED_FROM:
            observations.append(Observation(
                info.name, count,
                f"referrer {case.referrer.external_id} earned {count} rewards in the {_span(info)} before {case.at:%Y-%m-%d %H:%M}",
                {"count": count},
            ))
    return observations


def _span(info: SignalInfo) -> str:
    return "hour" if info.name.endswith("hour") else "24 hours"
