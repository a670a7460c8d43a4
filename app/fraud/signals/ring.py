"""A referral that closes a cycle in the program's referral graph: A refers B and B refers
A, or A -> B -> C -> A. Everyone is referred at most once per program, so the path back
from the referrer is a chain: the search walks up it (at most `MAX_DEPTH` indexed lookups)
instead of exploring the graph, which is why it runs inline."""

from __future__ import annotations

from sqlalchemy import select

from app.fraud.signals.base import Observation, SignalInfo
from app.referrals.models import Customer

INFO = SignalInfo(
    name="ring",
    description="The referral closes a cycle of up to 4 referrals (A -> B -> A, A -> B -> C -> A, ...).",
    weight=80,
    threshold=1,
    value_meaning="1 when the referral closes a cycle",
)
SIGNALS = (INFO,)
MAX_DEPTH = 3  # referrals walked up from the referrer: cycles of up to 4 people


async def detect(case) -> list[Observation]:
    chain = []  # (referral id, referrer id) walking up from the referrer
    current = case.referrer.id
    for _ in range(MAX_DEPTH):
        row = await case.referrer_of(current)
        if row is None:
            return []
        chain.append(row)
        current = row.referrer_id
        if current == case.referee.id:
            break
    else:
        return []
    people = [case.referee.id, *[row.referrer_id for row in reversed(chain[:-1])], case.referrer.id]
    names = dict((await case.session.execute(
        select(Customer.id, Customer.external_id).where(Customer.id.in_(people))
    )).all())
    cycle = " -> ".join(names.get(p, "?") for p in [*people, case.referee.id])
    return [Observation(
        INFO.name, 1,
        f"this referral closes a ring of {len(chain) + 1}: {cycle}",
        {"cycle": [names.get(p, "?") for p in people], "length": len(chain) + 1},
        tuple(str(row.id) for row in chain),
    )]
