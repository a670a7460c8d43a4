"""Referrer memory: once one of a referrer's referrals was flagged for fraud, their other
referrals are held for a person too, until a reviewer clears the referrer (see app.fraud.memory).
The mark is a list entry, read with the others in the check's one prefetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.models import ListKind, Outcome
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="referrer_under_review",
    description="The referrer has another referral flagged for fraud; their referrals wait for a reviewer to clear them.",
    weight=0,  # it asks for a person (REVIEW), it adds nothing to the score: never a BLOCK on its own
    threshold=1,
    action=Outcome.REVIEW,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    referrer = str(case.referrer.id)
    return [
        Observation(
            INFO.name,
            1,
            f"referrer {case.referrer.external_id} is under review" + (f": {entry.note}" if entry.note else ""),
            {"referrer": case.referrer.external_id},
        )
        for entry in await case.list_entries()
        if entry.kind == ListKind.REFERRER_UNDER_REVIEW and entry.value == referrer
    ]
