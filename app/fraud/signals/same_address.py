"""Referee ships to the referrer's (normalized) address; households do too, so alone it weighs little."""

from __future__ import annotations

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

INFO = SignalInfo(name="same_address", description="Referee ships to the referrer's (normalized) address; households do too, so alone it weighs little.", weight=30, threshold=1)
SIGNALS = (INFO,)


async def detect(case) -> list[Observation]:
    return await shared_with_referrer(case, "ADDRESS", INFO, "shipping address")
