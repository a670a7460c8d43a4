"""The merchant the console's browser tests log in to, built through the public API as a shop
would (in-process, on the database the test server then serves): an owner with a password and
an authenticator, a program with two weeks of referrals and purchases in USD and EUR, one
referral in fraud review (and two more for the bulk actions), one payout waiting for approval, and the rollups brought up to date.

    DATABASE_URL=sqlite+aiosqlite:///... SECRET_KEY=... python console/test/seed.py   # prints JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.analytics import rollup  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import create_engine, create_session_factory  # noqa: E402
from app.main import create_app  # noqa: E402
from app.merchants import admins, audit  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.merchants.models import AdminRole, ApiKeyKind  # noqa: E402

EMAIL, PASSWORD = "owner@shop.example", "a long sentence of my own, 2026"


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.key = client, key

    async def __call__(self, query: str, variables: dict | None = None, key: str | None = None) -> dict:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}},
                                          headers={"Authorization": f"Bearer {key or self.key}"})
        body = response.json()
        assert "errors" not in body, body
        data = next(iter(body["data"].values()))
        assert not (isinstance(data, dict) and data.get("userErrors")), data
        return data


async def seed() -> dict:
    settings = Settings(app_env="test", rate_limits_enabled=False, secret_key=os.environ["SECRET_KEY"])
    engine = create_engine(os.environ["DATABASE_URL"])
    async with create_session_factory(engine, reason="console test seed")() as session:
        merchant = await merchants.create_merchant(session, name="Console Shop")
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        publishable = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE)
        issued = await admins.create_admin(session, merchant_id=merchant.id, email=EMAIL, role=AdminRole.OWNER,
                                           actor=audit.SYSTEM)
        await admins.complete_setup(session, settings=settings, token=issued.token, password=PASSWORD)
        await session.commit()
    app = create_app(settings, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seed") as client:
        api = Api(client, secret.plaintext)
        token = (await api("mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token userErrors { code } } }",
                           {"e": EMAIL, "p": PASSWORD}))["token"]
        enrollment = await api("mutation { startTotpEnrollment { enrollment { provisioningUri } userErrors { code } } }",
                               key=token)
        totp_secret = parse_qs(urlsplit(enrollment["enrollment"]["provisioningUri"]).query)["secret"][0]
        recovery_codes = (await api("mutation($c: String!) { confirmTotpEnrollment(code: $c) { recoveryCodes userErrors { code } } }",
                                    {"c": pyotp.TOTP(totp_secret).now()}, key=token))["recoveryCodes"]
        await api("mutation { setPayoutSettings(input: {coolingOffHours: 0}) { userErrors { code } } }", key=token)
        await api("mutation { logout { userErrors { code } } }", key=token)

        program = (await api("""mutation { createProgram(input: {name: "Give $10, get $10", status: ACTIVE,
                                 shareUrlTemplate: "https://shop.example/?ref={code}"}) { program { id } userErrors { code } } }"""
                             ))["program"]["id"]
        for rule in ('{name: "10% commission", trigger: "PURCHASE", recipient: REFERRER, kind: COMMISSION, percentBps: 1000}',
                     '{name: "Get $5", trigger: "PURCHASE", recipient: REFEREE, kind: CREDIT, amount: 500, currency: "USD"}'):
            await api(f'mutation($p: ID!) {{ createRewardRule(programId: $p, input: {rule}) {{ userErrors {{ code }} }} }}',
                      {"p": program})
        await api("""mutation($p: ID!) { setFraudPolicy(programId: $p, policy: {signals: [
                       {signal: "referrals_per_hour", enabled: false}, {signal: "referrals_per_day", enabled: false},
                       {signal: "rewards_per_hour", enabled: false}, {signal: "rewards_per_day", enabled: false},
                       {signal: "ip_burst", enabled: false}, {signal: "referrals_above_baseline", enabled: false},
                       {signal: "referrer_under_review", enabled: false}],
                       clearance: {evidence: SIGNUP}}) { userErrors { code } } }""", {"p": program})
        codes = {}
        for name in ("jane", "kim", "omar"):
            codes[name] = (await api("""mutation($p: ID!, $c: String!) { issueReferralCode(input: {programId: $p,
                                        customerExternalId: $c}) { referralCode { code } userErrors { code } } }""",
                                     {"p": program, "c": name}))["referralCode"]["code"]
        record = """mutation($input: RecordActionInput!) { recordAction(input: $input) { userErrors { code } } }"""
        now = datetime.now(UTC)
        for n in range(24):
            referrer = ("jane", "jane", "kim", "omar")[n % 4]
            friend, at = f"friend-{n}", now - timedelta(days=13 - n // 2, hours=n % 2)
            if n % 3 == 0:  # a third of them came through a tracked link
                click = await api("""mutation($c: String!, $d: String!, $ch: String) { trackClick(input: {code: $c,
                                     deviceId: $d, channel: $ch}) { attributionToken userErrors { code } } }""",
                                  {"c": codes[referrer], "d": f"dev-{n}", "ch": ("whatsapp", "email")[n % 2]},
                                  key=publishable.plaintext)
                evidence = {"attributionToken": click["attributionToken"]}
                at = now
            else:
                evidence = {"referralCode": codes[referrer]}
            await api(record, {"input": {"type": "SIGNUP", "customerExternalId": friend, "idempotencyKey": f"s-{n}",
                                         "occurredAt": at.isoformat(), **evidence}})
            if n % 5 != 4:
                await api(record, {"input": {"type": "PURCHASE", "customerExternalId": friend, "idempotencyKey": f"p-{n}",
                                             "orderId": f"o-{n}", "amount": 4000 + 250 * n, "currency": "EUR" if n % 6 == 1 else "USD",
                                             "occurredAt": (at + timedelta(minutes=5)).isoformat()}})
        # kim's own device behind a new friend: a referral for review
        await api(record, {"input": {"type": "SIGNUP", "customerExternalId": "kim", "idempotencyKey": "kim-own",
                                     "context": {"deviceId": "kims-phone"}}})
        await api(record, {"input": {"type": "SIGNUP", "customerExternalId": "kim-alias", "idempotencyKey": "s-alias",
                                     "referralCode": codes["kim"], "context": {"deviceId": "kims-phone"}}})
        # omar's own phone and tablet behind two more "friends": two more reviews, for the bulk actions
        for n, device in ((1, "omars-phone"), (2, "omars-tablet")):
            await api(record, {"input": {"type": "SIGNUP", "customerExternalId": "omar", "idempotencyKey": f"omar-own-{n}",
                                         "context": {"deviceId": device}}})
            await api(record, {"input": {"type": "SIGNUP", "customerExternalId": f"omar-alias-{n}", "idempotencyKey": f"s-alias-{n}",
                                         "referralCode": codes["omar"], "context": {"deviceId": device}}})
        # jane asks for her commission
        await api("""mutation { setPayoutAccount(input: {customerExternalId: "jane", method: BANK_TRANSFER,
                     iban: "DE89 3704 0044 0532 0130 00", holderName: "Jane Doe"}) { userErrors { code } } }""")
        payout = (await api("""mutation { requestPayout(input: {customerExternalId: "jane", currency: "USD",
                                idempotencyKey: "jane-1"}) { payout { id status amount } userErrors { code } } }"""))["payout"]
        assert payout["status"] == "PENDING_APPROVAL", payout
    async with create_session_factory(engine, reason="console test seed")() as session:
        await rollup.roll_up(session, merchant_id=merchant.id)
        await session.commit()
    await engine.dispose()
    return {"email": EMAIL, "password": PASSWORD, "totpSecret": totp_secret, "recoveryCodes": recovery_codes,
            "programId": program,
            "payout": payout, "secretKey": secret.plaintext}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed())))
