"""The same full name at the same email domain (`Jane Doe <jd@acme.com>` referring
`Jane Doe <jane@acme.com>`). Names are compared without case, accents or punctuation."""

from __future__ import annotations

import re
import unicodedata

from app.fraud.signals.base import Observation, SignalInfo

INFO = SignalInfo(
    name="same_name_domain",
    description="Referee has the referrer's full name and the same email domain.",
    weight=60,
    threshold=1,
)
SIGNALS = (INFO,)


def normalized_name(name: str | None) -> str:
    if not name:
        return ""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z ]", " ", plain).split())


async def detect(case) -> list[Observation]:
    name = normalized_name(case.referee.name)
    if not name or " " not in name or name != normalized_name(case.referrer.name):
        return []  # a single given name alone is too common to mean anything
    mine, theirs = case.referee.email_canonical, case.referrer.email_canonical
    if mine is None or theirs is None:
        return []
    domain = mine.rpartition("@")[2]
    if domain != theirs.rpartition("@")[2]:
        return []
    return [Observation(
        INFO.name, 1,
        f"referee and referrer are both {case.referee.name!r} at {domain}",
        {"name": name, "domain": domain},
    )]
