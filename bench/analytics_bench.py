"""The program overview (`programAnalytics { funnel money referrers }`) at scale, on PostgreSQL.

Seeds a fresh database with COPY (not through the API): one merchant, one program, `--actions`
actions (half signups that created a referral, half referred purchases in USD or EUR, spread
over the past year) and `--clicks` clicks, then rebuilds the rollups (`referral analytics
backfill`'s work, timed) and asks for the overview through the app in-process (GraphQL, the
API's database role, row-level security on) `--runs` times: p50 and p95 for a 30-day and a
365-day period. Prints the EXPLAIN (ANALYZE) of every statement one overview runs.

    .venv/bin/python bench/analytics_bench.py --actions 10000 --clicks 50000
    .venv/bin/python bench/analytics_bench.py --actions 1000000 --clicks 5000000
    # seed once, measure again after a change (migrates the kept database, rebuilds the rollups):
    .venv/bin/python bench/analytics_bench.py --actions 1000000 --clicks 5000000 --keep --database bench_1m
    .venv/bin/python bench/analytics_bench.py --reuse bench_1m --rebuild

Reward and ledger rows are not seeded: the overview reads their rollups, whose size does not
grow with them (a few rows per program and day).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_session_factory  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations import grant_app_role, upgrade  # noqa: E402
from bench.suite import PURCHASE_COLUMNS, REFERRAL_COLUMNS  # noqa: E402

APP_ROLE = "referral_bench_app"
OVERVIEW = """
query($p: ID!, $from: Date!, $to: Date!) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    rolledUpAt
    funnel { total { clicks signups referred qualified rewarded signupRate referralRate qualificationRate }
             byChannel { channel clicks referred qualified } }
    money { revenue { currency gross refunded net } rewardCost { kind unit granted takenBack net }
            returns { currency netRevenue cost costPerAcquiredCustomer roi } commission { currency earned paid owed } }
    referrers(first: 10) { leaderboard { rank previousRank customerExternalId qualified referred revenue { currency amount } }
                           codeHolders activeReferrers shareReferring invitesPerCustomer inviteConversion kFactor }
  }
}"""
CHANNELS = ("whatsapp", "email", "x", "telegram", None)


def uuid7_at(moment: dt.datetime, n: int) -> uuid.UUID:
    """A UUIDv7 of `moment` (ids are creation-ordered in the app: app.db.new_id), unique by `n`."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62 | (n & ((1 << 62) - 1)))


