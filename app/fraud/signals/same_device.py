"""Referee used a device id the referrer used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(name="same_device", description="Referee used a device id the referrer used.", weight=80, threshold=1)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await shared_with_referrer(case, "DEVICE", INFO, "device")
