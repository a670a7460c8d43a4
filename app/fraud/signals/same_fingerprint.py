"""Referee's browser has the referrer's coarse fingerprint (a weak signal).

The widget hashes the user agent, screen, timezone and language: a new device id on the same
browser (cleared storage, a private window) keeps the fingerprint, but so does anyone with the
same phone model and settings. Hence a small weight, and none between colleagues (a company's
standard laptops and browser).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo, colleagues, shared_with_referrer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_fingerprint",
    description="Referee's browser has the referrer's coarse fingerprint (user agent, screen, timezone, language); weak alone.",
    weight=10,
    threshold=1,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    if colleagues(case):
        return []
    return await shared_with_referrer(case, "FINGERPRINT", INFO, "browser fingerprint")
