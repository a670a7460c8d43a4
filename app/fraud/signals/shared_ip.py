"""The referee used an IP address the referrer used recently. Offices, campuses, mobile
carriers and households share addresses, so alone this only adds a little to the score.
Not counted on a shared network (`outside_shared_networks`) or between colleagues at one
organisation's domain (`colleagues`)."""

from __future__ import annotations

from app.fraud.signals.base import Observation, SignalInfo, colleagues, outside_shared_networks, shared_with_referrer

INFO = SignalInfo(
    name="shared_ip",
    description="Referee used an IP address the referrer used within the window (hours). Weak alone.",
    weight=10,
    threshold=72,
    fires_at_or_below=True,
    value_meaning="hours between the referrer's and the referee's use",
)
SIGNALS = (INFO,)


async def detect(case) -> list[Observation]:
    if colleagues(case):
        return []
    return await outside_shared_networks(case, await shared_with_referrer(case, "IP", INFO, "IP address", by_hours=True))
