"""Building blocks for the payouts tests: admins with sessions and a second factor,
commission earned through real referrals, payout accounts and payouts, through the public
API as a merchant and its people would."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from schwifty import IBAN
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory
from app.merchants import admins, audit
from app.merchants.models import AdminRole
from app.payouts import reconcile
from app.rewards import lifecycle
from tests.conftest import test_settings
from tests.rewards.helpers import unbalanced_transactions
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for, record

PAYOUT_FIELDS = """
  id reference status amount currency customerExternalId approvalsRequired provider batchId providerReference note
  account { id method masked customType coolingOffUntil }
  holdReasons { code message evidence details }
  approvals { adminId createdAt }
  createdAt approvedAt sentAt paidAt endedAt
"""

LOGIN = """
mutation($email: String!, $password: String!, $merchantId: ID) {
  login(email: $email, password: $password, merchantId: $merchantId) {
    token session { id expiresAt current } admin { id email role totpEnabled } userErrors { field code message }
  }
}"""

START_TOTP = """
mutation { startTotpEnrollment { enrollment { provisioningUri qrCodeSvg secret expiresAt } userErrors { field code message } } }"""

CONFIRM_TOTP = """
mutation($code: String!, $currentCode: String, $recoveryCode: String) {
  confirmTotpEnrollment(code: $code, currentCode: $currentCode, recoveryCode: $recoveryCode) {
    admin { id totpEnabled } recoveryCodes userErrors { field code message }
  }
}"""

RESET_TOTP = """
mutation($totpCode: String, $recoveryCode: String) {
  resetTotp(totpCode: $totpCode, recoveryCode: $recoveryCode) { admin { id totpEnabled } userErrors { field code message } }
}"""

SET_ACCOUNT = """
mutation($input: PayoutAccountInput!) {
  setPayoutAccount(input: $input) {
    account { id method masked customType coolingOffUntil createdAt } userErrors { field code message }
  }
}"""

REQUEST = f"""
mutation($input: RequestPayoutInput!) {{
  requestPayout(input: $input) {{ payout {{ {PAYOUT_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

APPROVE = f"""
mutation($ids: [ID!]!, $totals: [CurrencyAmountInput!]!, $code: String, $recovery: String) {{
  approvePayouts(ids: $ids, expectedTotals: $totals, totpCode: $code, recoveryCode: $recovery) {{
    payouts {{ {PAYOUT_FIELDS} }} approvedCount awaitingSecondApprovalCount replayed userErrors {{ field code message }}
  }}
}}"""

REJECT = f"""
mutation($id: ID!, $reason: String!) {{
  rejectPayout(id: $id, reason: $reason) {{ payout {{ {PAYOUT_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

MARK_PAID = f"""
mutation($id: ID!, $ref: String!) {{
  markPayoutPaid(id: $id, providerReference: $ref) {{ payout {{ {PAYOUT_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

MARK_FAILED = f"""
mutation($id: ID!, $reason: String!) {{
  markPayoutFailed(id: $id, reason: $reason) {{ payout {{ {PAYOUT_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

RELEASE_HOLD = f"""
mutation($id: ID!, $note: String!) {{
  releasePayoutHold(id: $id, note: $note) {{ payout {{ {PAYOUT_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

PAYOUT = f"""query($id: ID!) {{ payout(id: $id) {{ {PAYOUT_FIELDS} }} }}"""

SET_SETTINGS = """
mutation($input: PayoutSettingsInput!) {
  setPayoutSettings(input: $input) {
    settings { coolingOffHours dualApprovalMinimums { currency amount } merchantExecutesAll } userErrors { field code message }
  }
}"""

BATCH = """
query($id: ID!) {
  payoutBatch(id: $id) { id provider currency payoutCount total filename csv downloadUrl downloadUrlExpiresAt downloadCount }
}"""


@dataclass
class Person:
    """An admin with a live session (and, once enrolled, an authenticator app)."""

    id: str
    email: str
    password: str
    role: AdminRole
    token: str = ""
    secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    def code(self, at) -> str:
        return pyotp.TOTP(self.secret).at(at)


async def make_admin(tenant, role: AdminRole = AdminRole.OWNER, email: str | None = None, *, login: bool = True) -> Person:
    """An admin created (as `referral admins create` does) and set up with a password."""
    email = email or f"{role.value.lower()}-{uuid.uuid4().hex[:6]}@shop.example"
    password = f"correct horse {uuid.uuid4().hex[:8]} battery"
    settings = test_settings()
    async with create_session_factory(tenant.engine)() as session:
        issued = await admins.create_admin(session, merchant_id=tenant.id, email=email, role=role, actor=audit.SYSTEM)
        await admins.complete_setup(session, settings=settings, token=issued.token, password=password)
        await session.commit()
    person = Person(id=str(issued.admin.id), email=email, password=password, role=role)
    if login:
        person.token = await log_in(tenant, person)
    return person


async def log_in(tenant, person: Person) -> str:
    data = await tenant.gql(LOGIN, {"email": person.email, "password": person.password})
    assert data["login"]["userErrors"] == [], data
    return data["login"]["token"]


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


async def enroll(tenant, person: Person, clock) -> Person:
    started = await tenant.gql(START_TOTP, key=person.token)
    person.secret = secret_of(started["startTotpEnrollment"]["enrollment"]["provisioningUri"])
    confirmed = await tenant.gql(CONFIRM_TOTP, {"code": person.code(clock())}, key=person.token)
    assert confirmed["confirmTotpEnrollment"]["userErrors"] == [], confirmed
    person.recovery_codes = confirmed["confirmTotpEnrollment"]["recoveryCodes"]
    clock.advance(30)  # the confirming code is spent
    return person


async def approver(tenant, clock, role: AdminRole = AdminRole.FINANCE) -> Person:
    return await enroll(tenant, await make_admin(tenant, role), clock)


async def owner_settings(tenant, owner: Person, **values: Any) -> dict[str, Any]:
    data = await tenant.gql(SET_SETTINGS, {"input": values}, key=owner.token)
    assert data["setPayoutSettings"]["userErrors"] == [], data
    return data["setPayoutSettings"]["settings"]


async def no_cooling_off(tenant) -> Person:
    """Most tests are not about the cooling-off period: an owner turns it off."""
    owner = await make_admin(tenant, AdminRole.OWNER)
    await owner_settings(tenant, owner, coolingOffHours=0)
    return owner


COMMISSION_RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) { rewardRule { ruleId } userErrors { field code message } }
}"""


async def commission_program(tenant, name: str = "Affiliates") -> str:
    """A program paying its referrers 10 % of every purchase of their referees (for a year)."""
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP, name=name)
    rule = await tenant.gql(
        COMMISSION_RULE,
        {
            "programId": program["id"],
            "input": {
                "name": "10% commission",
                "trigger": "PURCHASE",
                "recipient": "REFERRER",
                "kind": "COMMISSION",
                "percentBps": 1000,
                "recurringMonths": 12,
            },
        },
    )
    assert rule["createRewardRule"]["userErrors"] == [], rule
    return program["id"]


async def earn(
    tenant,
    program_id: str,
    referrer: str,
    commission: int,
    currency: str = "USD",
    *,
    referee: str | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    """`referrer` earns `commission` (minor units) through a referee's purchase of ten times that."""
    referee = referee or f"{referrer}-friend"
    code = await code_for(tenant, program_id, referrer)
    signup = await record(
        tenant,
        type="SIGNUP",
        customerExternalId=referee,
        idempotencyKey=f"signup-{referee}",
        referralCode=code["code"],
        programId=program_id,
    )
    assert signup["userErrors"] == [], signup
    order = order or f"order-{uuid.uuid4().hex[:8]}"
    purchase = await record(
        tenant,
        type="PURCHASE",
        customerExternalId=referee,
        idempotencyKey=order,
        orderId=order,
        amount=commission * 10,
        currency=currency,
        programId=program_id,
    )
    assert purchase["userErrors"] == [], purchase
    return purchase


def iban_for(customer: str) -> str:
    """A valid German IBAN of the customer's own (jane's is the well-known example one)."""
    if customer == "jane":
        return "DE89 3704 0044 0532 0130 00"
    account = str(int(hashlib.sha256(customer.encode()).hexdigest(), 16) % 10**10)
    return IBAN.generate("DE", bank_code="37040044", account_code=account).formatted


async def set_account(tenant, customer: str, **details: Any) -> dict[str, Any]:
    values = details or {"method": "BANK_TRANSFER", "iban": iban_for(customer), "holderName": f"{customer.title()} Doe"}
    data = await tenant.gql(SET_ACCOUNT, {"input": {"customerExternalId": customer, **values}})
    return data["setPayoutAccount"]


async def request(
    tenant, customer: str, key: str | None = None, currency: str = "USD", amount: int | None = None
) -> dict[str, Any]:
    data = await tenant.gql(
        REQUEST,
        {
            "input": {
                "customerExternalId": customer,
                "currency": currency,
                "idempotencyKey": key or f"payout-{uuid.uuid4().hex[:8]}",
                **({"amount": amount} if amount is not None else {}),
            }
        },
    )
    return data["requestPayout"]


async def payout_for(tenant, program_id: str, customer: str, commission: int, currency: str = "USD", **account: Any) -> dict:
    """`customer` earns `commission`, has a payout account, and asks for it."""
    await earn(tenant, program_id, customer, commission, currency)
    assert (await set_account(tenant, customer, **account))["userErrors"] == []
    requested = await request(tenant, customer, currency=currency)
    assert requested["userErrors"] == [], requested
    return requested["payout"]


def totals(*payouts: dict) -> list[dict[str, Any]]:
    found: dict[str, int] = {}
    for p in payouts:
        found[p["currency"]] = found.get(p["currency"], 0) + p["amount"]
    return [{"currency": c, "amount": a} for c, a in sorted(found.items())]


async def approve(
    tenant,
    person: Person,
    payouts: list[dict],
    *,
    code: str | None = None,
    key: str | None = None,
    expected: list[dict] | None = None,
) -> dict[str, Any]:
    body = await tenant.raw(
        APPROVE,
        {
            "ids": [p["id"] for p in payouts],
            "totals": expected if expected is not None else totals(*payouts),
            "code": code,
        },
        key=key or person.token,
    )
    return body


async def run_jobs(engine: AsyncEngine) -> None:
    """What the worker would do now: run every pending outbox job (webhook deliveries fail
    fast here: no endpoint is reachable) until none is left."""
    from sqlalchemy import select

    from app.worker import outbox
    from app.worker import registry as job_registry
    from app.worker.models import JobStatus, OutboxJob

    job_registry.load_jobs()
    factory = create_session_factory(engine)
    for _ in range(20):
        async with factory() as session:
            pending = list(
                (
                    await session.scalars(
                        select(OutboxJob.id).where(
                            OutboxJob.status == JobStatus.PENDING.value, OutboxJob.actor != "webhooks.deliver"
                        )
                    )
                ).all()
            )
        if not pending:
            return
        for job_id in pending:
            await outbox.run_job(factory, str(job_id))


async def books_problems(engine: AsyncEngine, merchant_id: uuid.UUID | None = None) -> list:
    async with create_session_factory(engine)() as session:
        return await reconcile.verify(session, merchant_id=merchant_id)


async def assert_books_balance(engine: AsyncEngine) -> None:
    assert await books_problems(engine) == []
    assert await unbalanced_transactions(engine) == []


async def release_due(engine: AsyncEngine, at) -> None:
    async with create_session_factory(engine)() as session:
        await lifecycle.release_due_rewards(session, now=at)
        await session.commit()


def this_week() -> dict[str, str]:
    from app.db import utcnow

    now = utcnow()
    return {"from": (now - timedelta(days=3)).isoformat(), "to": (now + timedelta(days=4)).isoformat()}


def svg_ok(svg: str) -> bool:
    return svg.lstrip().startswith("<svg") and bool(re.search(r"<path", svg))
