"""Referee used a device id the referrer used."""

from __future__ import annotations

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

INFO = SignalInfo(name="same_device", description="Referee used a device id the referrer used.", weight=80, threshold=1)
SIGNALS = (INFO,)


async def detect(case) -> list[Observation]:
    return await shared_with_referrer(case, "DEVICE", INFO, "device")
