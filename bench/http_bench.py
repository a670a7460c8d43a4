"""HTTP benchmark: a real uvicorn server process and a load process on loopback.

    .venv/bin/python bench/http_bench.py --scenario ping
    .venv/bin/python bench/http_bench.py --scenario record_action --concurrency 32
    .venv/bin/python bench/http_bench.py --scenario record_action --database postgresql
    .venv/bin/python bench/http_bench.py --scenario referrals_page --database postgresql
    .venv/bin/python bench/http_bench.py --scenario widget_session   # the share panel: publishable key, CORS, signed customer
    .venv/bin/python bench/http_bench.py --scenario track_click      # a ?ref= landing from a shop's origin
    .venv/bin/python bench/http_bench.py --scenario record_action --wrk   # load from wrk (C), if installed

Each run uses a fresh database (a temp SQLite file, or a new PostgreSQL database dropped
afterwards), sends a bounded number of requests and prints requests/s and latency percentiles.
The server and the load generator share this machine's cores, so numbers are comparable
between runs here, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import create_engine, create_session_factory  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.merchants.models import ApiKeyKind  # noqa: E402
from app.migrations import upgrade  # noqa: E402

PING = "{ __typename }"
RECORD = """mutation($input: RecordActionInput!) { recordAction(input: $input) {
  action { id attribution } referral { id } userErrors { code } } }"""
REFERRALS = """{ referrals(first: 50) { edges { node { id status referrer { externalId email } referee { externalId } } } } }"""
WIDGET_SESSION = """mutation($c: String!, $t: BigInt!, $s: String!, $d: String) {
  widgetSession(customerExternalId: $c, timestamp: $t, signature: $s, deviceId: $d) {
    session { code shareUrl successfulReferrals rewards { kind earned } program { texts { title } } } userErrors { code } } }"""
TRACK_CLICK = """mutation($input: TrackClickInput!) { trackClick(input: $input) { attributionToken userErrors { code } } }"""
SHOP = "https://shop.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def prepare(database_url: str) -> str:
    engine = create_engine(database_url)
    await upgrade(engine)
    async with create_session_factory(engine)() as session:
        merchant = await merchants.create_merchant(session, name="Bench")
        key = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        await session.commit()
    await engine.dispose()
    return key.plaintext


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


async def setup_referrals(client: httpx.AsyncClient, count: int) -> str:
    program = await gql(client, 'mutation { createProgram(input: {name: "Bench", status: ACTIVE}) { program { id } } }')
    program_id = program["createProgram"]["program"]["id"]
    code = await gql(
        client,
        'mutation($p: ID!) { issueReferralCode(input: {programId: $p, customerExternalId: "ref-0"}) { referralCode { code } } }',
        {"p": program_id},
    )
    code_value = code["issueReferralCode"]["referralCode"]["code"]
    for i in range(count):
        await gql(
            client,
            RECORD,
            {
                "input": {
                    "type": "SIGNUP",
                    "customerExternalId": f"seed-{i}",
                    "idempotencyKey": f"seed-{i}",
                    "referralCode": code_value,
                }
            },
        )
    return code_value


async def browser_key(client: httpx.AsyncClient) -> tuple[str, str]:
    """A publishable key and a widget secret, with the shop's origin allowed (as a merchant sets up the widget)."""
    await gql(client, "mutation($o: [String!]!) { setWidgetAllowedOrigins(origins: $o) { userErrors { code } } }", {"o": [SHOP]})
    secret = await gql(client, "mutation { rotateWidgetSecret { secret } }")
    key = await gql(client, "mutation { createApiKey(kind: PUBLISHABLE) { key } }")
    return key["createApiKey"]["key"], secret["rotateWidgetSecret"]["secret"]


