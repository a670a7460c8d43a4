"""The referee is the referrer's own customer record under a differently written id
(`CUST-17` vs `cust-17 `): the shop's ids are exact, people typing them are not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.models import Outcome
from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_customer",
    description="Referee and referrer have the same customer id (ignoring case and spaces).",
    weight=100,
    threshold=1,
    action=Outcome.BLOCK,
)
SIGNALS = (INFO,)


def folded(external_id: str) -> str:
    return "".join(external_id.split()).casefold()


async def detect(case: Case) -> list[Observation]:
    if folded(case.referee.external_id) != folded(case.referrer.external_id):
        return []
    return [
        Observation(
            INFO.name,
            1,
            f"customer id {case.referee.external_id!r} is the referrer's {case.referrer.external_id!r}",
            {"referee": case.referee.external_id, "referrer": case.referrer.external_id},
        )
    ]
