"""The review queue and what fraud decisions do to money: rewards held while a review is
open, released or taken back when a person decides, and a BLOCK that takes back what a
referral had already earned. The ledger is verified after every test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.db import create_session_factory
from app.rewards.models import LedgerTransaction
from app.webhooks.models import WebhookDelivery
from tests import scenarios
from tests.fraud import helpers as h
from tests.rewards.helpers import (
    assert_ledger_consistent,
    balance,
    create_rule,
    credit_rule,
    days,
    ledger_entries,
    redeem_credit,
    release_due,
)
from tests.scenarios import PAY_AT_SIGNUP

REVIEW = f"query($id: ID!) {{ fraudReview(id: $id) {{ {h.REVIEW_FIELDS} }} }}"

CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id } userErrors { field code message } }
}"""


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


# --- building blocks ------------------------------------------------------------------------


async def shared_device_referral(
    tenant,
    program_id: str,
    referrer: str = "alice",
    referee: str = "alias",
    *,
    at: datetime | None = None,
    **referrer_context: Any,
) -> dict[str, Any]:
    """The referee signs up with the referrer's code on the referrer's device: a review opens."""
    device = f"dev-{referrer}"
    code = (await scenarios.code_for(tenant, program_id, referrer))["code"]
    await h.act(tenant, "SIGNUP", referrer, f"signup-{referrer}", deviceId=device, at=at, **referrer_context)
    joined = await h.act(tenant, "SIGNUP", referee, f"signup-{referee}", code=code, deviceId=device, at=at)
    assert joined["action"]["attribution"] == "REFERRAL_CREATED"
    return joined


async def clean_referral(tenant, program_id: str, referrer: str, referee: str, **referrer_context: Any) -> dict[str, Any]:
    code = (await scenarios.code_for(tenant, program_id, referrer))["code"]
    await h.act(tenant, "SIGNUP", referrer, f"signup-{referrer}", deviceId=f"dev-{referrer}", **referrer_context)
    joined = await h.act(tenant, "SIGNUP", referee, f"signup-{referee}", code=code, deviceId=f"dev-{referee}")
    assert joined["action"]["attribution"] == "REFERRAL_CREATED"
    assert (await h.decisions(tenant, joined["referral"]["id"]))[-1]["outcome"] == "ALLOW"
    return joined


async def review_of_referral(tenant, referral_id: str) -> dict[str, Any]:
    [review] = [r for r in await h.open_reviews(tenant) if r["referral"]["id"] == referral_id]
    return review


async def resolve(tenant, review_id: str, resolution: str, note: str | None = None) -> dict[str, Any]:
    data = await tenant.gql(h.RESOLVE, {"id": review_id, "resolution": resolution, "note": note})
    return data["resolveFraudReview"]


async def review(tenant, review_id: str) -> dict[str, Any]:
    return (await tenant.gql(REVIEW, {"id": review_id}))["fraudReview"]


async def ledger_kinds(engine, reward_id: str) -> list[str]:
    """The kinds of the reward's ledger transactions, in the order they were booked."""
    async with create_session_factory(engine)() as session:
        rows = await session.scalars(
            select(LedgerTransaction.kind)
            .where(LedgerTransaction.reward_id == uuid.UUID(reward_id))
            .order_by(LedgerTransaction.created_at, LedgerTransaction.id)
        )
        return list(rows.all())


