"""Too much, too fast for one referrer: referrals and rewards per hour and per day,
counted at the time things happened (an action's occurredAt), not when they were recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from app.fraud.case import BASELINE_WINDOW, VELOCITY_WINDOW
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

REFERRALS_PER_HOUR = SignalInfo(
    name="referrals_per_hour",
    description="The referrer's referrals in the program in the last hour.",
    weight=60,
    threshold=10,
    value_meaning="referrals in the hour, this one included",
)
REFERRALS_PER_DAY = SignalInfo(
    name="referrals_per_day",
    description="The referrer's referrals in the program in the last 24 hours.",
    weight=60,
    threshold=30,
    value_meaning="referrals in 24 hours, this one included",
)
REWARDS_PER_HOUR = SignalInfo(
    name="rewards_per_hour",
    description="Rewards the referrer earned in the last hour.",
    weight=40,
    threshold=10,
    value_meaning="rewards in the hour",
)
REWARDS_PER_DAY = SignalInfo(
    name="rewards_per_day",
    description="Rewards the referrer earned in the last 24 hours.",
    weight=40,
    threshold=30,
    value_meaning="rewards in 24 hours",
)
CLICKS_PER_HOUR = SignalInfo(
    name="clicks_per_hour",
    description="Clicks on the referrer's links in the last hour (a bot or a click farm).",
    weight=30,
    threshold=30,
    value_meaning="clicks in the hour",
)
CLICKS_PER_DAY = SignalInfo(
    name="clicks_per_day",
    description="Clicks on the referrer's links in the last 24 hours.",
    weight=30,
    threshold=300,
    value_meaning="clicks in 24 hours",
)
ABOVE_BASELINE = SignalInfo(
    name="referrals_above_baseline",
    description=(
        "The referrer's referrals of the last 3 hours against their own usual pace (the month before): a "
        "burst for this referrer, even below the hourly threshold."
    ),
    weight=50,
    threshold=8,
    value_meaning="referrals in 3 hours, as a multiple of the referrer's usual 3 hours (at least 0.5)",
)
SIGNALS = (
    REFERRALS_PER_HOUR,
    REFERRALS_PER_DAY,
    REWARDS_PER_HOUR,
    REWARDS_PER_DAY,
    CLICKS_PER_HOUR,
    CLICKS_PER_DAY,
    ABOVE_BASELINE,
)
CLICKS_REPORTED_FROM = 10
BURST_REPORTED_FROM = (
    8  # referrals in 3 hours, this one included: fewer is no burst whatever the pace (a post shared with friends)
)
BURST_SPAN = timedelta(hours=3)
USUAL_FLOOR = 0.5  # a new referrer's usual 3 hours: half a referral
# Counts are stored from the smallest a merchant could sensibly set as a threshold (a second
# referral, a first reward in the window): a count below the floor is never stored, so it
# could never fire, live or in a backtest.
REFERRALS_REPORTED_FROM = 2
REWARDS_REPORTED_FROM = 1
MAX_RELATED = 50


async def detect(case: Case) -> list[Observation]:
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
            observations.append(
                Observation(
                    info.name,
                    count,
                    f"referrer {case.referrer.external_id} made {count} referrals in the {_span(info)} before {case.at:%Y-%m-%d %H:%M}",
                    {"count": count},
                    tuple(str(row.id) for row in in_window[:MAX_RELATED]),
                )
            )
    hour_count, day_count = await case.rewards_in_day()
    for info, count in ((REWARDS_PER_HOUR, hour_count), (REWARDS_PER_DAY, day_count)):
        if count >= REWARDS_REPORTED_FROM:
            observations.append(
                Observation(
                    info.name,
                    count,
                    f"referrer {case.referrer.external_id} earned {count} rewards in the {_span(info)} before {case.at:%Y-%m-%d %H:%M}",
                    {"count": count},
                )
            )
    for info, count in zip((CLICKS_PER_HOUR, CLICKS_PER_DAY), await case.clicks_in_day(), strict=True):
        if count >= CLICKS_REPORTED_FROM:
            observations.append(
                Observation(
                    info.name,
                    count,
                    f"the links of referrer {case.referrer.external_id} were clicked {count} times in the {_span(info)} "
                    f"before {case.at:%Y-%m-%d %H:%M}",
                    {"count": count},
                )
            )
    burst = [row for row in rows if row.referred_at > case.at - BURST_SPAN]
    in_hour = sum(1 for row in rows if row.referred_at > hour_ago) + 1
    # A burst below the hourly threshold: above it, referrals_per_hour already says so (not twice).
    if len(burst) + 1 >= BURST_REPORTED_FROM and in_hour < REFERRALS_PER_HOUR.threshold:
        spans = (BASELINE_WINDOW - VELOCITY_WINDOW) / BURST_SPAN  # 3-hour spans in the baseline window
        usual = max(USUAL_FLOOR, await case.referrals_before_day() / spans)
        multiple = round((len(burst) + 1) / usual, 1)
        observations.append(
            Observation(
                ABOVE_BASELINE.name,
                multiple,
                f"referrer {case.referrer.external_id} made {len(burst) + 1} referrals in 3 hours, {multiple:g} times their "
                f"usual pace ({usual:.2f} per 3 hours over the month before)",
                {"count": len(burst) + 1, "usual": round(usual, 3)},
                tuple(str(row.id) for row in burst[:MAX_RELATED]),
            )
        )
    return observations


def _span(info: SignalInfo) -> str:
    return "hour" if info.name.endswith("hour") else "24 hours"
