"""Many referees of the program behind one IP address within an hour: a farm behind one
connection. A mobile carrier's shared address sees customers too, but spread over days."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.case import IP_WINDOW
from app.fraud.signals.base import SHARED_NETWORK, Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="ip_burst",
    description="At least N referees of the program used the referee's IP address within one hour.",
    weight=60,
    threshold=5,
    value_meaning="referees behind the address within the hour, this one included",
)
SIGNALS = (INFO,)
WINDOW = IP_WINDOW


async def detect(case: Case) -> list[Observation]:
    since = case.at - WINDOW
    others = [o for o in await case.other_referees("IP") if since <= o.referred_at <= case.at]
    by_ip: dict[str, list] = {}
    for other in others:
        by_ip.setdefault(other.value, []).append(other)
    observations = []
    for ip, group in by_ip.items():
        if await case.strangers_on_ip(ip, enough=SHARED_NETWORK) >= SHARED_NETWORK:
            continue  # a carrier's or an office's address: busy hours are not a farm
        customers = sorted({o.external_id for o in group})
        count = len(customers) + 1
        observations.append(
            Observation(
                INFO.name,
                count,
                f"{count} referees of this program came from IP {ip} within an hour: "
                + ", ".join(customers[:5])
                + (" ..." if len(customers) > 5 else ""),
                {"ip": ip, "count": count, "customers": customers[:50]},
                tuple(sorted({str(o.referral_id) for o in group})),
            )
        )
    return observations
