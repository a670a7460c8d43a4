"""Numbered mailboxes behind one referrer: `deals1@x.com`, `deals2@x.com`, `deals3@x.com`.
Reads the referrer's latest referees in the program (`Case.referrers_recent_referrals`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="patterned_mailboxes",
    description="The referrer's referees include N mailboxes of one pattern at one domain (name1@, name2@, ...).",
    weight=60,
    threshold=3,
    value_meaning="referees with the pattern, this one included",
)
SIGNALS = (INFO,)
LOOKBACK = 200  # the referrer's latest referees compared
_NUMBERED = re.compile(r"^(?P<stem>[a-z._\-]*[a-z])[._\-]?(?P<number>\d{1,6})@(?P<domain>.+)$")


def pattern(email: str) -> tuple[str, str] | None:
    """(stem, domain) of a numbered mailbox, None for others."""
    match = _NUMBERED.match(email.lower())
    if match is None:
        return None
    return re.sub(r"[._\-]", "", match["stem"]), match["domain"]


async def detect(case: Case) -> list[Observation]:
    email = case.referee.email_canonical
    mine = pattern(email) if email else None
    if mine is None:
        return []
    # The referrer's latest referees, compared here: a LIKE on the email in SQL made
    # PostgreSQL scan all customers instead of walking the referrer's index.
    rows = await case.referrers_referrals(limit=LOOKBACK)
    matching = [row for row in rows if row.email_canonical and pattern(row.email_canonical) == mine]
    if not matching:
        return []
    count = len(matching) + 1
    stem, domain = mine
    return [
        Observation(
            INFO.name,
            count,
            f"referrer {case.referrer.external_id} referred {count} numbered mailboxes {stem}N@{domain}: "
            + ", ".join(row.email_canonical or "" for row in matching[:5]),
            {"pattern": f"{stem}N@{domain}", "count": count, "customers": [row.external_id for row in matching[:50]]},
            tuple(str(row.id) for row in matching[:50]),
        )
    ]
