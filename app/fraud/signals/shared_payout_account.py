"""A payout destination (PayPal email, IBAN, ...) of the referrer or the referee is also
another customer's: one person collecting through several accounts, or paying the referee's
rewards into the referrer's pocket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.fraud.signals.base import Observation, SignalInfo

if TYPE_CHECKING:
    from app.fraud.case import Case

INFO = SignalInfo(
    name="shared_payout_account",
    description="A payout account of the referrer or referee is also another customer's (duplicate payout method).",
    weight=80,
    threshold=1,
    value_meaning="other customers paid to the same destination",
)
SIGNALS = (INFO,)


async def detect(case: Case) -> list[Observation]:
    rows = await case.payout_sharers()  # read by Case.prefetch
    observations = []
    for party in (case.referee, case.referrer):
        others = sorted(
            {
                row.external_id: row.other_id
                for row in rows
                # the referrer's account shared with the referee is the referee's observation already
                if row.customer_id == party.id and not (party is case.referrer and row.other_id == case.referee.id)
            }.items()
        )
        if not others:
            continue
        role = "referee" if party is case.referee else "referrer"
        other_party = case.referrer if party is case.referee else case.referee
        names = ", ".join(
            f"{name} (the {'referrer' if role == 'referee' else 'referee'})" if other_id == other_party.id else name
            for name, other_id in others[:5]
        ) + (" ..." if len(others) > 5 else "")
        observations.append(
            Observation(
                INFO.name,
                len(others),
                f"the {role} {party.external_id}'s payout account is also used by {len(others)} other customer(s): {names}",
                {"party": role, "customer": party.external_id, "customers": [name for name, _ in others]},
            )
        )
    return observations