async def stored_deliveries(engine, merchant_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    """The `data` of each webhook delivery of that type, oldest first (no receiver needed)."""
    async with create_session_factory(engine)() as session:
        rows = await session.scalars(
            select(WebhookDelivery.payload)
            .where(WebhookDelivery.merchant_id == merchant_id, WebhookDelivery.event_type == event_type)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        return list(rows.all())


def commission(**conditions: Any) -> dict[str, Any]:
    """10 % of every purchase for a year: a reward on each purchase, not only the first."""
    return credit_rule(
        name="10% for a year",
        kind="COMMISSION",
        amount=None,
        currency=None,
        percentBps=1000,
        recurringMonths=12,
        conditions=conditions,
    )


async def program_paying(tenant, *rules: dict[str, Any], clearance: dict[str, Any] | None = None) -> dict[str, Any]:
    program = await scenarios.active_program(tenant, clearance=clearance)
    for rule in rules:
        await create_rule(tenant, program["id"], **rule)
    return program


# --- held while a review is open ------------------------------------------------------------


async def test_rewards_granted_during_a_review_are_held_even_after_their_hold_period(tenant, db):
    program = await h.program_with_credit(tenant, conditions={"holdDays": 7})
    await shared_device_referral(tenant, program["id"])

    bought = await h.act(tenant, "PURCHASE", "alias", "order-1", amount=5000)
    assert h.statuses(bought["rewards"]) == [("HELD", True)]
    assert await balance(tenant, "alice") == {"available": 0, "held": 1000}

    assert await release_due(db, at=days(30)) == 0
    assert h.statuses(await h.rewards_of(tenant, "alice")) == [("HELD", True)]
    assert await balance(tenant, "alice") == {"available": 0, "held": 1000}


async def test_a_review_opened_during_a_hold_keeps_the_reward_until_approval_then_the_hold_runs_out(tenant, db):
    program = await program_paying(tenant, commission(holdDays=7))
    joined = await clean_referral(tenant, program["id"], "alice", "bob", paymentFingerprint="card-alice")
    first = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-bob")
    assert h.statuses(first["rewards"]) == [("HELD", False)]

    # bob pays with alice's card: a review opens, and the reward already on hold joins it
    second = await h.act(tenant, "PURCHASE", "bob", "order-2", amount=5000, paymentFingerprint="card-alice")
    assert h.statuses(second["rewards"]) == [("HELD", True)]
    assert h.statuses(await h.rewards_of(tenant, "alice")) == [("HELD", True), ("HELD", True)]
    opened = await review_of_referral(tenant, joined["referral"]["id"])
    assert opened["signals"] == ["same_payment"]
    assert await release_due(db, at=days(30)) == 0

    approved = await resolve(tenant, opened["id"], "APPROVE", "shared family card")
    assert approved["userErrors"] == [] and approved["replayed"] is False
    # approval lifts the review, not the refund window: both wait out their hold
    assert h.statuses(approved["review"]["rewards"]) == [("HELD", False), ("HELD", False)]
    assert await balance(tenant, "alice", "COMMISSION") == {"available": 0, "held": 1000}
    assert await release_due(db, at=days(8)) == 2
    assert h.statuses(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False), ("AVAILABLE", False)]
    assert await balance(tenant, "alice", "COMMISSION") == {"available": 1000, "held": 0}


async def test_approving_releases_rewards_whose_hold_is_over_and_is_audited_with_the_callers_key(tenant, db):
    program = await program_paying(tenant, commission(holdDays=7))
    joined = await shared_device_referral(tenant, program["id"], at=days(-12))
    old = await h.act(tenant, "PURCHASE", "alias", "order-old", amount=5000, at=days(-10))
    new = await h.act(tenant, "PURCHASE", "alias", "order-new", amount=5000)
    assert h.statuses(old["rewards"]) == h.statuses(new["rewards"]) == [("HELD", True)]
    assert await release_due(db, at=days(0)) == 0  # the old one's hold is over, but it is under review

    opened = await review_of_referral(tenant, joined["referral"]["id"])
    approved = await resolve(tenant, opened["id"], "APPROVE", "her husband")
    assert approved["userErrors"] == []
    resolved = approved["review"]
    assert resolved["status"] == "APPROVED" and resolved["resolutionNote"] == "her husband"
    assert resolved["resolvedByKeyId"] == await h.secret_key_id(tenant) and resolved["resolvedAt"] is not None
    assert await h.referral_status(tenant, joined["referral"]["id"]) != "REJECTED"

    by_id = {r["id"]: r for r in await h.rewards_of(tenant, "alice")}
    assert h.statuses([by_id[old["rewards"][0]["id"]]]) == [("AVAILABLE", False)]
    assert h.statuses([by_id[new["rewards"][0]["id"]]]) == [("HELD", False)]
    assert await balance(tenant, "alice", "COMMISSION") == {"available": 500, "held": 500}
    assert await ledger_kinds(db, old["rewards"][0]["id"]) == ["GRANT", "RELEASE"]
    assert await ledger_kinds(db, new["rewards"][0]["id"]) == ["GRANT"]
    release = [e for e in await ledger_entries(tenant, "alice") if e["accountType"] == "AVAILABLE"]
    assert [e["amount"] for e in release] == [500]  # held -> available, once

    [entry] = await h.audit_entries(tenant, opened["id"])
    assert entry["action"] == "fraud_review.approved" and entry["note"] == "her husband"
    assert entry["actorKeyId"] == await h.secret_key_id(tenant)
    assert entry["details"]["referral_id"] == joined["referral"]["id"]
    assert await h.open_reviews(tenant) == []


# --- rejected ---------------------------------------------------------------------------------


async def test_rejecting_voids_held_rewards_and_reverses_spent_credit_which_later_rewards_pay_back(tenant, db):
    program = await program_paying(tenant, credit_rule(), commission(), clearance=PAY_AT_SIGNUP)
    await h.without_referrer_memory(tenant, program["id"])
    joined = await clean_referral(tenant, program["id"], "alice", "bob", paymentFingerprint="card-alice")
    first = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-bob")
    assert [(r["kind"], r["status"]) for r in first["rewards"]] == [("CREDIT", "AVAILABLE"), ("COMMISSION", "AVAILABLE")]
    spent = await redeem_credit(tenant, "alice", 600, "checkout-1")
    assert spent["userErrors"] == []

    # bob pays with alice's card: a review opens, and what was already spendable is clawed back;
    # the 600 spent cannot be recovered now (leakedAmount) and is owed
    second = await h.act(tenant, "PURCHASE", "bob", "order-2", amount=5000, paymentFingerprint="card-alice")
    assert [(r["kind"], r["status"], r["underReview"]) for r in second["rewards"]] == [("COMMISSION", "HELD", True)]
    assert await balance(tenant, "alice") == {"available": -600, "held": 0}
    assert await balance(tenant, "alice", "COMMISSION") == {"available": 0, "held": 500}
    assert [(r["kind"], r["status"], r["leakedAmount"]) for r in await h.rewards_of(tenant, "alice")] == [
        ("CREDIT", "REVERSED", 600),
        ("COMMISSION", "REVERSED", 0),
        ("COMMISSION", "HELD", 0),
    ]
    opened = await review_of_referral(tenant, joined["referral"]["id"])

    rejected = await resolve(tenant, opened["id"], "REJECT", "alice buys for herself")
    assert rejected["userErrors"] == [] and rejected["review"]["status"] == "REJECTED"
    assert rejected["review"]["referral"]["status"] == "REJECTED"
    assert h.statuses(await h.rewards_of(tenant, "alice")) == [("REVERSED", False), ("REVERSED", False), ("VOIDED", False)]
    for reward in first["rewards"]:
        assert await ledger_kinds(db, reward["id"]) == ["GRANT", "REVERSAL"]
    assert await ledger_kinds(db, second["rewards"][0]["id"]) == ["GRANT", "VOID"]
    assert await balance(tenant, "alice") == {"available": -600, "held": 0}  # the spent part is owed
    assert await balance(tenant, "alice", "COMMISSION") == {"available": 0, "held": 0}
    [entry] = await h.audit_entries(tenant, opened["id"])
    assert (entry["action"], entry["note"]) == ("fraud_review.rejected", "alice buys for herself")

    # the rejected referral earns nothing more; an honest one pays the debt back first
    assert (await h.act(tenant, "PURCHASE", "bob", "order-3", amount=5000))["rewards"] == []
    await h.act(
        tenant,
        "SIGNUP",
        "carol",
        "signup-carol",
        code=(await scenarios.code_for(tenant, program["id"], "alice"))["code"],
        deviceId="dev-carol",
    )
    honest = await h.act(tenant, "PURCHASE", "carol", "order-carol", amount=5000, paymentFingerprint="card-carol")
    assert h.statuses(honest["rewards"]) == [("AVAILABLE", False), ("AVAILABLE", False)]
    assert await balance(tenant, "alice") == {"available": 400, "held": 0}


# --- idempotency ------------------------------------------------------------------------------


async def test_resolving_again_the_same_way_is_a_replay_and_the_other_way_is_refused(tenant, db):
    program = await h.program_with_credit(tenant)
    joined = await shared_device_referral(tenant, program["id"])
    await h.act(tenant, "PURCHASE", "alias", "order-1", amount=5000)
    opened = await review_of_referral(tenant, joined["referral"]["id"])

    first = await resolve(tenant, opened["id"], "APPROVE", "checked")
    again = await resolve(tenant, opened["id"], "APPROVE", "checked twice")
    assert first["replayed"] is False and again["replayed"] is True and again["userErrors"] == []
    assert again["review"]["resolvedAt"] == first["review"]["resolvedAt"]
    assert again["review"]["resolutionNote"] == "checked"
    assert len(await h.audit_entries(tenant, opened["id"])) == 1

    refused = await resolve(tenant, opened["id"], "REJECT", "changed my mind")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("id", "REVIEW_ALREADY_RESOLVED")]
    assert refused["review"] is None
    assert (await review(tenant, opened["id"]))["status"] == "APPROVED"
    assert await h.referral_status(tenant, joined["referral"]["id"]) != "REJECTED"
    assert h.statuses(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False)]
    assert len(await h.audit_entries(tenant, opened["id"])) == 1

    unknown = await resolve(tenant, str(uuid.uuid4()), "APPROVE")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [("id", "NOT_FOUND")]


