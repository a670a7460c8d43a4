"""The referee came from the referrer's IP address with the referrer's exact browser (user
agent) within a time window: the same browser, a second account. Stronger than the IP
alone (see `shared_ip`).
Not counted on a shared network or between colleagues at one organisation's domain
(`base.network_shared_with_referrer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, network_shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_ip_user_agent",
    description="Referee used the referrer's IP address and the same user agent within the window (hours).",
    weight=60,
    threshold=72,
    fires_at_or_below=True,
    value_meaning="hours between the referrer's and the referee's use",
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await network_shared_with_referrer(
        case, "IP_UA", INFO, "IP address and browser", ip_of=lambda value: value.split(" ua:")[0]
    )
