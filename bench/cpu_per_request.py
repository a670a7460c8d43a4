"""CPU time of the API process per hot-path request, in-process (httpx's ASGI transport, no
network), on a fresh PostgreSQL database: a measure that holds on a busy machine, unlike
requests per second. Prints the median and p90 of process CPU milliseconds per request.

    .venv/bin/python bench/cpu_per_request.py [--requests 300] [--cprofile out.prof] [--sqlite]

With --sqlite the same runs on a fresh SQLite file (the embedded default), not PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_engine, create_session_factory  # noqa: E402
from app.main import create_app, freeze_what_start_built  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.merchants.models import ApiKeyKind  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from bench.suite import CREATE_RULE, RULES  # noqa: E402

REFERRERS = 200  # purchases go round-robin over them, each from its own network: the common, allowed case
RECORD = (
    "mutation($i: RecordActionInput!) { recordAction(input: $i) { action { id attribution } rewards { id } "
    "userErrors { code } } }"
)
CLICK = "mutation($i: TrackClickInput!) { trackClick(input: $i) { attributionToken userErrors { code } } }"
PAGE = "{ referrals(first: 50) { edges { node { id status referrer { externalId email } referee { externalId } } } } }"

gc_time = {0: 0.0, 1: 0.0, 2: 0.0}  # process seconds spent in the cyclic collector, by generation
_gc_started = [0.0]


def _time_collections(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = time.process_time()
    else:
        gc_time[info["generation"]] += time.process_time() - _gc_started[0]


async def main() -> None:
    gc.callbacks.append(_time_collections)
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--referrers", type=int, default=REFERRERS, help="more for longer runs, so that no referrer trips the velocity check"
    )
    parser.add_argument("--only", choices=["floor", "purchase", "click", "page"], help="measure one path (for a profiler)")
    parser.add_argument("--cprofile", help="write cProfile stats of the measured requests to this file")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    name = f"referral_cpu_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        admin = None
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='referral-cpu-')}/referral.db"
    else:
        admin = await asyncpg.connect(args.admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = args.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            merchant = await merchants.create_merchant(session, name="CPU")
            secret = (await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)).plaintext
            public = (await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE)).plaintext
            await session.commit()
        app = create_app(
            Settings(database_url=url, app_env="production", secret_key="cpu", rate_limits_enabled=False), engine=engine
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cpu") as client:

            async def gql(query, variables=None, key=secret):
                body = (
                    await client.post(
                        "/graphql",
                        json={"query": query, "variables": variables or {}},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                ).json()
                assert "errors" not in body, body
                return body["data"]

            program = await gql('mutation { createProgram(input: {name: "P", status: ACTIVE}) { program { id } } }')
            program_id = program["createProgram"]["program"]["id"]
            codes = []
            for i in range(args.referrers):
                issued = await gql(
                    "mutation($p: ID!, $c: String!) { issueReferralCode(input: {programId: $p, "
                    "customerExternalId: $c}) { referralCode { code } } }",
                    {"p": program_id, "c": f"ref{i}"},
                )
                codes.append(issued["issueReferralCode"]["referralCode"]["code"])
            for rule in RULES:
                await gql(CREATE_RULE, {"p": program_id, "i": rule})

            async def measure(label, call):
                for i in range(20):
                    await call(f"warm{i}")
                cpu = []
                statements = {"prepared": 0, "through SQLAlchemy": 0}

                def count(conn, cursor, *rest):  # app.prepared passes no cursor
                    statements["prepared" if cursor is None else "through SQLAlchemy"] += 1

                event.listen(engine.sync_engine, "before_cursor_execute", count)
                profiler = cProfile.Profile(time.process_time) if args.cprofile else None
                if profiler:
                    profiler.enable()
                collected = gc_time.copy()
                for i in range(args.requests):
                    started = time.process_time()
                    await call(f"r{i}")
                    cpu.append((time.process_time() - started) * 1000)
                gc_ms = {g: (gc_time[g] - collected[g]) * 1000 / args.requests for g in gc_time}
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(args.cprofile)
                event.remove(engine.sync_engine, "before_cursor_execute", count)
                cpu.sort()
                print(
                    f"{label}: CPU per request median {statistics.median(cpu):.2f} ms, p90 {cpu[int(len(cpu) * 0.9)]:.2f} ms, "
                    f"mean {statistics.fmean(cpu):.2f} ms"
                )
                print(
                    "  of which garbage collection, mean per request: "
                    + ", ".join(f"gen{g} {ms:.2f} ms" for g, ms in gc_ms.items())
                )
                print("  statements per request: " + ", ".join(f"{n / args.requests:.1f} {k}" for k, n in statements.items()))

            freeze_what_start_built()  # as `referral serve` does once started (its lifespan)
            sequence = iter(range(1_000_000))

            async def purchase(tag):
                n = next(sequence)
                result = await gql(
                    RECORD,
                    {
                        "i": {
                            "type": "PURCHASE",
                            "customerExternalId": f"c-{tag}-{uuid.uuid4().hex[:6]}",
                            "idempotencyKey": uuid.uuid4().hex,
                            "orderId": uuid.uuid4().hex,
                            "amount": 5000,
                            "currency": "USD",
                            "referralCode": codes[n % len(codes)],
                            "context": {
                                "email": f"{uuid.uuid4().hex[:8]}@example.com",
                                "deviceId": uuid.uuid4().hex,
                                "ip": f"10.{n // 62500}.{n // 250 % 250}.{n % 250 + 1}",
                                "userAgent": "cpu",
                                "paymentFingerprint": uuid.uuid4().hex,
                            },
                        }
                    },
                )
                assert result["recordAction"]["userErrors"] == [], result

            async def click(tag):
                await gql(CLICK, {"i": {"code": codes[hash(tag) % len(codes)], "deviceId": uuid.uuid4().hex}}, key=public)

            async def floor(tag):
                await gql("{ __typename }")

            async def page(tag):
                await gql(PAGE)

            paths = {
                "floor": ("floor: { __typename } through the whole HTTP and GraphQL stack", floor),
                "purchase": ("recordAction (referred purchase, 5 rules, fraud on)", purchase),
                "click": ("trackClick", click),
                "page": ("referrals(first: 50) with referrer and referee (bench/wrk/scenario.lua's page)", page),
            }
            if args.only == "page":  # the page needs referrals: made as the purchases make them
                for i in range(60):
                    await purchase(f"seed{i}")
            for path, (label, call) in paths.items():
                if args.only in (None, path):
                    await measure(label, call)
    finally:
        async with engine.connect() as connection:
            outcomes = await connection.execute(
                text("SELECT stage, outcome, count(*) AS n FROM fraud_decisions GROUP BY 1, 2 ORDER BY 1, 2")
            )
            print("fraud decisions:", ", ".join(f"{r.stage} {r.outcome}: {r.n}" for r in outcomes))
        await engine.dispose()
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
