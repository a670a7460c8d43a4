"""Erasing a customer: nothing readable remains, the books still balance, fraud checks still
recognise a returning fraudster, and it is idempotent, audited and announced. Every test ends
with `referral ledger verify`'s checks."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text

from app.fraud.models import CustomerIdentifier
from app.privacy.classification import Kind, columns_of
from app.webhooks.models import WebhookDelivery
from tests.conftest import system_connection
from tests.privacy.helpers import (
    ADD_LIST_ENTRY,
    BOB_ADDRESS,
    BOB_CARD,
    BOB_DEVICE,
    ERASE,
    JANE,
    JANE_DEVICE,
    SET_STATUS,
    all_rows,
    build_world,
    readable_mentions,
    record,
)
from tests.rewards.helpers import assert_ledger_consistent, balances, refund, rewards_of
from tests.scenarios import code_for

BOOKS = """
query($programId: ID!) {
  referrals(programId: $programId, first: 100) { edges { node { id status referrer { id } referee { id } } } }
  rewards(first: 100) { edges { node { id kind status amount remaining reversedAmount unit customer { id } } } }
}"""


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def erase(tenant, customer: str, reason: str = "GDPR request #4411") -> dict:
    return (await tenant.gql(ERASE, {"customer": customer, "reason": reason}))["eraseCustomer"]


async def test_nothing_readable_remains_and_the_books_are_unchanged(db, tenant):
    world = await build_world(tenant)
    books_before = await tenant.gql(BOOKS, {"programId": world.program_id})
    balances_before = await balances(tenant, JANE["externalId"])
    assert readable_mentions(await all_rows(db), world.jane_values)  # the check below can see them

    erased = await erase(tenant, JANE["externalId"])
    assert erased["userErrors"] == [] and erased["replayed"] is False
    pseudonym = erased["erasure"]["pseudonym"]
    assert pseudonym.startswith("erased-") and erased["customer"]["externalId"] == pseudonym
    assert {k: erased["customer"][k] for k in ("email", "emailCanonical", "name", "metadata")} == dict.fromkeys(
        ("email", "emailCanonical", "name", "metadata")
    )
    assert erased["customer"]["balances"] == balances_before  # $10 earned, $4 spent: still hers to use

    mallory = (await tenant.gql('{ customer(externalId: "mallory") { id } }'))["customer"]["id"]
    assert readable_mentions(await all_rows(db), world.jane_values, others=(mallory,)) == []  # mallory used her phone
    assert await tenant.gql(BOOKS, {"programId": world.program_id}) == books_before
    missing = await tenant.raw('{ customer(externalId: "jane-7731") { id } }')
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    changes = erased["erasure"]["changes"]
    assert changes["actions"] == 2 and changes["customer_identifiers"] >= 3 and changes["referral_codes"] == 1
    assert changes["fraud_decisions"] >= 1  # mallory's review quoted her device and id
    assert changes["webhook_deliveries"] >= 1  # referral.created named her


async def test_the_erasure_is_audited_and_announced_with_the_pseudonym(db, tenant):
    await build_world(tenant)
    erased = await erase(tenant, JANE["externalId"])
    pseudonym = erased["erasure"]["pseudonym"]
    audit = await tenant.gql("{ auditLog(first: 100) { edges { node { action subjectId note details } } } }")
    [entry] = [e["node"] for e in audit["auditLog"]["edges"] if e["node"]["action"] == "customer.erased"]
    assert entry["note"] == "GDPR request #4411" and entry["details"]["pseudonym"] == pseudonym
    assert entry["subjectId"] == erased["erasure"]["customerId"]
    async with system_connection(db) as connection:
        payloads = (
            await connection.execute(select(WebhookDelivery.event_type, WebhookDelivery.payload).order_by(WebhookDelivery.id))
        ).all()
    [announced] = [p for t, p in payloads if t == "customer.erased"]
    assert announced == {
        "customerId": erased["erasure"]["customerId"],
        "customerExternalId": pseudonym,
        "erasedAt": announced["erasedAt"],
        "reason": "GDPR request #4411",
    }
    created = [p for t, p in payloads if t == "referral.created" and p["refereeId"] == erased["erasure"]["customerId"]]
    assert created and all(p["refereeExternalId"] == pseudonym for p in created)  # sent before, pending: rewritten


async def test_erasing_again_answers_the_first_result(db, tenant):
    await build_world(tenant)
    first = await erase(tenant, JANE["externalId"])
    by_old_id = await erase(tenant, JANE["externalId"], reason="asked twice")
    by_pseudonym = await erase(tenant, first["erasure"]["pseudonym"], reason="asked twice")
    for again in (by_old_id, by_pseudonym):
        assert again["userErrors"] == [] and again["replayed"] is True
        assert again["erasure"] == first["erasure"]
    audit = await tenant.gql("{ auditLog(first: 100) { edges { node { action } } } }")
    assert [e["node"]["action"] for e in audit["auditLog"]["edges"]].count("customer.erased") == 1
    unknown = await erase(tenant, "nobody")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [("customerExternalId", "NOT_FOUND")]
    blank = await erase(tenant, "bob", reason="  ")
    assert [(e["field"], e["code"]) for e in blank["userErrors"]] == [("reason", "REQUIRED")]


@pytest.mark.postgresql_only
async def test_concurrent_erasures_erase_once(db, tenant, backend):
    await build_world(tenant)
    results = await asyncio.gather(*(erase(tenant, JANE["externalId"]) for _ in range(6)))
    assert all(r["userErrors"] == [] for r in results)
    assert sum(not r["replayed"] for r in results) == 1
    assert len({r["erasure"]["pseudonym"] for r in results}) == 1


async def test_a_returning_fraudster_still_matches(db, tenant):
    """bob's device and card are kept as keyed hashes: when the same device comes back under a
    new name through another referrer, the device farm is still seen."""
    world = await build_world(tenant)
    bob = uuid.UUID((await erase(tenant, "bob"))["erasure"]["customerId"])
    async with system_connection(db) as connection:
        kept = (
            await connection.execute(
                select(CustomerIdentifier.kind, CustomerIdentifier.value, CustomerIdentifier.value_hash).where(
                    CustomerIdentifier.customer_id == bob
                )
            )
        ).all()
    assert {kind for kind, _, _ in kept} >= {"DEVICE", "PAYMENT", "ADDRESS"}
    assert all(value is None and len(value_hash) == 64 for _, value, value_hash in kept)

    dave_code = await code_for(tenant, world.program_id, "dave")
    back = await record(
        tenant,
        type="SIGNUP",
        customerExternalId="bob-again",
        idempotencyKey="signup-bob-again",
        referralCode=dave_code["code"],
        context={"deviceId": BOB_DEVICE},
    )
    decisions = await tenant.gql(
        "query($r: ID!) { fraudDecisions(referralId: $r) { observations { signal fired evidence details } } }",
        {"r": back["referral"]["id"]},
    )
    [reuse] = [o for d in decisions["fraudDecisions"] for o in d["observations"] if o["signal"] == "device_reuse"]
    assert reuse["fired"] is True
    assert BOB_DEVICE in reuse["evidence"]  # the newcomer's own value, readable
    assert reuse["details"]["customers"][0].startswith("erased-") and "bob" not in reuse["details"]["customers"]


async def test_blocklisted_and_banned_values_still_block_after_erasure(db, tenant):
    world = await build_world(tenant)
    listed = await tenant.gql(ADD_LIST_ENTRY, {"kind": "PAYMENT", "value": BOB_CARD, "note": "chargebacks"})
    assert listed["addFraudListEntry"]["userErrors"] == []
    banned = await tenant.gql(SET_STATUS, {"customer": "mallory", "status": "BANNED"})
    assert banned["setCustomerFraudStatus"]["userErrors"] == []
    await erase(tenant, "bob")
    await erase(tenant, "mallory")

    entries = (await tenant.gql("{ fraudListEntries(first: 100) { edges { node { kind value note } } } }"))["fraudListEntries"]
    values = {(e["node"]["kind"], e["node"]["value"]) for e in entries["edges"]}
    assert ("PAYMENT", BOB_CARD) not in values
    assert {kind for kind, value in values if value.startswith("hash:")} >= {"PAYMENT", "DEVICE"}
    assert readable_mentions(await all_rows(db), [BOB_CARD, "mallory"]) == []

    code = await code_for(tenant, world.program_id, "erin")
    carded = await record(tenant, type="SIGNUP", customerExternalId="new-1", idempotencyKey="s-new-1", referralCode=code["code"])
    bought = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="new-1",
        idempotencyKey="o-new-1",
        orderId="new-1",
        amount=5000,
        currency="USD",
        context={"paymentFingerprint": BOB_CARD},
    )
    assert bought["referral"]["status"] == "REJECTED" and carded["referral"]["id"] == bought["referral"]["id"]
    on_malloys_device = await record(
        tenant,
        type="SIGNUP",
        customerExternalId="new-2",
        idempotencyKey="s-new-2",
        referralCode=code["code"],
        context={"deviceId": JANE_DEVICE},
    )
    assert on_malloys_device["action"]["attribution"] == "FRAUD_BLOCKED"  # the ban outlived mallory's name


async def test_refunds_after_erasure_still_take_back_what_the_order_earned(db, tenant):
    world = await build_world(tenant)
    before = {r["id"]: r for r in await rewards_of(tenant, JANE["externalId"]) if r["kind"] == "CREDIT"}  # for bob's order
    await erase(tenant, "bob")
    await refund(tenant, world.bob_order, "refund-bob-1", customer="bob")
    await erase(tenant, JANE["externalId"])
    jane = (await tenant.gql("{ rewards(first: 100) { edges { node { id status customer { externalId } } } } }"))["rewards"]
    reversed_ = [e["node"] for e in jane["edges"] if e["node"]["id"] in before]
    assert [r["status"] for r in reversed_] == ["REVERSED"] and reversed_[0]["customer"]["externalId"].startswith("erased-")


async def test_events_after_erasure_carry_the_pseudonym(db, tenant):
    world = await build_world(tenant)
    erased = await erase(tenant, JANE["externalId"])
    await record(tenant, type="SIGNUP", customerExternalId="frank", idempotencyKey="signup-frank", referralCode=world.jane_code)
    async with system_connection(db) as connection:
        payloads = [
            p
            for (p,) in (
                await connection.execute(
                    select(WebhookDelivery.payload)
                    .where(WebhookDelivery.event_type == "referral.created")
                    .order_by(WebhookDelivery.id)
                )
            ).all()
        ]
    # jane's code stopped working when she was erased: frank was not referred by it
    assert all(p["refereeExternalId"] != "frank" for p in payloads)
    await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-bob-2",
        orderId="bob-2",
        amount=5000,
        currency="USD",
    )
    async with system_connection(db) as connection:
        granted = [
            p
            for (p,) in (
                await connection.execute(
                    select(WebhookDelivery.payload)
                    .where(WebhookDelivery.event_type == "reward.granted")
                    .order_by(WebhookDelivery.id)
                )
            ).all()
        ]
    latest = [p for p in granted if p["customerId"] == erased["erasure"]["customerId"]]
    assert latest and {p["customerExternalId"] for p in latest} == {erased["erasure"]["pseudonym"]}


async def test_an_erased_customer_cannot_be_filled_in_again(db, tenant):
    await build_world(tenant)
    erased = await erase(tenant, JANE["externalId"])
    pseudonym = erased["erasure"]["pseudonym"]
    refused = await tenant.gql(
        "mutation($input: UpsertCustomerInput!) { upsertCustomer(input: $input) { customer { id } userErrors { field code } } }",
        {"input": {"externalId": pseudonym, "email": "again@example.com"}},
    )
    assert refused["upsertCustomer"]["userErrors"] == [{"field": "customerExternalId", "code": "CUSTOMER_ERASED"}]
    # A refund of an erased customer's order is still recorded; it does not fill the profile in.
    await record(
        tenant,
        type="REFUND",
        customerExternalId=pseudonym,
        idempotencyKey="refund-jane-1",
        orderId="jane-1",
        context={"email": "again@example.com"},
    )
    customer = await tenant.gql("query($e: String!) { customer(externalId: $e) { email name } }", {"e": pseudonym})
    assert customer["customer"] == {"email": None, "name": None}
    # The merchant's old id is free again: a new customer, nothing of the old one.
    fresh = await tenant.gql(
        "mutation($input: UpsertCustomerInput!) { upsertCustomer(input: $input) { customer { id referralCodes { code } } } }",
        {"input": {"externalId": JANE["externalId"]}},
    )
    assert fresh["upsertCustomer"]["customer"]["id"] != erased["erasure"]["customerId"]
    assert fresh["upsertCustomer"]["customer"]["referralCodes"] == []


async def test_erasure_keeps_lookup_hashes_and_empties_every_personal_column(db, tenant):
    await build_world(tenant)
    erased = await erase(tenant, "bob")
    customer_id = erased["erasure"]["customerId"]
    async with system_connection(db) as connection:
        for table, column in columns_of(Kind.PERSONAL) + columns_of(Kind.NETWORK):
            owner = {"customers": "id", "actions": "customer_id", "customer_identifiers": "customer_id"}.get(table)
            if owner is None:
                continue
            values = (
                (
                    await connection.execute(
                        text(f"SELECT {column} FROM {table} WHERE {owner} = :c"),
                        {"c": customer_id.replace("-", "") if db.dialect.name == "sqlite" else customer_id},
                    )
                )
                .scalars()
                .all()
            )
            assert values and set(values) == {None}, f"{table}.{column}"
        hashes = (await connection.execute(select(CustomerIdentifier.value_hash))).scalars().all()
    assert hashes and all(len(h) == 64 for h in hashes)
    assert BOB_ADDRESS["line1"] not in str(await all_rows(db))
