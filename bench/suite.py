"""`make bench`: the hot paths against the machine's limit, at two database sizes, in one run.

For each size (default 10k and 1M customers; as many referrals, two months old and cleared, each
with the purchase that made it, 5x as many clicks, seeded with COPY, not through the API; then the
rewards those purchases earned under the 5 rules, written by the API's own granting, see
`seed_rewards`) on a fresh PostgreSQL database:

1. the bare endpoint: a Starlette app doing one INSERT per request into the same database
   (bench/baseline_app.py), the physical limit for one write per request;
2. `referral serve` (uvicorn, `--workers`, the API's role under row-level security, Redis
   broker, no rate limits) loaded by wrk with `bench/wrk/scenario.lua`:
   `track_click`, `record_action` (a new referee's first PURCHASE with a code, 5 active reward
   rules of which 4 grant, fraud checks on; the purchases go round the referrers' codes, and the
   report counts those an open fraud review held: `reviewed`), `referrals_page` (50 referrals
   with referrer and referee) and `widget` (the share panel's read with a publishable key). Where
   the server's autovacuum is off (CI machines), the database is ANALYZEd before each run, as
   autovacuum would once a tenth of a table changed.

Then the embedded default (`make run`): a SQLite file (10k customers, seeded through SQLAlchemy)
with the in-process broker and worker, `record_action` and `track_click`.

Prints a table (req/s, p50, p99, ratio to the bare INSERT), writes `bench/results/report.json`
and draws `bench/results/report.png` (matplotlib). Needs PostgreSQL, Redis and wrk (Debian).

    .venv/bin/python bench/suite.py [--sizes 10000,1000000] [--sqlite-size 10000] [--seconds 10] [--runs 2] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import create_engine  # noqa: E402
from app.migrations import grant_app_role, upgrade  # noqa: E402

SCENARIOS = ("track_click", "record_action", "referrals_page", "widget")
# The server's SECRET_KEY; the seed encrypts and hashes with it too (COPY bypasses the column types,
# and rows sealed with another key would fail every read).
SECRET_KEY = "bench-secret"
APP_ROLE = "referral_bench_app"
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# 5 active rules (RewardRuleInput); a new referee's first purchase earns 4 rewards (the milestone waits for the 5th)
RULES = [
    {"name": "Give $10", "trigger": "PURCHASE", "recipient": "REFERRER", "kind": "CREDIT", "amount": 1000, "currency": "USD"},
    {"name": "10% commission", "trigger": "PURCHASE", "recipient": "REFERRER", "kind": "COMMISSION", "percentBps": 1000},
    {"name": "15% off", "trigger": "PURCHASE", "recipient": "REFEREE", "kind": "DISCOUNT", "percentBps": 1500},
    {"name": "500 points", "trigger": "PURCHASE", "recipient": "REFEREE", "kind": "POINTS", "amount": 500},
    {
        "name": "5th friend bonus",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 5000,
        "currency": "USD",
        "conditions": {"milestone": 5},
    },
]
CREATE_RULE = (
    "mutation($p: ID!, $i: RewardRuleInput!) { createRewardRule(programId: $p, input: $i) { userErrors { code message } } }"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def code_of(i: int) -> str:
    chars = []
    for _ in range(8):
        i, r = divmod(i, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[r])
    return "B" + "".join(chars)


# The seeded referrals' columns (bench/analytics_bench.py seeds referrals of the same shape).
REFERRAL_COLUMNS = [
    "id",
    "merchant_id",
    "program_id",
    "referrer_id",
    "referee_id",
    "code_id",
    "source",
    "status",
    "created_at",
    "referred_at",
    "qualified_at",
]

# The seeded purchases' columns (bench/analytics_bench.py seeds actions of the same shape).
PURCHASE_COLUMNS = [
    "id",
    "merchant_id",
    "customer_id",
    "program_id",
    "referral_id",
    "type",
    "idempotency_key",
    "request_hash",
    "amount",
    "currency",
    "order_id",
    "occurred_at",
    "created_at",
    "attribution_status",
]


def use_server_key() -> None:
    """Seal and hash with the server's SECRET_KEY: what the seed writes, the server must read."""
    from app.config import get_settings

    os.environ["SECRET_KEY"] = SECRET_KEY
    get_settings.cache_clear()


