"""One mailbox behind two addresses: `jane.doe+x@gmail.com` and `janedoe@googlemail.com`
(aliases folded as in `app.referrals.emails`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.models import Outcome
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_email",
    description="Referee's email is the referrer's mailbox (after folding dots, +tags and provider aliases).",
    weight=100,
    threshold=1,
    action=Outcome.BLOCK,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    mine, theirs = case.referee.email_canonical, case.referrer.email_canonical
    if mine is None or mine != theirs:
        return []
    return [
        Observation(
            INFO.name,
            1,
            f"{case.referee.email} and the referrer's {case.referrer.email} are one mailbox ({mine})",
            {"canonical": mine, "referee_email": case.referee.email, "referrer_email": case.referrer.email},
        )
    ]
