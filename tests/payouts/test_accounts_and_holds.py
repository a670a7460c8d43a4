"""Payout accounts (validated, encrypted, masked, cooling off, announced) and the holds that
stop a payout until a person looks: cooling-off, an open fraud review, mostly flagged
referrals, a destination shared with other customers, with their evidence."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app.db import create_session_factory, utcnow
from app.fraud.models import FraudDecision
from app.merchants.models import AdminRole
from app.payouts import service
from app.webhooks.models import WebhookDelivery
from tests.fraud.helpers import without_referrer_memory
from tests.payouts import helpers as h
from tests.rewards.helpers import balance
from tests.scenarios import code_for, record

pytestmark = pytest.mark.usefixtures("clock")


async def refresh_holds(db, *, at=None) -> tuple[int, int]:
    async with create_session_factory(db)() as session:
        changed = await service.refresh_holds(session, now=at)
        await session.commit()
    return changed


async def test_details_are_validated_masked_and_encrypted(db, tenant):
    await tenant.gql("""mutation { upsertCustomer(input: {externalId: "jane"}) { customer { id } } }""")
    bad = await h.set_account(tenant, "jane", method="BANK_TRANSFER", iban="DE89 3704 0044 0532 0130 01", holderName="Jane")
    assert bad["userErrors"] == [
        {"field": "iban", "code": "INVALID_IBAN", "message": "not a valid IBAN: Invalid checksum digits"}
    ]
    assert (await h.set_account(tenant, "jane", method="BANK_TRANSFER", iban="DE89370400440532013000"))["userErrors"][0] == {
        "field": "holderName",
        "code": "REQUIRED",
        "message": "holderName is required",
    }
    assert (await h.set_account(tenant, "jane", method="PAYPAL", paypalEmail="not-an-email"))["userErrors"][0][
        "code"
    ] == "INVALID_EMAIL"
    assert (await h.set_account(tenant, "jane", method="CUSTOM", customType="crypto wallet"))["userErrors"][0][
        "field"
    ] == "customType"
    assert (await h.set_account(tenant, "nobody"))["userErrors"][0]["code"] == "NOT_FOUND"

    iban = await h.set_account(tenant, "jane", method="BANK_TRANSFER", iban="gb33 bukb 2020 1555 5555 55", holderName="Jane Doe")
    assert iban["account"]["masked"] == "GB33 ••••5555 (Jane Doe)"
    custom = await h.set_account(
        tenant, "jane", method="CUSTOM", customType="usdc", customDetails={"destination": "0xAbC123456789"}
    )
    assert custom["account"]["masked"] == "usdc ••••6789" and custom["account"]["customType"] == "usdc"
    dump = []
    async with db.connect() as connection:
        for table in ("payout_accounts", "audit_entries", "webhook_deliveries", "customer_identifiers"):
            dump += [
                json.dumps([str(v) for v in row]) for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            ]
    everything = "\n".join(dump)
    for secret in ("GB33BUKB20201555555555", "20201555555555", "0xAbC123456789", "0xabc123456789"):
        assert secret not in everything
    assert (await tenant.gql('{ payoutAccount(customerExternalId: "jane") { method masked } }'))["payoutAccount"] == {
        "method": "CUSTOM",
        "masked": "usdc ••••6789",
    }


async def test_a_new_destination_cools_off_and_is_announced(db, tenant, clock):
    await tenant.gql(
        """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }""",
        {"input": {"url": "https://hooks.shop.example/a", "eventTypes": ["payout_account.changed", "payout.on_hold"]}},
    )
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 900)
    first = (await h.set_account(tenant, "jane"))["account"]
    until = first["coolingOffUntil"]
    assert until and abs((utcnow() + timedelta(hours=72)).timestamp() - _ts(until)) < 60
    same = (await h.set_account(tenant, "jane"))["account"]
    assert same["id"] == first["id"]  # the same destination again: nothing new, no new cooling-off

    payout = (await h.request(tenant, "jane"))["payout"]
    assert payout["status"] == "ON_HOLD" and [r["code"] for r in payout["holdReasons"]] == ["COOLING_OFF"]
    person = await h.approver(tenant, clock)
    refused = await h.approve(tenant, person, [payout], code=person.code(clock()))
    assert refused["data"]["approvePayouts"]["userErrors"][0]["code"] == "PAYOUT_ON_HOLD"
    release = await tenant.gql(h.RELEASE_HOLD, {"id": payout["id"], "note": "looks fine"}, key=person.token)
    assert release["releasePayoutHold"]["userErrors"][0]["code"] == "PAYOUT_ON_HOLD"  # the cooling-off lasts
    assert await refresh_holds(db) == (0, 0)
    assert await refresh_holds(db, at=utcnow() + timedelta(hours=73)) == (1, 0)
    assert (await tenant.gql(h.PAYOUT, {"id": payout["id"]}))["payout"]["status"] == "PENDING_APPROVAL"

    changed = (await h.set_account(tenant, "jane", method="PAYPAL", paypalEmail="jane@example.com"))["account"]
    assert changed["id"] != first["id"] and _ts(changed["coolingOffUntil"]) > _ts(until)
    async with create_session_factory(db)() as session:
        events = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
    assert [e.event_type for e in events] == ["payout_account.changed", "payout.on_hold", "payout_account.changed"]
    assert events[2].payload["previous"] == {"method": "BANK_TRANSFER", "masked": "DE89 ••••3000 (Jane Doe)"}
    assert events[2].payload["masked"] == "j•••@example.com"
    # a payout already requested keeps its destination
    assert (await tenant.gql(h.PAYOUT, {"id": payout["id"]}))["payout"]["account"]["id"] == first["id"]


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


async def test_an_open_fraud_review_holds_the_payout_with_its_evidence(db, tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await without_referrer_memory(tenant, program)  # the review holds the payout; her earned commission stays
    await h.earn(tenant, program, "jane", 1000)
    await h.set_account(tenant, "jane")
    # jane refers a second account from her own device: a review opens
    code = await code_for(tenant, program, "jane")
    await record(tenant, type="SIGNUP", customerExternalId="jane", idempotencyKey="jane-device", context={"deviceId": "dev-jane"})
    alias = await record(
        tenant,
        type="SIGNUP",
        customerExternalId="jane-alias",
        idempotencyKey="alias",
        referralCode=code["code"],
        programId=program,
        context={"deviceId": "dev-jane"},
    )
    assert alias["referral"]["status"] == "PENDING"
    payout = (await h.request(tenant, "jane"))["payout"]
    [hold] = payout["holdReasons"]
    assert hold["code"] == "OPEN_FRAUD_REVIEW" and "same_device" in hold["message"]
    assert any("device dev-jane" in line for line in hold["evidence"])
    reviewer = await h.make_admin(tenant, AdminRole.REVIEWER)
    refused = await tenant.gql(h.RELEASE_HOLD, {"id": payout["id"], "note": "ok"}, key=reviewer.token)
    assert refused["releasePayoutHold"]["userErrors"][0]["code"] == "PAYOUT_ON_HOLD"

    review_id = hold["details"]["review_id"]
    resolved = await tenant.gql(
        """mutation($id: ID!) { resolveFraudReview(id: $id, resolution: APPROVE) { review { status } } }""",
        {"id": review_id},
        key=reviewer.token,
    )
    assert resolved["resolveFraudReview"]["review"]["status"] == "APPROVED"
    assert await refresh_holds(db) == (1, 0)
    person = await h.approver(tenant, clock)
    approved = await h.approve(tenant, person, [payout], code=person.code(clock()))
    assert approved["data"]["approvePayouts"]["approvedCount"] == 1


async def test_a_review_opened_after_the_request_holds_a_waiting_payout(db, tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    payout = await h.payout_for(tenant, program, "jane", 1000)
    assert payout["status"] == "PENDING_APPROVAL"
    code = await code_for(tenant, program, "jane")
    await record(tenant, type="SIGNUP", customerExternalId="jane", idempotencyKey="jane-device", context={"deviceId": "dev-jane"})
    await record(
        tenant,
        type="SIGNUP",
        customerExternalId="jane-alias",
        idempotencyKey="alias",
        referralCode=code["code"],
        programId=program,
        context={"deviceId": "dev-jane"},
    )
    person = await h.approver(tenant, clock)
    refused = await h.approve(tenant, person, [payout], code=person.code(clock()))
    assert refused["data"]["approvePayouts"]["userErrors"][0]["code"] == "PAYOUT_ON_HOLD"
    assert await refresh_holds(db) == (0, 1)
    held = (await tenant.gql(h.PAYOUT, {"id": payout["id"]}))["payout"]
    assert held["status"] == "ON_HOLD" and held["holdReasons"][0]["code"] == "OPEN_FRAUD_REVIEW"


async def test_mostly_flagged_referrals_and_a_shared_destination_wait_for_a_person(db, tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1000)
    await h.earn(tenant, program, "jane", 500, referee="jane-friend-2")
    async with create_session_factory(db)() as session:  # both of jane's referrals were flagged at some point
        for decision in (await session.scalars(select(FraudDecision).where(FraudDecision.stage == "REFERRAL"))).all():
            decision.outcome = "REVIEW"
        await session.commit()
    await h.set_account(tenant, "jane")
    await tenant.gql("""mutation { upsertCustomer(input: {externalId: "jim"}) { customer { id } } }""")
    await h.set_account(tenant, "jim", method="BANK_TRANSFER", iban=h.iban_for("jane"), holderName="Jim")
    payout = (await h.request(tenant, "jane"))["payout"]
    codes = {r["code"]: r for r in payout["holdReasons"]}
    assert set(codes) == {"FLAGGED_REFERRALS", "SHARED_PAYOUT_ACCOUNT"}
    assert codes["FLAGGED_REFERRALS"]["details"] == {"referrals": 2, "flagged": 2}
    assert codes["SHARED_PAYOUT_ACCOUNT"]["evidence"] == ["also paid to this destination: jim"]
    assert await refresh_holds(db) == (0, 0)  # these do not lift by themselves
    finance = await h.approver(tenant, clock)
    released = await tenant.gql(
        h.RELEASE_HOLD, {"id": payout["id"], "note": "jim is jane's husband; referrals checked"}, key=finance.token
    )
    assert released["releasePayoutHold"]["payout"]["status"] == "PENDING_APPROVAL"
    assert (await tenant.raw(h.RELEASE_HOLD, {"id": payout["id"], "note": "x"}))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await h.approve(tenant, finance, [payout], code=finance.code(clock())))["data"]["approvePayouts"][
        "approvedCount"
    ] == 1
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 0, "held": 0}


async def test_the_fraud_engine_sees_a_payout_account_shared_with_the_referrer(tenant):
    program = await h.commission_program(tenant)
    await tenant.gql("""mutation { upsertCustomer(input: {externalId: "jane"}) { customer { id } } }""")
    await tenant.gql("""mutation { upsertCustomer(input: {externalId: "jane2"}) { customer { id } } }""")
    await h.set_account(tenant, "jane", method="PAYPAL", paypalEmail="jane.doe@gmail.com")
    await h.set_account(tenant, "jane2", method="PAYPAL", paypalEmail="janedoe+2@gmail.com")  # the same mailbox
    code = await code_for(tenant, program, "jane")
    signup = await record(
        tenant, type="SIGNUP", customerExternalId="jane2", idempotencyKey="s", referralCode=code["code"], programId=program
    )
    decisions = await tenant.gql(
        """query($id: ID!) { fraudDecisions(referralId: $id) {
        outcome observations { signal value evidence fired } } }""",
        {"id": signup["referral"]["id"]},
    )
    [decision] = decisions["fraudDecisions"]
    [seen] = [o for o in decision["observations"] if o["signal"] == "shared_payout_account"]
    assert seen["fired"] and seen["value"] == 1
    assert "jane (the referrer)" in seen["evidence"]
    assert decision["outcome"] == "REVIEW"

    # the referrer's account is shared, so jane's next referral carries the evidence too (of her side)
    # ... while a referrer and referee paid to accounts of their own are no evidence
    for name in ("lee", "kim"):
        await tenant.gql("""mutation($e: String!) { upsertCustomer(input: {externalId: $e}) { customer { id } } }""", {"e": name})
        await h.set_account(tenant, name, method="PAYPAL", paypalEmail=f"{name}@example.com")
    lee = await code_for(tenant, program, "lee")
    other = await record(
        tenant, type="SIGNUP", customerExternalId="kim", idempotencyKey="s-kim", referralCode=lee["code"], programId=program
    )
    clean = await tenant.gql(
        """query($id: ID!) { fraudDecisions(referralId: $id) { outcome observations { signal } } }""",
        {"id": other["referral"]["id"]},
    )
    assert clean["fraudDecisions"][0]["outcome"] == "ALLOW"
    assert "shared_payout_account" not in {o["signal"] for o in clean["fraudDecisions"][0]["observations"]}
