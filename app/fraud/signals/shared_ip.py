"""The referee used an IP address the referrer used recently. Offices, campuses, mobile
carriers and households share addresses, so alone this only adds a little to the score.
Not counted on a shared network or between colleagues at one organisation's domain
(`base.network_shared_with_referrer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, network_shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="shared_ip",
    description="Referee used an IP address the referrer used within the window (hours). Weak alone.",
    weight=10,
    threshold=72,
    fires_at_or_below=True,
    value_meaning="hours between the referrer's and the referee's use",
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await network_shared_with_referrer(case, "IP", INFO, "IP address")