@pytest.mark.postgresql_only
async def test_five_concurrent_approvals_release_once(tenant, db):
    program = await h.program_with_credit(tenant)
    joined = await shared_device_referral(tenant, program["id"])
    bought = await h.act(tenant, "PURCHASE", "alias", "order-1", amount=5000)
    opened = await review_of_referral(tenant, joined["referral"]["id"])

    results = await asyncio.gather(*(resolve(tenant, opened["id"], "APPROVE", f"reviewer {i}") for i in range(5)))
    assert all(r["userErrors"] == [] and r["review"]["status"] == "APPROVED" for r in results)
    assert sorted(r["replayed"] for r in results) == [False, True, True, True, True]
    assert len(await h.audit_entries(tenant, opened["id"])) == 1
    assert await ledger_kinds(db, bought["rewards"][0]["id"]) == ["GRANT", "RELEASE"]
    assert await balance(tenant, "alice") == {"available": 1000, "held": 0}


# --- bulk ---------------------------------------------------------------------------------------


def moment() -> str:
    return datetime.now(UTC).isoformat()


async def test_bulk_resolution_takes_only_the_open_reviews_matching_the_filter(tenant, db):
    first_program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, first_program["id"])
    other_program = await h.program_with_credit(tenant, name="Another program")
    await h.without_referrer_memory(tenant, other_program["id"])
    device_only = await shared_device_referral(tenant, first_program["id"], "alice", "alias")  # score 80
    await asyncio.sleep(0.01)
    after_first = moment()
    await asyncio.sleep(0.01)
    card = await clean_referral(tenant, first_program["id"], "anna", "annas-friend", paymentFingerprint="card-anna")
    await h.act(tenant, "PURCHASE", "annas-friend", "order-anna", amount=5000, paymentFingerprint="card-anna")  # same_payment
    address = {"line1": "1 Elm Street", "city": "Springfield", "postalCode": "12345", "country": "US"}
    device_and_address = await shared_device_referral(tenant, first_program["id"], "amy", "amys-alias", shippingAddress=address)
    await h.act(tenant, "PURCHASE", "amys-alias", "order-amy", amount=5000, shippingAddress=address)  # 80 + 30
    await asyncio.sleep(0.01)
    before_last = moment()
    await asyncio.sleep(0.01)
    elsewhere = await shared_device_referral(tenant, other_program["id"], "olga", "olgas-alias")
    reviews = {r["referral"]["id"]: r for r in await h.open_reviews(tenant)}
    ids = {
        name: reviews[j["referral"]["id"]]["id"]
        for name, j in {"device": device_only, "card": card, "both": device_and_address, "elsewhere": elsewhere}.items()
    }
    assert reviews[device_and_address["referral"]["id"]]["signals"] == ["same_address", "same_device"]
    assert reviews[device_and_address["referral"]["id"]]["score"] == 110

    async def bulk(filter: dict, resolution: str = "APPROVE", limit: int = 100) -> dict[str, Any]:
        data = await tenant.gql(h.RESOLVE_MANY, {"filter": filter, "resolution": resolution, "note": "bulk", "limit": limit})
        return data["resolveFraudReviews"]

    async def still_open() -> set[str]:
        return {r["id"] for r in await h.open_reviews(tenant)}

    unknown = await bulk({"signal": "same_horoscope"})
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [("filter.signal", "INVALID_INPUT")]
    assert unknown["resolvedCount"] == 0 and await still_open() == set(ids.values())
    assert not [e for e in await h.audit_entries(tenant) if e["action"].startswith("fraud_review")]

    by_signal = await bulk({"programId": first_program["id"], "signal": "same_device", "maxScore": 80})
    assert by_signal["userErrors"] == [] and by_signal["resolvedCount"] == 1
    assert [r["id"] for r in by_signal["reviews"]] == [ids["device"]]
    assert await still_open() == {ids["card"], ids["both"], ids["elsewhere"]}

    # opened between the marks, oldest first, one at a time: the card review, rejected
    window = await bulk({"openedAfter": after_first, "openedBefore": before_last}, "REJECT", limit=1)
    assert [r["id"] for r in window["reviews"]] == [ids["card"]]
    assert window["reviews"][0]["referral"]["status"] == "REJECTED"
    assert await still_open() == {ids["both"], ids["elsewhere"]}
    assert h.statuses(await h.rewards_of(tenant, "anna")) == [("VOIDED", False)]
    assert h.statuses(await h.rewards_of(tenant, "amy")) == [("HELD", True)]

    rest = await bulk({"programId": other_program["id"]})
    assert [r["id"] for r in rest["reviews"]] == [ids["elsewhere"]]
    assert await still_open() == {ids["both"]}
    assert await h.referral_status(tenant, device_and_address["referral"]["id"]) != "REJECTED"
    resolutions = [e["action"] for e in await h.audit_entries(tenant) if e["action"].startswith("fraud_review")]
    assert sorted(resolutions) == ["fraud_review.approved", "fraud_review.approved", "fraud_review.rejected"]


