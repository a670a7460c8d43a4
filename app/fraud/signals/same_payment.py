"""Referee paid with the referrer's payment method (fingerprint from your PSP)."""

from __future__ import annotations

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

INFO = SignalInfo(name="same_payment", description="Referee paid with the referrer's payment method (fingerprint from your PSP).", weight=80, threshold=1)
SIGNALS = (INFO,)


async def detect(case) -> list[Observation]:
    return await shared_with_referrer(case, "PAYMENT", INFO, "payment fingerprint")