def seed_rows(merchant_id: uuid.UUID, program_id: uuid.UUID, size: int, sealed) -> tuple[list, list]:
    """The seeded tables as (table, columns, records) in insert order, and the referrers' codes:
    an active program, `size` referees referred by `size // 5` referrers (each with a code), 5
    clicks per referral and the fraud engine's identifiers. Five referrals each: past the 5th-friend
    milestone, and a benchmark's few thousand purchases give no referrer 8 new referrals in 3 hours
    (the fraud check's burst, which would put them in review and measure that path instead). `sealed(value, column)` is what an
    encrypted column stores (COPY bypasses the column types; SQLAlchemy's inserts seal themselves)."""
    from app.fraud.policy import DEFAULT_QUIET_DAYS
    from app.personal import lookup_hash
    from app.text import code_key

    now = dt.datetime.now(dt.UTC)
    # Two months old, the seeded referrals were cleared long ago (the default policy's quiet
    # days after their purchase): a fraud flag on their referrer no longer reopens them.
    cleared_after = dt.timedelta(days=DEFAULT_QUIET_DAYS)
    referrers = max(100, size // 5)
    program = (program_id, merchant_id, "Bench", "ACTIVE", 30, 14, "https://shop.example/?ref={code}", "RANDOM", 8, now, now)
    customers = [
        (
            uuid.uuid4(),
            merchant_id,
            f"c{i}",
            sealed(f"c{i}@example.com", "customers.email"),
            sealed(f"c{i}@example.com", "customers.email_canonical"),
            now - dt.timedelta(days=90),
            now,
        )
        for i in range(size + referrers)
    ]
    codes = [
        (uuid.uuid4(), merchant_id, program_id, customers[i][0], code_of(i), False, True, now, code_key(code_of(i)))
        for i in range(referrers)
    ]
    referrals = []
    purchases = []  # the purchase that made each referral: every referee of a live shop has one
    for n in range(size):
        referee = customers[referrers + n]
        code = codes[n % referrers]
        at = now - dt.timedelta(days=60, seconds=n)
        referral_id = uuid.uuid4()
        referrals.append(
            (
                referral_id,
                merchant_id,
                program_id,
                code[3],
                referee[0],
                code[0],
                "CODE",
                "QUALIFIED",
                at,
                at,
                at,
                at + cleared_after,
            )
        )
        purchases.append(
            (uuid.uuid4(), merchant_id, referee[0], program_id, referral_id, "PURCHASE", f"seed-{n}", "seed")
            + (5000, "USD", f"seed-order-{n}", at, at, "REFERRAL_CREATED")
        )

    def clicks():
        for n in range(size * 5):
            code = codes[n % referrers]
            at = now - dt.timedelta(days=30, seconds=n)
            yield (
                uuid.uuid4(),
                merchant_id,
                program_id,
                code[0],
                uuid.uuid4().hex,
                sealed(f"seed-d{n}", "clicks.device_id"),
                lookup_hash(merchant_id, "DEVICE", f"seed-d{n}"),
                sealed(f"172.{n % 250}.{n // 250 % 250}.{n % 200 + 1}", "clicks.ip"),
                sealed("seed", "clicks.user_agent"),
                at,
                at + dt.timedelta(days=30),
            )

    def identifiers():
        for n, customer in enumerate(customers):
            seen = now - dt.timedelta(days=60)
            for kind, value in (("DEVICE", f"seed-dev{n}"), ("IP", f"172.{n % 250}.{n // 250 % 250}.{n % 200 + 1}")):
                yield (
                    uuid.uuid4(),
                    merchant_id,
                    customer[0],
                    kind,
                    sealed(value, "customer_identifiers.value"),
                    lookup_hash(merchant_id, kind, value),
                    seen,
                    seen,
                )

    tables = [
        (
            "programs",
            [
                "id",
                "merchant_id",
                "name",
                "status",
                "attribution_window_days",
                "claim_window_days",
                "share_url_template",
                "code_style",
                "code_length",
                "created_at",
                "updated_at",
            ],
            [program],
        ),
        ("customers", ["id", "merchant_id", "external_id", "email", "email_canonical", "created_at", "updated_at"], customers),
        (
            "referral_codes",
            ["id", "merchant_id", "program_id", "customer_id", "code", "is_vanity", "active", "created_at", "lookup_key"],
            codes,
        ),
        ("referrals", [*REFERRAL_COLUMNS, "cleared_at"], referrals),
        (
            "actions",
            PURCHASE_COLUMNS,
            purchases,
        ),
        (
            "clicks",
            [
                "id",
                "merchant_id",
                "program_id",
                "code_id",
                "attribution_token",
                "device_id",
                "device_id_hash",
                "ip",
                "user_agent",
                "created_at",
                "expires_at",
            ],
            clicks(),
        ),
        (
            "customer_identifiers",
            ["id", "merchant_id", "customer_id", "kind", "value", "value_hash", "first_seen_at", "last_seen_at"],
            identifiers(),
        ),
    ]
    return tables, codes


async def create_merchant(engine) -> tuple:
    """The bench shop and its secret and publishable keys, through the services."""
    from app.db import create_session_factory
    from app.merchants import service as merchants
    from app.merchants.models import ApiKeyKind

    async with create_session_factory(engine, reason="bench seed")() as session:
        merchant = await merchants.create_merchant(session, name="Bench Shop")
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        publishable = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE)
        await session.commit()
    return merchant.id, secret.plaintext, publishable.plaintext


