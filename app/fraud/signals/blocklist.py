"""The merchant's own lists: emails, domains (with subdomains), IP addresses and CIDR
ranges, devices and payment fingerprints; and customers the merchant banned."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from app.fraud.case import domain_and_parents
from app.fraud.models import FraudListEntry, ListKind, Outcome
from app.fraud.signals.base import Observation, SignalInfo
from app.personal import hashed_value

if TYPE_CHECKING:
    from app.fraud.case import Case

BLOCKLIST = SignalInfo(
    name="blocklist",
    description="Referee's or referrer's email or domain, or the referee's IP, device or payment is on your blocklist.",
    weight=100,
    threshold=1,
    action=Outcome.BLOCK,
)
BANNED_CUSTOMER = SignalInfo(
    name="banned_customer",
    description="Referrer or referee is a customer you banned.",
    weight=100,
    threshold=1,
    action=Outcome.BLOCK,
)
SIGNALS = (BLOCKLIST, BANNED_CUSTOMER)


def _in_range(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


async def detect(case: Case) -> list[Observation]:
    entries = await case.list_entries()
    parties = {str(case.referrer.id): ("referrer", case.referrer), str(case.referee.id): ("referee", case.referee)}
    observations = []
    for entry in entries:
        kind = ListKind(entry.kind)
        if kind is ListKind.BANNED_CUSTOMER and entry.value in parties:
            role, customer = parties[entry.value]
            observations.append(
                Observation(
                    BANNED_CUSTOMER.name,
                    1,
                    f"{role} {customer.external_id} is banned" + (f": {entry.note}" if entry.note else ""),
                    {"role": role, "customer": customer.external_id, "entry_id": str(entry.id)},
                )
            )
        elif kind in (ListKind.EMAIL, ListKind.DOMAIN):
            for role, customer in parties.values():
                email = customer.email_canonical
                if email and (_names(case, entry, email) if kind is ListKind.EMAIL else entry.value in domain_and_parents(email)):
                    observations.append(_listed(entry, f"{role}'s email {customer.email}"))
        elif kind in (ListKind.DEVICE, ListKind.PAYMENT, ListKind.IP, ListKind.IP_RANGE):
            identifier_kind = "IP" if kind is ListKind.IP_RANGE else kind.value
            for identifier in await case.referee_identifiers():
                if identifier.kind != identifier_kind:
                    continue
                if _names(case, entry, identifier.value) or (
                    kind is ListKind.IP_RANGE and identifier.value is not None and _in_range(identifier.value, entry.value)
                ):
                    observations.append(_listed(entry, f"referee's {kind.value.lower().replace('_', ' ')} {identifier.value}"))
    return observations


def _names(case: Case, entry: FraudListEntry, value: str | None) -> bool:
    """The entry holds the value, or (an erased customer's entry) its keyed hash."""
    return value is not None and entry.value in (value, hashed_value(case.merchant_id, entry.kind.value, value))


def _listed(entry: FraudListEntry, what: str) -> Observation:
    return Observation(
        BLOCKLIST.name,
        1,
        f"{what} matches blocklist entry {entry.kind.value} {entry.value}" + (f" ({entry.note})" if entry.note else ""),
        {"entry_id": str(entry.id), "kind": entry.kind.value, "value": entry.value},
    )
