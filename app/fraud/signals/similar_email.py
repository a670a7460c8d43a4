"""Near-identical mailbox names: `jane.doe@x` vs `janedoe1@y`. Separators and trailing
digits are dropped, then the names are compared (difflib ratio, 0..1). Short names are
skipped: `ann` and `anna` are different people far too often."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="similar_email",
    description="Referee's and referrer's mailbox names are nearly the same (jane.doe vs janedoe1).",
    weight=60,
    threshold=0.92,  # 0.88 flagged one-initial differences: jennifer.a7 vs jennifer.c9, janderson vs tanderson
    value_meaning="similarity of the mailbox names, 0 to 1",
)
SIGNALS = (INFO,)
MIN_LENGTH = 5  # letters in the stripped mailbox name
REPORTED_FROM = 0.75  # kept as an observation from here, so a backtest can try lower thresholds


def mailbox_stem(email: str) -> str:
    local = email.rpartition("@")[0].split("+", 1)[0].lower()
    return re.sub(r"\d+$", "", re.sub(r"[._\-]", "", local))


def similarity(a: str, b: str) -> float:
    stem_a, stem_b = mailbox_stem(a), mailbox_stem(b)
    if min(len(stem_a), len(stem_b)) < MIN_LENGTH:
        return 0.0
    return round(SequenceMatcher(None, stem_a, stem_b).ratio(), 3)


async def detect(case: Case) -> list[Observation]:
    mine, theirs = case.referee.email_canonical, case.referrer.email_canonical
    if mine is None or theirs is None or mine == theirs:
        return []  # the same mailbox is same_email's
    value = similarity(mine, theirs)
    if value < REPORTED_FROM:
        return []
    return [
        Observation(
            INFO.name,
            value,
            f"{case.referee.email} looks like the referrer's {case.referrer.email} (similarity {value:.2f})",
            {"referee_email": case.referee.email, "referrer_email": case.referrer.email, "similarity": value},
        )
    ]