# --- BLOCK --------------------------------------------------------------------------------------


async def referee_welcome_program(tenant, **referrer_rule: Any) -> dict[str, Any]:
    """$10 to the referrer per purchase and $5 to the referee when they sign up, spendable at once."""
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP, **referrer_rule)
    await create_rule(tenant, program["id"], **credit_rule(name="Welcome $5", trigger="SIGNUP", recipient="REFEREE", amount=500))
    return program


async def test_a_blocked_referral_gets_no_reward_then_or_later(tenant, db):
    program = await referee_welcome_program(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "jane"))["code"]
    await h.act(tenant, "SIGNUP", "jane", "signup-jane", email="jane.doe@gmail.com")
    joined = await h.act(tenant, "SIGNUP", "jane-2", "signup-jane-2", code=code, email="janedoe+promo@googlemail.com")
    assert joined["action"]["attribution"] == "FRAUD_BLOCKED" and joined["referral"]["status"] == "REJECTED"
    assert joined["rewards"] == []
    assert (await h.act(tenant, "PURCHASE", "jane-2", "order-1", amount=5000))["rewards"] == []
    assert await h.rewards_of(tenant, "jane") == [] and await h.rewards_of(tenant, "jane-2") == []
    assert await h.open_reviews(tenant) == []


async def test_a_block_at_purchase_takes_back_the_referees_spent_welcome_credit(tenant, db):
    program = await referee_welcome_program(tenant)
    added = await tenant.gql(h.ADD_LIST_ENTRY, {"kind": "PAYMENT", "value": "card-stolen", "note": "chargeback"})
    assert added["addFraudListEntry"]["userErrors"] == []
    joined = await clean_referral(tenant, program["id"], "alice", "bob")
    assert h.statuses(joined["rewards"]) == [("AVAILABLE", False)]
    assert (await redeem_credit(tenant, "bob", 200, "checkout-1"))["userErrors"] == []

    bought = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-stolen")
    assert bought["rewards"] == []
    assert await h.referral_status(tenant, joined["referral"]["id"]) == "REJECTED"
    [welcome] = await h.rewards_of(tenant, "bob")
    assert welcome["status"] == "REVERSED"
    assert await ledger_kinds(db, welcome["id"]) == ["GRANT", "REVERSAL"]
    assert await balance(tenant, "bob") == {"available": -200, "held": 0}
    assert await h.rewards_of(tenant, "alice") == []
    last = (await h.decisions(tenant, joined["referral"]["id"]))[-1]
    assert (last["stage"], last["outcome"]) == ("REWARD", "BLOCK") and h.fired(last) == {"blocklist"}
    evidence = next(o["evidence"] for o in last["observations"] if o["signal"] == "blocklist")
    assert "card-stolen" in evidence and "chargeback" in evidence


