"""The cost of reward evaluation: `record_action` with 10 active rules vs none.

    .venv/bin/python bench/record_action_rules.py [--database postgresql|sqlite] [--actions 300]

Calls the service in-process (no HTTP, no GraphQL), one committed transaction per action as
the API does, on a fresh database: each action is a first PURCHASE of a new referee carrying
a referrer's code, so every rule is looked at and most of them grant.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import create_engine, create_session_factory  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from app.referrals import codes, programs  # noqa: E402
from app.referrals.models import CodeStyle, ProgramStatus  # noqa: E402
from app.rewards import rules  # noqa: E402
from app.rewards.models import Recipient, RewardKind  # noqa: E402
from app.rewards.rules import MetadataFilter, RuleDefinition, RuleSpec  # noqa: E402

TEN_RULES = [
    RuleDefinition("Give $10", "PURCHASE", Recipient.REFERRER, RewardKind.CREDIT, RuleSpec(amount=1000, currency="USD")),
    RuleDefinition("Get 15% off", "PURCHASE", Recipient.REFEREE, RewardKind.DISCOUNT, RuleSpec(percent_bps=1500)),
    RuleDefinition("100 points", "PURCHASE", Recipient.BOTH, RewardKind.POINTS, RuleSpec(amount=100, hold_days=14)),
    RuleDefinition(
        "10% commission",
        "PURCHASE",
        Recipient.REFERRER,
        RewardKind.COMMISSION,
        RuleSpec(percent_bps=1000, recurring_months=12, hold_days=30),
    ),
    RuleDefinition(
        "Big orders",
        "PURCHASE",
        Recipient.REFERRER,
        RewardKind.CREDIT,
        RuleSpec(amount=500, currency="USD", min_action_amount=10_000, min_action_currency="USD"),
    ),
    RuleDefinition(
        "First order only",
        "PURCHASE",
        Recipient.REFEREE,
        RewardKind.CREDIT,
        RuleSpec(amount=500, currency="USD", first_action_only=True),
    ),
    RuleDefinition(
        "Within 30 days", "PURCHASE", Recipient.REFERRER, RewardKind.POINTS, RuleSpec(amount=50, within_days_of_referral=30)
    ),
    RuleDefinition(
        "Shoes only",
        "PURCHASE",
        Recipient.REFERRER,
        RewardKind.CREDIT,
        RuleSpec(amount=300, currency="USD", metadata_filters=(MetadataFilter("category", "IN", ("shoes",)),)),
    ),
    RuleDefinition(
        "5th referral bonus",
        "PURCHASE",
        Recipient.REFERRER,
        RewardKind.CREDIT,
        RuleSpec(amount=2500, currency="USD", milestone=5),
    ),
    RuleDefinition(
        "Capped",
        "PURCHASE",
        Recipient.REFERRER,
        RewardKind.CREDIT,
        RuleSpec(amount=200, currency="USD", cap_per_referrer_monthly=3, program_monthly_budget=1_000_000),
    ),
]


async def run(database_url: str, rule_count: int, actions: int) -> list[float]:
    engine = create_engine(database_url, pool_size=2)
    await upgrade(engine)
    factory = create_session_factory(engine)
    async with factory() as session:
        merchant = await merchants.create_merchant(session, name="Bench")
        program = await programs.create_program(
            session,
            merchant_id=merchant.id,
            changes=programs.ProgramChanges(name="Bench", status=ProgramStatus.ACTIVE, code_style=CodeStyle.RANDOM),
        )
        referrer_codes = [
            (
                await codes.issue_referral_code(
                    session, merchant_id=merchant.id, program_id=program.id, customer_external_id=f"referrer-{i}"
                )
            ).code
            for i in range(20)
        ]
        for definition in TEN_RULES[:rule_count]:
            await rules.create_rule(session, merchant_id=merchant.id, program_id=program.id, definition=definition)
        await session.commit()

    timings = []
    for i in range(actions + 20):
        data = actions.ActionInput(
            type="PURCHASE",
            customer_external_id=f"buyer-{i}",
            idempotency_key=f"order-{i}",
            order_id=f"{i}",
            amount=12_000,
            currency="USD",
            referral_code=referrer_codes[i % len(referrer_codes)],
            metadata={"category": "shoes" if i % 2 else "hats"},
        )
        started = time.perf_counter()
        async with factory() as session:
            await actions.record_action(session, merchant_id=merchant.id, data=data)
            await session.commit()
        if i >= 20:  # warm-up excluded
            timings.append(time.perf_counter() - started)
    await engine.dispose()
    return timings


async def fresh_database(kind: str, admin_url: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db", None
    name = f"referral_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}", name


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = {}
    for rule_count in (0, 10):
        url, name = await fresh_database(args.database, args.postgres_admin_url)
        try:
            results[rule_count] = await run(url, rule_count, args.actions)
        finally:
            if name:
                admin = await asyncpg.connect(args.postgres_admin_url)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    for rule_count, timings in results.items():
        q = statistics.quantiles(timings, n=100)
        print(
            f"{args.database}, {rule_count:>2} active rules: recordAction median {statistics.median(timings) * 1000:.2f} ms, "
            f"p95 {q[94] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms over {len(timings)} purchases"
        )
    added = statistics.median(results[10]) - statistics.median(results[0])
    print(f"added by 10 rules: {added * 1000:.2f} ms per recordAction (median)")


if __name__ == "__main__":
    asyncio.run(main())
