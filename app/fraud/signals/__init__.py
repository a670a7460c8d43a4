"""Fraud signals: each module measures one kind of evidence about a referral.

A module has `SIGNALS` (what it reports, with default weight and threshold) and
`async def detect(case: Case) -> list[Observation]`. Signals measure; the policy
(`app.fraud.policy`) decides what fires, what it weighs and what it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals import (
    blocklist,
    device_reuse,
    disposable_email,
    ip_burst,
    patterned_mailboxes,
    payment_reuse,
    referrer_under_review,
    ring,
    same_address,
    same_customer,
    same_device,
    same_email,
    same_fingerprint,
    same_ip_user_agent,
    same_name_domain,
    same_payment,
    shared_ip,
    shared_payout_account,
    similar_email,
    similar_name,
    velocity,
)
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

MODULES = (
    same_customer,
    same_email,
    similar_email,
    same_name_domain,
    similar_name,
    same_device,
    same_fingerprint,
    same_payment,
    shared_payout_account,
    same_address,
    same_ip_user_agent,
    shared_ip,
    device_reuse,
    payment_reuse,
    ip_burst,
    disposable_email,
    velocity,
    patterned_mailboxes,
    ring,
    referrer_under_review,
    blocklist,
)
CATALOGUE: dict[str, SignalInfo] = {info.name: info for module in MODULES for info in module.SIGNALS}


async def observe(case: Case) -> list[Observation]:
    """Every signal's observations of `case`, in catalogue order."""
    observations: list[Observation] = []
    for module in MODULES:
        observations += await module.detect(case)
    return observations


__all__ = ["CATALOGUE", "MODULES", "Observation", "SignalInfo", "observe"]