async def seed(owner_url: str, actions: int, clicks: int) -> dict:
    from app.merchants import service as merchants
    from app.merchants.models import ApiKeyKind

    engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with create_session_factory(engine, reason="bench seed")() as session:
        merchant = await merchants.create_merchant(session, name="Bench Shop")
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        await session.commit()
    await engine.dispose()

    connection = await asyncpg.connect(owner_url)
    now = dt.datetime.now(dt.UTC)
    year = 365 * 86400
    program_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO programs (id, merchant_id, name, status, attribution_window_days, claim_window_days,"
        " code_style, code_length, created_at, updated_at) VALUES ($1, $2, 'Bench', 'ACTIVE', 30, 14, 'RANDOM', 8, $3, $3)",
        program_id,
        merchant.id,
        now - dt.timedelta(days=366),
    )
    started = time.monotonic()
    referrals_count = actions // 2
    referrers = max(10, referrals_count // 10)
    customers = [
        (uuid.uuid4(), merchant.id, f"c{i}", now - dt.timedelta(days=366), now) for i in range(referrers + referrals_count)
    ]
    await connection.copy_records_to_table(
        "customers", records=customers, columns=["id", "merchant_id", "external_id", "created_at", "updated_at"]
    )
    codes = [
        (
            uuid.uuid4(),
            merchant.id,
            program_id,
            customers[i][0],
            f"C{i:09d}",
            f"C{i:09d}",
            False,
            True,
            now - dt.timedelta(seconds=year * i // referrers),
        )
        for i in range(referrers)
    ]
    await connection.copy_records_to_table(
        "referral_codes",
        records=codes,
        columns=["id", "merchant_id", "program_id", "customer_id", "code", "lookup_key", "is_vanity", "active", "created_at"],
    )

    def click_rows():  # in time order, as they arrive
        for n in range(clicks):
            at = now - dt.timedelta(seconds=year * (clicks - n) / clicks)
            yield (
                uuid7_at(at, n),
                merchant.id,
                program_id,
                codes[n * 7 % referrers][0],
                f"at_{n:012d}",
                CHANNELS[n % 5],
                at,
                at + dt.timedelta(days=30),
            )

    await connection.copy_records_to_table(
        "clicks",
        records=click_rows(),
        columns=["id", "merchant_id", "program_id", "code_id", "attribution_token", "channel", "created_at", "expires_at"],
    )
    referral_rows, action_rows = [], []
    for n in range(referrals_count):
        referee = customers[referrers + n][0]
        referrer = n * 7 % referrers  # not in order: leaders spread over the year
        arrived = now - dt.timedelta(seconds=year * (referrals_count - n) / referrals_count)
        bought = min(now, arrived + dt.timedelta(days=n % 9))
        referral_id = uuid7_at(arrived, n)
        referral_rows.append(
            (
                referral_id,
                merchant.id,
                program_id,
                customers[referrer][0],
                referee,
                codes[referrer][0],
                "CODE",
                "QUALIFIED",
                arrived,
                arrived,
                bought,
            )
        )
        action_rows.append(
            (
                uuid7_at(arrived, 2 * n),
                merchant.id,
                referee,
                program_id,
                referral_id,
                "SIGNUP",
                f"s{n}",
                "x",
                None,
                None,
                None,
                arrived,
                arrived,
                "REFERRAL_CREATED",
            )
        )
        action_rows.append(
            (
                uuid7_at(bought, 2 * n + 1),
                merchant.id,
                referee,
                program_id,
                referral_id,
                "PURCHASE",
                f"p{n}",
                "x",
                1000 + n % 9000,
                "USD" if n % 3 else "EUR",
                f"o{n}",
                bought,
                bought,
                "LINKED_TO_REFERRAL",
            )
        )
    await connection.copy_records_to_table("referrals", records=referral_rows, columns=REFERRAL_COLUMNS)
    await connection.copy_records_to_table(
        "actions",
        records=action_rows,
        columns=PURCHASE_COLUMNS,
    )
    await connection.execute("ANALYZE")
    await connection.close()
    return {
        "merchant_id": merchant.id,
        "program_id": program_id,
        "secret": secret.plaintext,
        "seed_seconds": round(time.monotonic() - started, 1),
    }


async def reused(owner_url: str) -> dict:
    """The merchant, program and a fresh secret key of a database seeded before."""
    from app.merchants import service as merchants
    from app.merchants.models import ApiKeyKind

    connection = await asyncpg.connect(owner_url)
    await connection.execute("SELECT set_config('app.scope', 'system', false)")
    merchant_id, program_id = await connection.fetchrow("SELECT merchant_id, id FROM programs WHERE name = 'Bench'")
    await connection.close()
    engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with create_session_factory(engine, reason="bench")() as session:
        secret = await merchants.create_api_key(session, merchant_id=merchant_id, kind=ApiKeyKind.SECRET)
        await session.commit()
    await engine.dispose()
    return {"merchant_id": merchant_id, "program_id": program_id, "secret": secret.plaintext}


async def rebuild(owner_url: str, merchant_id: uuid.UUID) -> float:
    from app.analytics import rollup

    engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
    started = time.monotonic()
    async with create_session_factory(engine, reason="bench backfill")() as session:
        await rollup.rebuild(session, merchant_id=merchant_id)
        await session.commit()
    await engine.dispose()
    connection = await asyncpg.connect(owner_url)
    await connection.execute("ANALYZE analytics_daily")
    await connection.close()
    return round(time.monotonic() - started, 1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def measure(app_url: str, owner_url: str, seeded: dict, runs: int, explain: bool) -> dict:
    engine = create_engine(app_url, pool_size=4)
    settings = Settings(app_env="production", secret_key="bench-secret", rate_limits_enabled=False, embedded_worker=False)
    app = create_app(settings, engine=engine)
    statements: list[tuple[str, tuple]] = []
    results = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        today = dt.datetime.now(dt.UTC).date()
        for label, days in (("30 days", 30), ("365 days", 365)):
            variables = {
                "p": str(seeded["program_id"]),
                "from": (today - dt.timedelta(days=days - 1)).isoformat(),
                "to": today.isoformat(),
            }
            headers = {"Authorization": f"Bearer {seeded['secret']}"}
            timings = []
            for run in range(runs + 3):
                capture = explain and run == 0 and label == "30 days"
                if capture:
                    record = lambda _c, _cur, statement, parameters, *_a: statements.append((statement, parameters))  # noqa: E731
                    event.listen(engine.sync_engine, "before_cursor_execute", record)
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": OVERVIEW, "variables": variables}, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if capture:
                    event.remove(engine.sync_engine, "before_cursor_execute", record)
                body = response.json()
                assert "errors" not in body, body
                if run >= 3:  # the first few warm caches
                    timings.append(elapsed)
            funnel = body["data"]["programAnalytics"]["funnel"]["total"]
            results[label] = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(percentile(timings, 0.95), 1),
                "funnel": funnel,
            }
    await engine.dispose()
    if explain:
        connection = await asyncpg.connect(owner_url)
        await connection.execute("SELECT set_config('app.scope', 'system', false)")
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT") or "set_config" in statement:
                continue
            plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS OFF, COSTS OFF) " + statement, *parameters)
            print("\n" + " ".join(statement.split())[:300])
            print("\n".join("    " + row[0] for row in plan))
        await connection.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--clicks", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (its name is printed)")
    parser.add_argument("--reuse", metavar="DATABASE", help="a database kept by --keep: skip the seed (and keep it)")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="with --reuse: migrate the database to the code's head and rebuild the rollups first",
    )
    parser.add_argument("--database", metavar="NAME", help="the new database's name (default referral_bench_<random>)")
    args = parser.parse_args()

    name = args.reuse or args.database or f"referral_bench_{uuid.uuid4().hex[:8]}"
    base = args.admin_url.rsplit("/", 1)[0]
    owner_url = f"{base}/{name}"
    app_url = f"postgresql+asyncpg://{APP_ROLE}@{base.split('@', 1)[1]}/{name}"
    if not args.reuse:
        admin = await asyncpg.connect(args.admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        with contextlib.suppress(asyncpg.DuplicateObjectError):
            await admin.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        await admin.close()
    try:
        if args.reuse and args.rebuild:
            engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
            await upgrade(engine)
            await grant_app_role(engine, APP_ROLE)
            await engine.dispose()
        if args.reuse:
            seeded = await reused(owner_url)
            print(f"reusing {name}", flush=True)
        else:
            engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
            await upgrade(engine)
            await grant_app_role(engine, APP_ROLE)
            await engine.dispose()
            seeded = await seed(owner_url, args.actions, args.clicks)
            print(
                f"seeded {args.actions:,} actions and {args.clicks:,} clicks in {seeded['seed_seconds']} s into {name}",
                flush=True,
            )
        if not args.reuse or args.rebuild:
            print(
                f"rollups rebuilt (referral analytics backfill) in {await rebuild(owner_url, seeded['merchant_id'])} s",
                flush=True,
            )
        results = await measure(app_url, owner_url, seeded, args.runs, not args.no_explain)
        for label, r in results.items():
            print(f"\noverview over {label}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms ({args.runs} runs); funnel {r['funnel']}")
    finally:
        if not (args.keep or args.reuse):
            admin = await asyncpg.connect(args.admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
