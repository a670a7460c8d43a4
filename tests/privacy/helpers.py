"""A shop with a customer who did a bit of everything, through the public API, and what the
privacy tests need to look at it afterwards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Base, create_session_factory
from app.worker import outbox, registry
from app.worker.models import JobStatus, OutboxJob
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.fraud.helpers import ADD_LIST_ENTRY, RECORD  # noqa: F401 (ADD_LIST_ENTRY: for the tests)
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for

RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) { rewardRule { id } userErrors { field code message } }
}"""
ERASE = """
mutation($customer: String!, $reason: String!) {
  eraseCustomer(customerExternalId: $customer, reason: $reason) {
    erasure { customerId pseudonym reason erasedAt changes }
    customer { id externalId email emailCanonical name metadata erasedAt balances { kind unit available held } }
    replayed
    userErrors { field code message }
  }
}"""
EXPORT = """
mutation($customer: String!) {
  exportCustomerData(customerExternalId: $customer) {
    export { id status downloadUrl customer { externalId } } userErrors { field code message }
  }
}"""
EXPORT_STATUS = """
query($id: ID!) {
  customerDataExport(id: $id) { id status readyAt expiresAt downloadedAt sizeBytes downloadUrl customer { externalId } }
}"""
CREATE_WEBHOOK = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } userErrors { field code message } }
}"""
SET_STATUS = """
mutation($customer: String!, $status: CustomerFraudStatus!) {
  setCustomerFraudStatus(customerExternalId: $customer, status: $status) { status userErrors { field code message } }
}"""

JANE = {
    "externalId": "jane-7731",
    "email": "Jane.Doe+shop@gmail.com",
    "name": "ریحانه کریمی",
    "metadata": {"loyalty": "gold", "phone": "+98 912 555 0101"},
}
JANE_DEVICE, JANE_IP = "dev-jane-9f2a", "198.51.100.23"
BOB_DEVICE, BOB_CARD = "dev-bob-77c1", "card_fp_bob_4242"
BOB_ADDRESS = {"line1": "12 Valiasr Street", "city": "Tehran", "postalCode": "1415893", "country": "IR"}


async def record(tenant, **values: Any) -> dict[str, Any]:
    data = await tenant.gql(RECORD, {"input": values})
    payload = data["recordAction"]
    assert payload["userErrors"] == [], payload
    return payload


@dataclass
class World:
    program_id: str
    other_program_id: str
    jane_code: str
    bob_order: str
    webhook_endpoint_id: str

    @property
    def jane_values(self) -> list[str]:
        """Everything readable that identifies jane, as she gave it or as it was derived."""
        return [
            JANE["externalId"],
            JANE["email"],
            "janedoe@gmail.com",
            JANE["name"],
            JANE_DEVICE,
            JANE_IP,
            "+98 912 555 0101",
            self.jane_code,
            "Mozilla/5.0 (jane's phone)",
        ]


async def build_world(tenant) -> World:
    """jane refers bob (who buys, gets a coupon, she gets credit and spends some), carol refers
    jane in another program, mallory signs up on jane's device (a review), jane is paid through
    PayPal, a webhook endpoint hears everything."""
    endpoint = await tenant.gql(
        CREATE_WEBHOOK,
        {
            "input": {
                "url": "https://hooks.shop.example/referral",
                "eventTypes": [
                    "referral.created",
                    "reward.granted",
                    "fraud.review_opened",
                    "customer.erased",
                    "customer.export_ready",
                ],
            }
        },
    )
    assert endpoint["createWebhookEndpoint"]["userErrors"] == []
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP, shareUrlTemplate="https://shop.example/?ref={code}")
    other = await active_program(tenant, clearance=PAY_AT_SIGNUP, name="Friends of friends")
    for rule in (
        {"name": "Give $10", "trigger": "PURCHASE", "recipient": "REFERRER", "kind": "CREDIT", "amount": 1000, "currency": "USD"},
        {"name": "Get 15% off", "trigger": "PURCHASE", "recipient": "REFEREE", "kind": "DISCOUNT", "percentBps": 1500},
    ):
        created = await tenant.gql(RULE, {"programId": program["id"], "input": rule})
        assert created["createRewardRule"]["userErrors"] == []
    created = await tenant.gql(
        RULE,
        {
            "programId": other["id"],
            "input": {"name": "Points", "trigger": "PURCHASE", "recipient": "BOTH", "kind": "POINTS", "amount": 50},
        },
    )
    assert created["createRewardRule"]["userErrors"] == []

    # Every test request comes from one address: IP evidence would put every referral in review.
    policy = await tenant.gql(
        """mutation($p: ID!, $policy: FraudPolicyInput!) { setFraudPolicy(programId: $p, policy: $policy) {
             userErrors { field code message } } }""",
        {
            "p": program["id"],
            "policy": {"signals": [{"signal": s, "enabled": False} for s in ("shared_ip", "same_ip_user_agent")]},
        },
    )
    assert policy["setFraudPolicy"]["userErrors"] == []
    upserted = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": JANE})
    assert upserted["upsertCustomer"]["userErrors"] == []
    code = await code_for(tenant, program["id"], JANE["externalId"], vanity="REYHANEH-KARIMI")
    carol_code = await code_for(tenant, other["id"], "carol")
    jane_clicked = await tenant.gql(
        ops.TRACK_CLICK, {"input": {"code": carol_code["code"], "deviceId": JANE_DEVICE}}, key=tenant.publishable_key
    )
    await record(
        tenant,
        type="SIGNUP",
        customerExternalId=JANE["externalId"],
        idempotencyKey="signup-jane",
        attributionToken=jane_clicked["trackClick"]["attributionToken"],
        context={"deviceId": JANE_DEVICE, "ip": JANE_IP, "userAgent": "Mozilla/5.0 (jane's phone)", "email": JANE["email"]},
    )
    await record(
        tenant,
        type="PURCHASE",
        customerExternalId=JANE["externalId"],
        idempotencyKey="order-jane-1",
        orderId="jane-1",
        amount=3000,
        currency="USD",
        metadata={"gift_note": f"for {JANE['name']}"},
    )
    clicked = await tenant.gql(
        ops.TRACK_CLICK,
        {"input": {"code": code["code"], "deviceId": BOB_DEVICE, "landingUrl": f"https://shop.example/?ref={code['code']}"}},
        key=tenant.publishable_key,
    )
    token = clicked["trackClick"]["attributionToken"]
    await record(
        tenant,
        type="SIGNUP",
        customerExternalId="bob",
        idempotencyKey="signup-bob",
        attributionToken=token,
        context={"email": "bob@example.com", "deviceId": BOB_DEVICE},
    )
    await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-bob-1",
        orderId="bob-1",
        amount=5000,
        currency="USD",
        context={"paymentFingerprint": BOB_CARD, "shippingAddress": BOB_ADDRESS, "deviceId": BOB_DEVICE},
    )
    spent = await tenant.gql(
        """mutation($input: RedeemCreditInput!) { redeemCredit(input: $input) { userErrors { field code message } } }""",
        {
            "input": {
                "customerExternalId": JANE["externalId"],
                "amount": 400,
                "currency": "USD",
                "idempotencyKey": "spend-1",
                "orderId": "jane-2",
            }
        },
    )
    assert spent["redeemCredit"]["userErrors"] == [], spent
    mallory = await record(
        tenant,
        type="SIGNUP",
        customerExternalId="mallory",
        idempotencyKey="signup-mallory",
        referralCode=code["code"],
        context={"deviceId": JANE_DEVICE, "ip": JANE_IP},
    )
    assert mallory["action"]["attribution"] == "REFERRAL_CREATED"
    from tests.payouts.helpers import set_account

    paid_to = await set_account(tenant, JANE["externalId"], method="PAYPAL", paypalEmail=JANE["email"])
    assert paid_to["userErrors"] == [], paid_to
    return World(
        program_id=program["id"],
        other_program_id=other["id"],
        jane_code=code["code"],
        bob_order="bob-1",
        webhook_endpoint_id=endpoint["createWebhookEndpoint"]["endpoint"]["id"],
    )


async def all_rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, read through the models' types (encrypted columns decrypted):
    what anyone holding the keys could read."""
    rows = {}
    async with system_connection(engine) as connection:
        for table in Base.metadata.sorted_tables:
            result = await connection.execute(select(table))
            rows[table.name] = [dict(row) for row in result.mappings()]
    return rows


def readable_mentions(rows: dict[str, list[dict[str, Any]]], values: list[str], *, others: tuple[str, ...] = ()) -> list[str]:
    """ "table.column: value" wherever one of `values` can still be read, except in the rows of
    the customers `others` (ids): a device two people used is in both their records."""
    found = []
    for table, table_rows in rows.items():
        for row in table_rows:
            if str(row.get("customer_id")) in others:
                continue
            for column, stored in row.items():
                shown = repr(stored) if not isinstance(stored, str) else stored
                for value in values:
                    if value.lower() in shown.lower():
                        found.append(f"{table}.{column}: {value}")
    return sorted(set(found))


async def run_jobs(engine: AsyncEngine, actor: str) -> int:
    """Run the pending jobs of `actor` as a worker would (no broker here)."""
    registry.load_jobs()
    async with create_session_factory(engine)() as session:
        pending = list(
            (
                await session.scalars(
                    select(OutboxJob.id).where(OutboxJob.actor == actor, OutboxJob.status == JobStatus.PENDING.value)
                )
            ).all()
        )
    for job_id in pending:
        await outbox.run_job(create_session_factory(engine), str(job_id))
    return len(pending)


def customer_id_of(body: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(body["eraseCustomer"]["erasure"]["customerId"])