async def run_load(base_url: str, key: str, scenario: str, concurrency: int, total: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:
        code = await setup_referrals(client, 50 if scenario == "referrals_page" else 1)
        if scenario in ("widget_session", "track_click"):  # from here on, a browser on the shop's page
            from app.widget.identity import sign

            publishable, widget_secret = await browser_key(client)
            client.headers.update({"Authorization": f"Bearer {publishable}", "Origin": SHOP})
            signed_at = int(time.time())
        counter = iter(range(total))
        latencies: list[float] = []
        run_id = uuid.uuid4().hex[:8]

        async def one(i: int) -> None:
            if scenario == "ping":
                query, variables = PING, None
            elif scenario == "record_action":
                query, variables = (
                    RECORD,
                    {
                        "input": {
                            "type": "SIGNUP",
                            "customerExternalId": f"c-{run_id}-{i}",
                            "idempotencyKey": f"k-{run_id}-{i}",
                            "referralCode": code,
                            "context": {"email": f"c{i}@example.com", "deviceId": f"d{i}"},
                        }
                    },
                )
            elif scenario == "widget_session":  # 100 customers, each opening their panel again and again
                customer = f"ref-{i % 100}"
                query, variables = (
                    WIDGET_SESSION,
                    {"c": customer, "t": signed_at, "s": sign(widget_secret, customer, signed_at), "d": f"d{i % 100}"},
                )
            elif scenario == "track_click":
                query, variables = TRACK_CLICK, {"input": {"code": code, "deviceId": f"d-{run_id}-{i}"}}
            else:
                query, variables = REFERRALS, None
            started = time.perf_counter()
            await gql(client, query, variables)
            latencies.append(time.perf_counter() - started)

        async def worker() -> None:
            for i in counter:
                await one(i)

        for i in range(min(20, total)):  # warm up connections and caches
            await one(total + i)
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{scenario}: {total} requests, concurrency {concurrency}: {total / elapsed:.0f} req/s, "
        f"p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
    )
    return latencies


WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local body
  if "%(scenario)s" == "record_action" then
    body = string.format('{"query":"mutation($input: RecordActionInput!) { recordAction(input: $input) { action { id attribution } referral { id } userErrors { code } } }","variables":{"input":{"type":"SIGNUP","customerExternalId":"w-%(run)s-%%d","idempotencyKey":"w-%(run)s-%%d","referralCode":"%(code)s"}}}', counter, counter)
  elseif "%(scenario)s" == "ping" then
    body = '{"query":"{ __typename }"}'
  else
    body = '{"query":"{ referrals(first: 50) { edges { node { id status referrer { externalId email } referee { externalId } } } } }"}'
  end
  return wrk.format("POST", "/graphql", {["Content-Type"]="application/json", ["Authorization"]="Bearer %(key)s"}, body)
end
"""


async def run_wrk(base_url: str, key: str, scenario: str, concurrency: int, seconds: int) -> None:
    """Load from wrk: the generator costs far less CPU than Python, so the server gets the cores."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        code = await setup_referrals(client, 50 if scenario == "referrals_page" else 1)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"scenario": scenario, "run": uuid.uuid4().hex[:8], "code": code, "key": key})
    result = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", script.name, f"{base_url}/graphql"],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(script.name)
    lines = [
        line.strip() for line in result.stdout.splitlines() if line.strip().startswith(("50%", "99%", "Requests/sec", "Non-2xx"))
    ]
    print(f"{scenario} (wrk, {concurrency} connections, {seconds}s): " + "; ".join(lines))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--scenario", choices=["ping", "record_action", "referrals_page", "widget_session", "track_click"], default="ping"
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="API processes (uvicorn workers)")
    parser.add_argument("--wrk", action="store_true", help="generate the load with wrk instead of Python")
    parser.add_argument("--seconds", type=int, default=10, help="duration of a --wrk run")
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    temp = tempfile.TemporaryDirectory()
    pg_name = None
    if args.database == "sqlite":
        database_url = f"sqlite+aiosqlite:///{temp.name}/bench.db"
    else:
        pg_name = f"referral_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres_admin_url)
        await admin.execute(f'CREATE DATABASE "{pg_name}"')
        await admin.close()
        database_url = args.postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{pg_name}"
    key = await prepare(database_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "production", "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as probe:
            for _ in range(100):
                try:
                    if (await probe.get(f"{base_url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        print(f"database: {args.database}")
        if args.wrk:
            await run_wrk(base_url, key, args.scenario, args.concurrency, args.seconds)
        else:
            await run_load(base_url, key, args.scenario, args.concurrency, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if pg_name:
            admin = await asyncpg.connect(args.postgres_admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await admin.close()
        temp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
