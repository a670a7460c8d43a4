"""Referee ships to the referrer's (normalized) address; households do too, so alone it weighs little."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_address",
    description="Referee ships to the referrer's (normalized) address; households do too, so alone it weighs little.",
    weight=30,
    threshold=1,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await shared_with_referrer(case, "ADDRESS", INFO, "shipping address")
