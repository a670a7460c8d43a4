"""The referrer's full name written another way: in the other script or another spelling
(`Ali Rezaei` / `علی رضایی`, `Mohammad Hosseini` / `Muhammad Husaini`), compared by the
consonant skeleton of `app.text.name_skeleton`. Common names are shared by strangers and the
skeleton is coarse, so this is a weak signal: a hint next to stronger evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo
from app.text import name_key, name_skeleton

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="similar_name",
    description="Referee's full name is the referrer's in another script or spelling (Ali Rezaei / علی رضایی). Weak alone.",
    weight=10,
    threshold=1,
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    mine, theirs = case.referee.name, case.referrer.name
    skeleton = name_skeleton(mine)
    if not skeleton or skeleton != name_skeleton(theirs):
        return []
    spelled = "the same name" if name_key(mine) == name_key(theirs) else "the same name spelled differently"
    return [
        Observation(
            INFO.name,
            1,
            f"referee {mine!r} and referrer {theirs!r} have {spelled}",
            {"referee_name": mine, "referrer_name": theirs, "skeleton": skeleton},
        )
    ]
