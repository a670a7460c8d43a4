"""Throw-away mailboxes (mailinator.com, any subdomain of one), from the maintained
`disposable-email-domains` list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from disposable_email_domains import blocklist

from app.fraud.case import domain_and_parents
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="disposable_email",
    description="Referee's email is at a disposable-email domain (or a subdomain of one).",
    weight=60,
    threshold=1,
)
SIGNALS = (INFO,)


def disposable_domain(email: str) -> str | None:
    return next((d for d in domain_and_parents(email.lower()) if d in blocklist), None)


async def detect(case: Case) -> list[Observation]:
    email = case.referee.email_canonical
    domain = disposable_domain(email) if email else None
    if domain is None:
        return []
    return [Observation(INFO.name, 1, f"{case.referee.email} is at disposable-email domain {domain}", {"domain": domain})]
