"""How well the fraud engine tells fraud from legitimate referrals, and whether it does so
before money leaks: per seeded fraud kind recall, precision and the referrer leak rate (a
reward spendable before the flag) with the leaked amount; per legitimate kind false
positives, friction (sent to review) and the median hours from the referee's purchase to the
referrer's reward becoming spendable; on the labelled synthetic shop of
`tests/fraud/synthetic.py`, late-evidence scenarios included (the card only at purchase, the
referrer's device or card recorded after the referee's, rings closing days later, bursts
straddling hourly windows, farms whose first accounts are clean).

Issue 13's before/after tables: `--legit 2000 --fraud-scale 2 --variants` (SQLite, seed 7).

    .venv/bin/python bench/fraud_quality.py [--legit 5000] [--fraud-scale 4] [--seed 7] [--variants]
        [--signal similar_email.threshold=0.92 ...]

DATABASE_URL picks the database, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/fraud_bench (an
existing database, migrated here); by default a temporary SQLite file. Each run adds its own merchant,
so one database can hold several. The service is called in-process, one committed transaction per
action as the API does; `--signal` tries policy changes (set on the program before the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.models import load_all_models  # noqa: E402

# Every model before any module that builds statements as it is imported: a foreign key column
# takes its type from the column it names, so a statement built before the merchants table is
# known binds merchant_id untyped, which SQLite cannot bind (a UUID). `referral serve` and the
# worker import the whole schema first; this script did not, and failed on its default SQLite.
load_all_models()

from app.db import create_engine, create_session_factory  # noqa: E402
from app.fraud.policy import SignalChange  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from tests.fraud import synthetic  # noqa: E402

FRAUD_PER_KIND = 50  # at --fraud-scale 1


def signal_change(text: str) -> SignalChange:
    """`similar_email.threshold=0.92`, `shared_ip.weight=0`, `ring.enabled=false`."""
    target, _, value = text.partition("=")
    signal, _, name = target.partition(".")
    if name == "weight":
        return SignalChange(signal, weight=int(value))
    if name == "threshold":
        return SignalChange(signal, threshold=float(value))
    if name == "enabled":
        return SignalChange(signal, enabled=value.lower() in ("1", "true", "yes"))
    raise SystemExit(f"--signal {text!r}: NAME.weight|threshold|enabled=VALUE")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legit", type=int, default=5000, help="legitimate referrals")
    parser.add_argument("--fraud-scale", type=float, default=4, help=f"x {FRAUD_PER_KIND} referrals of each fraud kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", action="store_true", help="a row per variant of each kind too")
    parser.add_argument(
        "--signal",
        action="append",
        default=[],
        metavar="NAME.FIELD=VALUE",
        help="a policy change to try: weight, threshold or enabled of one signal (repeatable)",
    )
    args = parser.parse_args()
    changes = [signal_change(text) for text in args.signal]
    url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/fraud_quality.db"
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        factory = create_session_factory(engine)
        started = time.perf_counter()
        dataset = synthetic.generate(seed=args.seed, legit=args.legit, fraud_per_kind=round(FRAUD_PER_KIND * args.fraud_scale))
        print(
            f"{engine.dialect.name}: seed {args.seed}, {len(dataset.labels)} referrals, {len(dataset.events)} actions "
            f"(generated in {time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        outcome = await synthetic.run(factory, dataset, policy=changes)
        quality = await synthetic.measure(factory, dataset, outcome)
    finally:
        await engine.dispose()
    policy = ", ".join(args.signal) or "default policy"
    print(f"Fraud quality, {engine.dialect.name}, seed {args.seed}, {policy}\n")
    print(quality.table(variants=args.variants))
    if quality.missing:
        print(f"\n{len(quality.missing)} labelled referrals were not created, e.g. {quality.missing[:5]}")


if __name__ == "__main__":
    asyncio.run(main())