def write_wrk_data(data_dir: Path, secret: str, publishable: str, codes: list) -> None:
    """The keys, codes and widget requests the wrk script reads."""
    (data_dir / "secret_key").write_text(secret + "\n")
    (data_dir / "publishable_key").write_text(publishable + "\n")
    sample = random.Random(7).sample(codes, min(len(codes), 5000))
    (data_dir / "codes").write_text("".join(code[4] + "\n" for code in sample))
    widget = '{"query":"query($c: String!) { referralCode(code: $c) { code shareUrl active } }","variables":{"c":"%s"}}'
    (data_dir / "widget_bodies").write_text("".join(widget % code[4] + "\n" for code in sample[:2000]))


async def seed(owner_url: str, size: int, data_dir: Path) -> dict:
    """`seed_rows` written with COPY into PostgreSQL; writes the wrk script's data."""
    from app.personal import keyring

    use_server_key()  # COPY bypasses the column types: the seed seals with the server's keys itself
    ring = keyring()
    engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
    merchant_id, secret, publishable = await create_merchant(engine)
    await engine.dispose()

    program_id = uuid.uuid4()
    started = time.monotonic()
    tables, codes = seed_rows(merchant_id, program_id, size, lambda value, column: ring.encrypt(value, context=column))
    connection = await asyncpg.connect(owner_url)
    for table, columns, records in tables:
        await connection.copy_records_to_table(table, records=records, columns=columns)
    await connection.execute("ANALYZE")
    await connection.close()
    seeded = time.monotonic() - started
    write_wrk_data(data_dir, secret, publishable, codes)
    return _seeded(owner_url.replace("postgresql://", "postgresql+asyncpg://"), merchant_id, program_id, secret, seeded, tables)


def _seeded(url: str, merchant_id: uuid.UUID, program_id: uuid.UUID, secret: str, seconds: float, tables: list) -> dict:
    """What a seed hands on: the shop's ids and key, its time, and (for `seed_rewards`) the
    database's URL with the seeded referrals and their purchases."""
    rows = {table: records for table, _columns, records in tables}
    return {
        "program_id": str(program_id),
        "merchant_id": merchant_id,
        "secret": secret,
        "seconds": round(seconds, 1),
        "history": (rows["referrals"], rows["actions"]),
        "url": url,
    }


async def seed_sqlite(url: str, size: int, data_dir: Path) -> dict:
    """`seed_rows` inserted through SQLAlchemy (which seals the encrypted columns) into a migrated
    SQLite file; writes the wrk script's data."""
    import sqlalchemy as sa

    from app.db import Base

    use_server_key()
    engine = create_engine(url)
    await upgrade(engine)
    merchant_id, secret, publishable = await create_merchant(engine)
    program_id = uuid.uuid4()
    started = time.monotonic()
    tables, codes = seed_rows(merchant_id, program_id, size, lambda value, column: value)
    async with engine.begin() as connection:
        for table, columns, records in tables:
            batch: list[dict] = []
            for record in records:
                batch.append(dict(zip(columns, record, strict=True)))
                if len(batch) == 5000:
                    await connection.execute(sa.insert(Base.metadata.tables[table]), batch)
                    batch = []
            if batch:
                await connection.execute(sa.insert(Base.metadata.tables[table]), batch)
        await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()
    seeded = time.monotonic() - started
    write_wrk_data(data_dir, secret, publishable, codes)
    return _seeded(url, merchant_id, program_id, secret, seeded, tables)


