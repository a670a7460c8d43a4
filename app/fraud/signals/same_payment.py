"""Referee paid with the referrer's payment method (fingerprint from your PSP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_payment",
    description="Referee paid with the referrer's payment method (fingerprint from your PSP).",
    weight=80,
    threshold=1,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await shared_with_referrer(case, "PAYMENT", INFO, "payment fingerprint")
