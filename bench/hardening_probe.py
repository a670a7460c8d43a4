"""The outside audit's reproducers (issue 9) against a production-mode server, one line each.

    python bench/hardening_probe.py [--checkout DIR] [--database postgresql://postgres@127.0.0.1/db]

Starts `python -m app.cli serve` from DIR (default: this checkout; an older commit's checkout
gives the "before" column) on a fresh PostgreSQL database migrated by that checkout, creates a
merchant, and prints what each reproducer got. Nothing here is a test: the tests assert the
behaviour; this prints it for the closing note and the README.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fan_out(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query FanOut { ...F0 }\n" + "\n".join(fragments)


def raw_exchange(port: int, data: bytes, *, trickle: bool = False, timeout: float = 25) -> tuple[str, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            if trickle:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                for _ in range(int(timeout / 0.5)):
                    s.sendall(b"X")
                    time.sleep(0.5)
            else:
                s.sendall(data)
        except OSError:
            pass
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (OSError, TimeoutError):
            pass
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(connection closed, no answer)"
    return status, time.monotonic() - started


class Probe:
    def __init__(self, url: str, secret: str, publishable: str) -> None:
        self.url, self.secret, self.publishable = url, secret, publishable
        self.client = httpx.AsyncClient(timeout=60)

    async def gql(self, query: str, variables: dict | None = None, key: str | None = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return await self.client.post(self.url, json={"query": query, "variables": variables or {}}, headers=headers, **kwargs)


def short(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:110]!r}"


async def run(probe: Probe, port: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    s = probe.secret
    program = (await probe.gql('mutation { createProgram(input: {name: "P", status: ACTIVE}) { program { id } } }', key=s)).json()
    program_id = program["data"]["createProgram"]["program"]["id"]
    code = (
        await probe.gql(
            'mutation($p: ID!) { issueReferralCode(input: {programId: $p, customerExternalId: "jane"}) '
            "{ referralCode { code } } }",
            {"p": program_id},
            key=s,
        )
    ).json()["data"]["issueReferralCode"]["referralCode"]["code"]
    await probe.gql(
        'mutation($p: ID!) { createRewardRule(programId: $p, input: {name: "10%", trigger: "PURCHASE", '
        "recipient: REFERRER, kind: COMMISSION, percentBps: 1000}) { userErrors { code } } }",
        {"p": program_id},
        key=s,
    )
    await probe.gql(
        'mutation { createWebhookEndpoint(input: {url: "https://hooks.example.com/r", eventTypes: ["reward.reversed"]}) '
        "{ userErrors { code } } }",
        key=s,
    )
    record = (
        "mutation($i: RecordActionInput!) { recordAction(input: $i) { refund { orderFound rewards { reversedAmount } } "
        "userErrors { code } } }"
    )
    await probe.gql(
        record,
        {
            "i": {
                "type": "PURCHASE",
                "customerExternalId": "bob",
                "idempotencyKey": "o1",
                "orderId": "1",
                "amount": 10000,
                "currency": "USD",
                "referralCode": code,
            }
        },
        key=s,
    )
    refund = await probe.gql(
        record,
        {
            "i": {
                "type": "REFUND",
                "customerExternalId": "bob",
                "idempotencyKey": "r1",
                "orderId": "1",
                "amount": 2500,
                "currency": "USD",
            }
        },
        key=s,
    )
    out.append(("1 partial refund with an endpoint", short(refund)))

    nested = await probe.gql(
        '{ customer(externalId: "jane") { referralCodes { code } referrals(first: -1) { nodes { id } } } }', key=s
    )
    out.append(("2 failing field next to a loading sibling", short(nested)))
    mutation = await probe.gql(
        'mutation { upsertCustomer(input: {externalId: "jane", name: "J"}) { customer { referralCodes '
        "{ code } referrals(first: -1) { nodes { id } } } } }",
        key=s,
    )
    out.append(("2 same, in a mutation (which commits)", short(mutation)))
    public = await probe.gql('{ referralCode(code: "%s") { shareUrl customer { externalId } } }' % code, key=probe.publishable)
    out.append(("2 same, publishable key", short(public)))

    deep = await probe.client.post(probe.url, content=b"[" * 3000 + b"]" * 3000, headers={"content-type": "application/json"})
    out.append(("4 JSON body nested 3,000 levels", short(deep)))
    scalar = await probe.client.post(probe.url, content=b'"{ __typename }"', headers={"content-type": "application/json"})
    out.append(("4 JSON body that is a string", short(scalar)))
    out.append(("5 { ...Nope }", short(await probe.gql("{ ...Nope }"))))
    big = await probe.gql(
        'mutation { recordAction(input: {type: "PURCHASE", customerExternalId: "x", idempotencyKey: "k", '
        'amount: 9007199254740993, currency: "USD"}) { replayed } }',
        key=s,
    )
    out.append(("6 BigInt literal 2^53+1", short(big)))
    lone = await probe.client.post(
        probe.url,
        content=b'{"query": "mutation { upsertCustomer(input: {externalId: \\"a\\ud800b\\"}) { userErrors { code } } }"}',
        headers={"content-type": "application/json", "authorization": f"Bearer {s}"},
    )
    out.append(("6 lone surrogate in the document", short(lone)))
    variable = await probe.client.post(
        probe.url,
        content=b'{"query": "mutation($e: String!) { upsertCustomer(input: {externalId: $e}) { userErrors { code } } }", '
        b'"variables": {"e": "a\\ud800b"}}',
        headers={"content-type": "application/json", "authorization": f"Bearer {s}"},
    )
    out.append(("6 lone surrogate in a variable", short(variable)))

    for size in (100 * 1024, 10 * 1024 * 1024):
        status, took = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-F: " + b"a" * size + b"\r\n\r\n")
        out.append((f"7 header of {size // 1024} kB", f"{status} ({took:.1f} s)"))
    status, took = raw_exchange(port, b"", trickle=True, timeout=20)
    out.append(("7 headers trickling, a byte every 0.5 s", f"{status} after {took:.1f} s"))

    webhook = await probe.gql(
        'mutation { createWebhookEndpoint(input: {url: "https://[2002:7f00:1::]/hook", eventTypes: '
        '["reward.granted"]}) { endpoint { id } userErrors { code } } }',
        key=s,
    )
    out.append(("8 webhook to 6to4 of 127.0.0.1 (created; refused at delivery)", short(webhook)))

    statuses = []
    for i in range(500):
        response = await probe.gql(
            "mutation($i: TrackClickInput!) { trackClick(input: $i) { attributionToken } }",
            {"i": {"code": code, "deviceId": f"d{i}"}},
            key=probe.publishable,
        )
        statuses.append(response.status_code)
    out.append(
        (
            "rate limit: 500 rapid trackClick, one key, one IP",
            f"{statuses.count(200)} accepted, {statuses.count(429)} refused (429)",
        )
    )
    wrong = []
    for _ in range(200):
        response = await probe.gql("{ viewer { id } }", key=f"sk_{uuid.uuid4().hex}")
        wrong.append(response.status_code)
    out.append(("rate limit: 200 wrong secret keys", f"{wrong.count(200)} answered, {wrong.count(429)} refused (429)"))

    # last: before the fix, n=40 keeps the process busy for hours
    for levels in (18, 20, 40):
        started = time.perf_counter()
        try:
            response = await probe.gql(fan_out(levels), timeout=30)
            result = f"{response.status_code} in {(time.perf_counter() - started) * 1000:.0f} ms"
        except httpx.TimeoutException:
            result = "no answer within 30 s"
        out.append((f"3 fragment fan-out n={levels} ({len(fan_out(levels))} bytes), no key", result))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", default=str(HERE))
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    checkout = Path(args.checkout).resolve()
    name = f"referral_probe_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = args.database.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "DATABASE_URL": f"{base}/{name}",
        "APP_ENV": "production",
        "SECRET_KEY": "probe-secret",
        "LOG_LEVEL": "ERROR",
        "BROKER_URL": "stub://",
    }
    port = free_port()
    server = None
    try:
        subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=checkout, env=env, check=True, capture_output=True)
        created = subprocess.run(
            [sys.executable, "-m", "app.cli", "merchants", "create", "Probe"],
            cwd=checkout,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        secret = created.split("secret key:")[1].split()[0]
        publishable = created.split("publishable key:")[1].split()[0]
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=checkout,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        probe = Probe(f"http://127.0.0.1:{port}/graphql", secret, publishable)
        for what, result in await run(probe, port):
            print(f"| {what} | {result} |")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:  # still validating a fan-out: it cannot hear SIGTERM
                server.kill()
                server.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