async def create_rules(base_url: str, secret: str, program_id: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as client:
        for rule in RULES:
            body = (await client.post("/graphql", json={"query": CREATE_RULE, "variables": {"p": program_id, "i": rule}})).json()
            assert body["data"]["createRewardRule"]["userErrors"] == [], body


async def seed_rewards(seeded: dict, batch: int = 2000) -> float:
    """The rewards the seeded purchases earned under the rules just created, written as the API
    writes them: the same `decide` (with the rule simulation's in-memory facts, the purchases
    replayed in time order, so the 5th referral of each referrer earns the milestone bonus),
    the same reward rows and the same `granting.write_rewards` (rewards, customer accounts,
    ledger transactions and entries, coupons), dated at their purchase. Without them the
    rewards and ledger tables started empty, unlike any live shop's: PostgreSQL, told by
    ANALYZE that they were empty, read them with sequential scans that grew with every
    purchase of the run (the fraud check's reward velocity took 55 ms after 14k rewards).
    Returns the seconds taken; ends with ANALYZE."""
    from types import SimpleNamespace

    from app.db import create_session_factory
    from app.rewards import granting
    from app.rewards import rules as rule_service
    from app.rewards.evaluation import decide, reward_row
    from app.rewards.simulation import SimulatedFacts

    started = time.monotonic()
    referrals, purchases = seeded["history"]
    merchant_id, program_id = seeded["merchant_id"], uuid.UUID(seeded["program_id"])
    engine = create_engine(seeded["url"])
    factory = create_session_factory(engine, reason="bench seed")
    async with factory() as session:
        rules = await rule_service.active_rules_for_trigger(
            session, merchant_id=merchant_id, program_id=program_id, trigger="PURCHASE"
        )
    specs = {rule.id: rule_service.spec_of(rule) for rule in rules}
    # referral columns: REFERRAL_COLUMNS; purchase columns: PURCHASE_COLUMNS
    by_id = {
        r[0]: SimpleNamespace(
            id=r[0], merchant_id=r[1], program_id=r[2], referrer_id=r[3], referee_id=r[4], status="QUALIFIED", created_at=r[8]
        )
        for r in referrals
    }
    qualified: dict = {}
    for r in referrals:
        qualified.setdefault(r[3], []).append(r[10])
    for times in qualified.values():
        times.sort()
    actions = sorted(
        (
            SimpleNamespace(
                id=p[0],
                customer_id=p[2],
                referral_id=p[4],
                type=p[5],
                amount=p[8],
                currency=p[9],
                occurred_at=p[11],
                metadata_={},
            )
            for p in purchases
        ),
        key=lambda action: action.occurred_at,
    )
    facts = SimulatedFacts(program_id, {(a.customer_id, a.type): (a.occurred_at, 1) for a in actions}, qualified)
    written = 0
    for start in range(0, len(actions), batch):
        rows, row_specs = [], []
        for action in actions[start : start + batch]:
            referral = by_id[action.referral_id]
            for rule in rules:
                for grant in await decide(rule, action, referral, facts):  # type: ignore[arg-type]
                    facts.record(grant, referral, action.occurred_at)  # type: ignore[arg-type]
                    spec = specs[rule.id]
                    rows.append(
                        reward_row(
                            grant, spec, action, referral, action.occurred_at, review_hold=False, clearance_wait=(False, None)
                        )
                    )
                    row_specs.append(spec)
        async with factory() as session:
            written += len(await granting.write_rewards(session, rows, row_specs))
            await session.commit()
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()
    print(f"  seeded {written:,} rewards in {time.monotonic() - started:.1f} s", flush=True)
    return round(time.monotonic() - started, 1)


def wrk(url: str, scenario: str, data_dir: Path, seconds: int, connections: int) -> dict:
    report = data_dir / f"{scenario}-{uuid.uuid4().hex[:6]}.json"
    script = ROOT / "bench" / "wrk" / "scenario.lua"
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            scenario,
            str(data_dir),
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if result.returncode != 0 or not report.exists():
        raise RuntimeError(f"wrk failed: {result.stdout}\n{result.stderr}")
    measured = json.loads(report.read_text())
    if result.stderr.strip():
        measured["stderr"] = result.stderr.strip()[:600]
    return measured


class Server:
    def __init__(self, command: list[str], env: dict[str, str], port: int, what: str) -> None:
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for_port(port, self.process, what)

    def stop(self) -> float:
        rss = rss_mb(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return rss


async def bench_size(args: argparse.Namespace, size: int) -> dict:
    name = f"referral_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    with contextlib.suppress(asyncpg.DuplicateObjectError):
        await admin.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    await admin.close()
    base = args.admin_url.rsplit("/", 1)[0]
    owner_url = f"{base}/{name}"
    app_url = f"postgresql+asyncpg://{APP_ROLE}@{base.split('@', 1)[1]}/{name}"
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{size}-"))
    result: dict = {"size": size, "scenarios": {}}
    try:
        engine = create_engine(owner_url.replace("postgresql://", "postgresql+asyncpg://"))
        await upgrade(engine)
        await grant_app_role(engine, APP_ROLE)
        await engine.dispose()
        seeded = await seed(owner_url, size, data_dir)
        result["seed_seconds"] = seeded["seconds"]
        print(f"  seeded {size:,} customers in {seeded['seconds']} s", flush=True)

        port = free_port()
        baseline = Server(
            [sys.executable, "bench/baseline_app.py", "--port", str(port), "--database", owner_url], {}, port, "baseline"
        )
        runs = [wrk(f"http://127.0.0.1:{port}", "baseline", data_dir, args.seconds, args.connections) for _ in range(args.runs)]
        baseline.stop()
        result["scenarios"]["baseline"] = runs
        print("  baseline: " + ", ".join(f"{r['rps']:.0f} req/s p99 {r['p99_ms']:.0f} ms" for r in runs), flush=True)

        port = free_port()
        env = {
            "DATABASE_URL": app_url,
            "APP_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "LOG_LEVEL": "WARNING",
            "RATE_LIMITS_ENABLED": "0",
            "BROKER_URL": args.broker_url,
            "EMBEDDED_WORKER": "0",
            "DATABASE_POOL_SIZE": str(args.pool_size),
        }
        api = Server(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
            env,
            port,
            "referral serve",
        )
        await create_rules(f"http://127.0.0.1:{port}", seeded["secret"], seeded["program_id"])
        result["seed_rewards_seconds"] = await seed_rewards(seeded)
        await load(f"http://127.0.0.1:{port}", SCENARIOS, data_dir, args, result, await stand_in_for_autovacuum(owner_url))
        result["api_rss_mb"] = round(api.stop(), 1)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep:
            admin = await asyncpg.connect(args.admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return result


SQLITE_SCENARIOS = ("record_action", "track_click")


async def stand_in_for_autovacuum(owner_url: str) -> Callable[[], Awaitable[None]] | None:
    """ANALYZE between runs when the server's autovacuum is off (this project's CI machines turn
    it off), as autovacuum would after a tenth of a table changed, which a run does at 10k: with
    the statistics of the seed, every reward written by the runs is one the planner does not know
    of. None when autovacuum is on."""
    connection = await asyncpg.connect(owner_url)
    try:
        if await connection.fetchval("SHOW autovacuum") == "on":
            return None
    finally:
        await connection.close()

    async def analyze() -> None:
        connection = await asyncpg.connect(owner_url)
        try:
            await connection.execute("ANALYZE")
        finally:
            await connection.close()

    print("  autovacuum is off on this server: ANALYZE before each run", flush=True)
    return analyze


async def load(
    url: str,
    scenarios: tuple[str, ...],
    data_dir: Path,
    args: argparse.Namespace,
    result: dict,
    before_each_run: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Warm up, then `args.runs` wrk runs of each scenario against the server at `url`."""
    for scenario in scenarios:
        wrk(url, scenario, data_dir, 2, 8)  # warm up
        runs = []
        for _ in range(args.runs):
            if before_each_run is not None:
                await before_each_run()
            runs.append(wrk(url, scenario, data_dir, args.seconds, args.connections))
        result["scenarios"][scenario] = runs
        print(
            f"  {scenario}: "
            + ", ".join(
                f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.0f} ms p99 {r['p99_ms']:.0f} ms"
                + (f" ({r['bad_answers']} bad)" if r["bad_answers"] else "")
                + (f" ({r['reviewed']} held by a fraud review)" if r.get("reviewed") else "")
                for r in runs
            ),
            flush=True,
        )


async def bench_sqlite(args: argparse.Namespace, size: int) -> dict:
    """The embedded default (`make run`): a SQLite file, the in-process broker and worker, one
    process; the write paths only (the target is recordAction's)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-sqlite-{size}-"))
    url = f"sqlite+aiosqlite:///{data_dir / 'referral.db'}"
    result: dict = {"size": size, "database": "sqlite", "scenarios": {}}
    try:
        seeded = await seed_sqlite(url, size, data_dir)
        result["seed_seconds"] = seeded["seconds"]
        print(f"  seeded {size:,} customers in {seeded['seconds']} s", flush=True)
        port = free_port()
        env = {
            "DATABASE_URL": url,
            "APP_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "LOG_LEVEL": "WARNING",
            "RATE_LIMITS_ENABLED": "0",
            "BROKER_URL": "stub://",  # in-process, with the worker in the API process (the embedded default)
            "EMBEDDED_WORKER": "auto",
        }
        api = Server([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env, port, "referral serve (SQLite)")
        await create_rules(f"http://127.0.0.1:{port}", seeded["secret"], seeded["program_id"])
        result["seed_rewards_seconds"] = await seed_rewards(seeded)
        await load(f"http://127.0.0.1:{port}", SQLITE_SCENARIOS, data_dir, args, result)
        result["api_rss_mb"] = round(api.stop(), 1)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["rps"])


def table(results: list[dict]) -> str:
    lines = ["| size | scenario | req/s (runs) | p50 | p99 | vs bare INSERT |", "|---|---|---|---|---|---|"]
    for result in results:
        baseline = result["scenarios"].get("baseline")
        limit = best(baseline)["rps"] if baseline else None
        size = f"{result['size']:,}" + (" (SQLite)" if result.get("database") == "sqlite" else "")
        for scenario, runs in result["scenarios"].items():
            top = best(runs)
            rates = " / ".join(f"{r['rps']:,.0f}" for r in runs)
            errors = sum(r.get("bad_answers", 0) for r in runs)
            if errors:  # an error answers fast: such a rate measures nothing
                rates += f" **({errors:,} answers were errors)**"
            share = "limit" if scenario == "baseline" else f"{top['rps'] / limit:.0%}" if limit else "-"
            lines.append(f"| {size} | {scenario} | {rates} | {top['p50_ms']:.1f} ms | {top['p99_ms']:.1f} ms | {share} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(1, 2, figsize=(13, 5))
    names = ["baseline", *SCENARIOS]
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        values = [best(result["scenarios"][n])["rps"] if n in result["scenarios"] else 0 for n in names]
        positions = [i + index * width for i in range(len(names))]
        rates.bar(positions, values, width, label=f"{result['size']:,} customers")
    rates.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(names))], ["bare INSERT", *SCENARIOS], rotation=15)
    rates.set_ylabel("requests / s (one API process)")
    rates.set_title("Throughput next to the one-INSERT limit")
    rates.legend()
    sizes = [r["size"] for r in results]
    for scenario in SCENARIOS:
        latency.plot(sizes, [best(r["scenarios"][scenario])["p50_ms"] for r in results], marker="o", label=f"{scenario} p50")
        latency.plot(
            sizes,
            [best(r["scenarios"][scenario])["p99_ms"] for r in results],
            marker="x",
            linestyle="--",
            label=f"{scenario} p99",
        )
    latency.set_xscale("log")
    latency.set_xlabel("customers in the database")
    latency.set_ylabel("latency (ms), 32 connections")
    latency.set_title("Latency against database size")
    latency.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--sqlite-size", type=int, default=10000, help="customers in the SQLite run (0: no SQLite run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        print(f"size {size:,}", flush=True)
        results.append(await bench_size(args, size))
    embedded = []
    if args.sqlite_size:
        print(f"SQLite (embedded default), size {args.sqlite_size:,}", flush=True)
        embedded.append(await bench_sqlite(args, args.sqlite_size))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "date": dt.date.today().isoformat(),
        "commit": commit,
        "cores": os.cpu_count(),
        "connections": args.connections,
        "seconds": args.seconds,
        "workers": args.workers,
        "results": results,
        "sqlite": embedded,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if results:  # a SQLite-only run (--sizes "") has no PostgreSQL sizes to draw
        plot(results, out / "report.png")
    print(
        f"\n{report['date']}, commit {commit}, {os.cpu_count()} cores, wrk {args.connections} connections x "
        f"{args.seconds} s, {args.workers} API process(es)\n"
    )
    print(table(results + embedded))
    for result in results + embedded:
        print(f"API process RSS after the {result['size']:,} run: {result['api_rss_mb']} MB")
    print(f"\nreport: {out / 'report.json'}, plot: {out / 'report.png'}")


if __name__ == "__main__":
    asyncio.run(main())
