"""A payment fingerprint already used by other referees of the program."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, seen_on_other_referees

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="payment_reuse",
    description="A payment fingerprint already used by other referees of the program.",
    weight=60,
    threshold=1,
    value_meaning="other referees of the program seen with it",
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    return await seen_on_other_referees(case, "PAYMENT", INFO, "payment fingerprint")
