"""A referral that closes a cycle in the program's referral graph: A refers B and B refers
A, or A -> B -> C -> A. Everyone is referred at most once per program, so the path back
from the referrer is a chain: the search walks up it (at most `MAX_DEPTH` indexed lookups)
instead of exploring the graph, which is why it runs inline. Every link of a closed ring is
put in review with the path as evidence (its `related` referrals).

A chain that has not closed (yet) whose members share a device, card, address or browser with
the new referee is a ring candidate: the same people a few accounts apart. Review, not block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from app.fraud.models import CustomerIdentifier
from app.fraud.signals.base import Observation, SignalInfo
from app.referrals.models import Customer

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="ring",
    description="The referral closes a cycle of up to 4 referrals (A -> B -> A, A -> B -> C -> A, ...).",
    weight=80,
    threshold=1,
    value_meaning="1 when the referral closes a cycle",
)
CANDIDATE = SignalInfo(
    name="ring_candidate",
    description=(
        "The referee shares a device, card, address or browser with someone further up the referrer's chain "
        "(the referrer's own referrer, or theirs): an open ring."
    ),
    weight=50,
    threshold=1,
    value_meaning="how many people up the chain share something with the referee",
)
SIGNALS = (INFO, CANDIDATE)
MAX_DEPTH = 3  # referrals walked up from the referrer: cycles of up to 4 people
STRONG_KINDS = ("DEVICE", "PAYMENT", "ADDRESS", "IP_UA")


async def detect(case: Case) -> list[Observation]:
    chain = []  # (referral id, referrer id) walking up from the referrer
    current = case.referrer.id
    for _ in range(MAX_DEPTH):
        row = await case.referrer_of(current)
        if row is None:
            break
        chain.append(row)
        current = row.referrer_id
        if current == case.referee.id:
            return await _closed(case, chain)
    return await _candidate(case, chain) if chain else []


async def _closed(case: Case, chain: list[Any]) -> list[Observation]:
    people = [case.referee.id, *[row.referrer_id for row in reversed(chain[:-1])], case.referrer.id]
    names = dict((await case.session.execute(select(Customer.id, Customer.external_id).where(Customer.id.in_(people)))).all())
    cycle = " -> ".join(names.get(p, "?") for p in [*people, case.referee.id])
    return [
        Observation(
            INFO.name,
            1,
            f"this referral closes a ring of {len(chain) + 1}: {cycle}",
            {"cycle": [names.get(p, "?") for p in people], "length": len(chain) + 1},
            tuple(str(row.id) for row in chain),
        )
    ]


async def _candidate(case: Case, chain: list[Any]) -> list[Observation]:
    """People up the chain (beyond the referrer, whom other signals compare) seen with one of
    the referee's strong identifiers: one query, only for referrers who were referred themselves."""
    above = {row.referrer_id for row in chain} - {case.referrer.id, case.referee.id}
    mine = [(i.kind, i.value_hash) for i in await case.referee_identifiers() if i.kind in STRONG_KINDS]
    if not above or not mine:
        return []
    rows = (
        await case.session.execute(
            select(CustomerIdentifier.customer_id, CustomerIdentifier.kind, Customer.external_id)
            .join(Customer, Customer.id == CustomerIdentifier.customer_id)
            .where(
                CustomerIdentifier.merchant_id == case.merchant_id,
                CustomerIdentifier.customer_id.in_(above),
                or_(
                    *[
                        and_(CustomerIdentifier.kind == kind, CustomerIdentifier.value_hash == value_hash)
                        for kind, value_hash in mine
                    ]
                ),
            )
        )
    ).all()
    if not rows:
        return []
    sharing = sorted({(r.external_id, r.kind.lower()) for r in rows})
    people = sorted({name for name, _ in sharing})
    return [
        Observation(
            CANDIDATE.name,
            len(people),
            f"the referee shares {', '.join(f'a {kind} with {name}' for name, kind in sharing)}, up the chain of referrer "
            f"{case.referrer.external_id}",
            {"shared_with": people, "chain_length": len(chain)},
            tuple(str(row.id) for row in chain),
        )
    ]