async def test_a_block_at_purchase_closes_the_open_review_and_voids_what_it_held(tenant, db):
    program = await referee_welcome_program(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    joined = await shared_device_referral(tenant, program["id"], paymentFingerprint="card-alice")
    assert h.statuses(joined["rewards"]) == [("HELD", True)]
    opened = await review_of_referral(tenant, joined["referral"]["id"])

    # the referrer's device and now the referrer's card: 80 + 80 reaches the block score
    bought = await h.act(tenant, "PURCHASE", "alias", "order-1", amount=5000, paymentFingerprint="card-alice")
    assert bought["rewards"] == []
    closed = await review(tenant, opened["id"])
    assert closed["status"] == "REJECTED" and closed["resolvedByKeyId"] is None
    assert closed["referral"]["status"] == "REJECTED"
    assert h.statuses(closed["rewards"]) == [("VOIDED", False)]
    assert await h.open_reviews(tenant) == []
    assert await balance(tenant, "alias") == {"available": 0, "held": 0}
    last = (await h.decisions(tenant, joined["referral"]["id"]))[-1]
    assert last["outcome"] == "BLOCK" and h.fired(last) == {"same_device", "same_payment"}


# --- after a review -----------------------------------------------------------------------------


async def test_after_approval_the_same_evidence_passes_and_new_evidence_opens_a_new_review(tenant, db):
    program = await program_paying(tenant, commission())
    await h.without_referrer_memory(tenant, program["id"])
    address = {"line1": "12 Main Street", "line2": "Apt 4", "city": "Springfield", "postalCode": "12345", "country": "US"}
    joined = await shared_device_referral(tenant, program["id"], shippingAddress=address)
    first = await review_of_referral(tenant, joined["referral"]["id"])
    assert (await resolve(tenant, first["id"], "APPROVE", "roommates"))["userErrors"] == []

    same = await h.act(tenant, "PURCHASE", "alias", "order-1", amount=5000, deviceId="dev-alice")
    assert h.statuses(same["rewards"]) == [("AVAILABLE", False)]
    decision = (await h.decisions(tenant, joined["referral"]["id"]))[-1]
    assert (decision["outcome"], decision["policyOutcome"]) == ("ALLOW", "REVIEW")
    assert h.fired(decision) == {"same_device"}
    assert any("approved in an earlier review" in a for a in decision["adjustments"])
    assert await h.open_reviews(tenant) == []

    shipped = await h.act(
        tenant, "PURCHASE", "alias", "order-2", amount=5000, shippingAddress={**address, "line1": "12 main st", "line2": "apt. 4"}
    )
    assert h.statuses(shipped["rewards"]) == [("HELD", True)]
    [second] = await h.open_reviews(tenant)
    assert second["id"] != first["id"] and second["referral"]["id"] == joined["referral"]["id"]
    assert "same_address" in second["signals"]
    assert (await review(tenant, first["id"]))["status"] == "APPROVED"


# --- webhooks -----------------------------------------------------------------------------------


async def test_review_and_rejection_webhooks_carry_the_evidence(tenant, db):
    endpoint = await tenant.gql(
        CREATE_ENDPOINT,
        {
            "input": {
                "url": "https://hooks.shop.example/fraud",
                "eventTypes": ["fraud.review_opened", "fraud.review_resolved", "referral.rejected"],
            }
        },
    )
    assert endpoint["createWebhookEndpoint"]["userErrors"] == []
    program = await h.program_with_credit(tenant)
    joined = await shared_device_referral(tenant, program["id"])

    [opened] = await stored_deliveries(db, tenant.id, "fraud.review_opened")
    assert opened["referralId"] == joined["referral"]["id"] and opened["status"] == "OPEN"
    assert opened["signals"] == ["same_device"]
    [signal] = opened["decisions"][0]["signals"]
    assert signal["signal"] == "same_device" and "dev-alice" in signal["evidence"] and "alice" in signal["evidence"]
    assert signal["weight"] == 80

    await resolve(tenant, opened["id"], "REJECT", "one person, two accounts")
    [resolved] = await stored_deliveries(db, tenant.id, "fraud.review_resolved")
    assert (resolved["id"], resolved["status"], resolved["resolutionNote"]) == (
        opened["id"],
        "REJECTED",
        "one person, two accounts",
    )
    assert [s["signal"] for s in resolved["decisions"][0]["signals"]] == ["same_device"]
    [by_review] = await stored_deliveries(db, tenant.id, "referral.rejected")
    assert by_review["id"] == joined["referral"]["id"] and by_review["fraudDecision"] is None

    # a BLOCK says why in the rejection itself
    code = (await scenarios.code_for(tenant, program["id"], "jane"))["code"]
    await h.act(tenant, "SIGNUP", "jane", "signup-jane", email="jane.doe@gmail.com")
    blocked = await h.act(tenant, "SIGNUP", "jane-2", "signup-jane-2", code=code, email="janedoe+promo@googlemail.com")
    rejections = await stored_deliveries(db, tenant.id, "referral.rejected")
    [by_block] = [d for d in rejections if d["id"] == blocked["referral"]["id"]]
    decision = by_block["fraudDecision"]
    assert decision["outcome"] == "BLOCK" and decision["stage"] == "REFERRAL"
    assert [s["signal"] for s in decision["signals"]] == ["same_email"]
    assert "jane" in decision["signals"][0]["evidence"]
    assert len(await stored_deliveries(db, tenant.id, "fraud.review_opened")) == 1
