"""The same full name at the same email domain (`Jane Doe <jd@acme.com>` referring
`Jane Doe <jane@acme.com>`). Names are compared as `app.text.name_key` folds them: without
case, accents or punctuation, Arabic and Persian letter variants as one (`علي` = `علی`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo
from app.text import name_key

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="same_name_domain",
    description="Referee has the referrer's full name and the same email domain.",
    weight=60,
    threshold=1,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    name = name_key(case.referee.name)
    if not name or " " not in name or name != name_key(case.referrer.name):
        return []  # a single given name alone is too common to mean anything
    mine, theirs = case.referee.email_canonical, case.referrer.email_canonical
    if mine is None or theirs is None:
        return []
    domain = mine.rpartition("@")[2]
    if domain != theirs.rpartition("@")[2]:
        return []
    return [
        Observation(
            INFO.name,
            1,
            f"referee and referrer are both {case.referee.name!r} at {domain}",
            {"name": name, "domain": domain},
        )
    ]
