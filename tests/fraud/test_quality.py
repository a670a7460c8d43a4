"""Measured quality of the fraud engine on a labelled synthetic shop (tests/fraud/synthetic.py):
every seeded fraud kind is caught, and legitimate referrals that merely look alike (households
behind one IP, colleagues behind an office NAT, friends on one carrier's CGNAT addresses,
popular referrers) are left alone. bench/fraud_quality.py runs the same at a larger size.

1,000 legitimate referrals (a 1 % ceiling allows ten false positives) and 40 of each fraud kind
(a recall floor of 0.95 allows two misses per kind): about 4,000 recordAction calls per backend.
"""

from __future__ import annotations

from app.db import create_session_factory
from tests.fraud import synthetic
from tests.rewards.helpers import assert_ledger_consistent

RECALL_FLOOR = 0.95  # on each seeded fraud kind
FALSE_POSITIVE_CEILING = 0.01  # of legitimate referrals put in review or blocked
FRAUD_PER_KIND = 40
LEGIT = 1000
ORGANIC = 150


async def test_every_seeded_fraud_kind_is_caught_and_lookalike_legitimate_referrals_are_left_alone(db):
    factory = create_session_factory(db)
    dataset = synthetic.generate(seed=7, legit=LEGIT, fraud_per_kind=FRAUD_PER_KIND, organic=ORGANIC)
    outcome = await synthetic.run(factory, dataset)
    quality = await synthetic.measure(factory, dataset, outcome)
    report = quality.table(variants=True)
    print(report)

    assert quality.missing == [] and not outcome.refused, f"the shop did not play out as generated\n{report}"
    assert min(quality.kinds[kind].count for kind in synthetic.FRAUD_KINDS) >= FRAUD_PER_KIND
    below = {kind: quality.recall(kind) for kind in synthetic.FRAUD_KINDS if quality.recall(kind) < RECALL_FLOOR}
    assert below == {}, f"recall below {RECALL_FLOOR}: {below}\n{report}"
    false_positives = quality.false_positive_rate
    assert false_positives <= FALSE_POSITIVE_CEILING, (
        f"{false_positives:.2%} of legitimate referrals flagged (at most {FALSE_POSITIVE_CEILING:.0%})\n{report}"
    )
    await assert_ledger_consistent(db)  # every hold and take-back of the run balanced
