"""Time from a committed `recordAction` to its webhook arriving at a local receiver.

    .venv/bin/python bench/webhook_latency.py [--events 300] [--broker redis://127.0.0.1:6379/9]

Starts, on loopback: an HTTP receiver, one `referral serve` process and one `referral worker`
process (Redis or RabbitMQ, PostgreSQL), then records PURCHASE actions one at a time. Each
grants a reward, whose `reward.granted` webhook carries the reward's id; the
latency is its arrival minus the moment the API answered (the answer comes after the commit,
so the figure slightly under-counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import create_engine, create_session_factory  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.merchants.models import ApiKeyKind  # noqa: E402
from app.migrations import upgrade  # noqa: E402

arrivals: dict[str, float] = {}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        now = time.perf_counter()
        event = json.loads(body)
        if event.get("type") == "reward.granted":
            arrivals.setdefault(event["data"]["id"], now)  # the reward's id
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    name = f"referral_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = args.postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    engine = create_engine(database_url)
    await upgrade(engine)
    async with create_session_factory(engine)() as session:
        merchant = await merchants.create_merchant(session, name="Bench")
        key = (await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)).plaintext
        await session.commit()
    await engine.dispose()

    receiver_port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", receiver_port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": args.broker,
        "APP_ENV": "development",  # a plain-http receiver on loopback; production requires https
        "SECRET_KEY": "bench-secret",
        "LOG_LEVEL": "WARNING",
        "EMBEDDED_WORKER": "0",
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",
        "WORKER_QUEUE": f"bench-{uuid.uuid4().hex[:6]}",
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(api_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker_log = open(os.environ.get("BENCH_WORKER_LOG", os.devnull), "w")  # noqa: SIM115 (the worker process writes it)
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--processes", "1", "--threads", "4"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=worker_log,
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            program = await gql(client, 'mutation { createProgram(input: {name: "B", status: ACTIVE}) { program { id } } }')
            program_id = program["createProgram"]["program"]["id"]
            await gql(
                client,
                """mutation($p: ID!) { createRewardRule(programId: $p, input: {name: "Give $10",
                trigger: "PURCHASE", recipient: REFERRER, kind: CREDIT, amount: 1000, currency: "USD"}) { rewardRule { id } } }""",
                {"p": program_id},
            )
            made = await gql(
                client,
                """mutation($url: String!) { createWebhookEndpoint(input: {url: $url,
                eventTypes: ["reward.granted"]}) { userErrors { code message } } }""",
                {"url": f"http://127.0.0.1:{receiver_port}/hook"},
            )
            assert made["createWebhookEndpoint"]["userErrors"] == [], made
            code = await gql(
                client,
                """mutation($p: ID!) { issueReferralCode(input: {programId: $p,
                customerExternalId: "jane"}) { referralCode { code } } }""",
                {"p": program_id},
            )
            code = code["issueReferralCode"]["referralCode"]["code"]
            committed: dict[str, float] = {}
            for i in range(args.events + 10):
                recorded = await gql(
                    client,
                    """mutation($input: RecordActionInput!) { recordAction(input: $input) {
                    rewards { id } } }""",
                    {
                        "input": {
                            "type": "PURCHASE",
                            "customerExternalId": f"buyer-{i}",
                            "idempotencyKey": f"order-{i}",
                            "amount": 5000,
                            "currency": "USD",
                            "referralCode": code,
                        }
                    },
                )
                committed[recorded["recordAction"]["rewards"][0]["id"]] = time.perf_counter()
                await asyncio.sleep(0.02)
            deadline = time.perf_counter() + 60
            while len(arrivals) < len(committed) and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
    finally:
        api.terminate()
        worker.terminate()
        api.wait(timeout=10)
        worker.wait(timeout=20)
        server.shutdown()
        admin = await asyncpg.connect(args.postgres_admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    latencies = sorted((arrivals[k] - committed[k]) * 1000 for k in list(committed)[10:] if k in arrivals)
    if len(latencies) < 2:
        sys.exit(f"only {len(latencies)} webhooks arrived; sample arrival keys: {list(arrivals)[:3]}")
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{args.broker.split(':')[0]}: {len(latencies)} webhooks: commit -> arrival median {statistics.median(latencies):.1f} ms, "
        f"p99 {q[98]:.1f} ms, max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
