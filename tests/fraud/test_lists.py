"""The merchant's lists: blocklists checked on every referral, and customers marked trusted
(reviews skipped) or banned (referrals rejected, rewards taken back). Every change is audited."""

from __future__ import annotations

from typing import Any

import pytest

from tests import graphql_ops as ops
from tests import scenarios
from tests.fraud import helpers as h
from tests.rewards.helpers import assert_ledger_consistent, balance, days, redeem_credit
from tests.scenarios import PAY_AT_SIGNUP

LIST_ENTRIES = """
query($kind: FraudListKind) { fraudListEntries(kind: $kind, first: 100) { edges { node { id kind value note } } } }"""

REMOVE = """
mutation($id: ID!) { removeFraudListEntry(id: $id) { entry { id kind value } userErrors { field code message } } }"""

STATUS = "query($customer: String!) { customerFraudStatus(customerExternalId: $customer) }"


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def add(tenant, kind: str, value: str, note: str | None = None) -> dict[str, Any]:
    data = await tenant.gql(h.ADD_LIST_ENTRY, {"kind": kind, "value": value, "note": note})
    return data["addFraudListEntry"]


async def entries(tenant, kind: str | None = None) -> list[dict[str, Any]]:
    data = await tenant.gql(LIST_ENTRIES, {"kind": kind})
    return [edge["node"] for edge in data["fraudListEntries"]["edges"]]


async def mark(tenant, customer: str, status: str, note: str | None = None) -> dict[str, Any]:
    data = await tenant.gql(h.SET_CUSTOMER_STATUS, {"customer": customer, "status": status, "note": note})
    return data["setCustomerFraudStatus"]


async def status_of(tenant, customer: str) -> str:
    return (await tenant.gql(STATUS, {"customer": customer}))["customerFraudStatus"]


async def referee_joins(tenant, code: str, referee: str, **context: Any) -> dict[str, Any]:
    return await h.act(tenant, "SIGNUP", referee, f"signup-{referee}", code=code, **context)


# --- blocklists ---------------------------------------------------------------------------------


MALFORMED = [
    ("IP", "999.1.1.1", "INVALID_INPUT"),
    ("IP", "10.0.0.0/8", "INVALID_INPUT"),
    ("IP_RANGE", "10.0.0.0/33", "INVALID_INPUT"),
    ("IP_RANGE", "everything", "INVALID_INPUT"),
    ("DOMAIN", "localhost", "INVALID_INPUT"),
    ("DOMAIN", "jane@example.com", "INVALID_INPUT"),
    ("DOMAIN", "spam example.com", "INVALID_INPUT"),
    ("EMAIL", "jane-at-example.com", "INVALID_EMAIL"),
    ("DEVICE", "   ", "REQUIRED"),
]


async def test_a_malformed_list_value_is_refused_and_nothing_is_written(tenant):
    for kind, value, code in MALFORMED:
        refused = await add(tenant, kind, value)
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("value", code)], (kind, value)
        assert refused["entry"] is None
    assert await entries(tenant) == [] and await h.audit_entries(tenant) == []


async def test_customers_are_marked_with_their_own_mutation_not_as_list_entries(tenant):
    refused = await add(tenant, "TRUSTED_CUSTOMER", "alice")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("kind", "INVALID_INPUT")]
    assert await entries(tenant) == []


async def test_list_values_are_stored_in_the_form_referees_are_compared_in(tenant):
    program = await h.program_with_credit(tenant)
    stored = {
        kind: (await add(tenant, kind, value))["entry"]["value"]
        for kind, value in [
            ("EMAIL", " Jane.Doe+promo@GoogleMail.com"),
            ("DOMAIN", "@Spam.Example."),
            ("IP", "2001:DB8:0:0::1"),
            ("IP_RANGE", "203.0.113.77/24"),
        ]
    }
    assert stored == {"EMAIL": "janedoe@gmail.com", "DOMAIN": "spam.example", "IP": "2001:db8::1", "IP_RANGE": "203.0.113.0/24"}

    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    joined = {
        referee: (await referee_joins(tenant, code, referee, **context))["action"]["attribution"]
        for referee, context in [
            ("jane", {"email": "j.a.n.e.doe@gmail.com"}),
            ("bot", {"email": "bot@mail.spam.example"}),
            ("ranged", {"ip": "203.0.113.200"}),
            ("v6", {"ip": "2001:db8::1"}),
            ("honest", {"email": "honest@example.org", "ip": "198.51.100.1"}),
        ]
    }
    assert joined == {
        "jane": "FRAUD_BLOCKED",
        "bot": "FRAUD_BLOCKED",
        "ranged": "FRAUD_BLOCKED",
        "v6": "FRAUD_BLOCKED",
        "honest": "REFERRAL_CREATED",
    }


async def test_adding_an_entry_twice_returns_it_and_removing_it_stops_the_blocking(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    first = await add(tenant, "DOMAIN", "spam.example", "bot signups")
    again = await add(tenant, "DOMAIN", "SPAM.example")
    assert first["userErrors"] == again["userErrors"] == []
    assert again["entry"] == first["entry"] and again["entry"]["note"] == "bot signups"
    entry_id = first["entry"]["id"]
    assert [e["id"] for e in await entries(tenant, "DOMAIN")] == [entry_id]

    blocked = await referee_joins(tenant, code, "bot-1", email="bot-1@spam.example")
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    [decision] = await h.decisions(tenant, blocked["referral"]["id"])
    evidence = next(o["evidence"] for o in decision["observations"] if o["signal"] == "blocklist")
    assert "spam.example" in evidence and "bot signups" in evidence

    removed = (await tenant.gql(REMOVE, {"id": entry_id}))["removeFraudListEntry"]
    assert removed["userErrors"] == [] and removed["entry"] == {"id": entry_id, "kind": "DOMAIN", "value": "spam.example"}
    twice = (await tenant.gql(REMOVE, {"id": entry_id}))["removeFraudListEntry"]
    assert [(e["field"], e["code"]) for e in twice["userErrors"]] == [("id", "NOT_FOUND")]
    assert await entries(tenant) == []
    allowed = await referee_joins(tenant, code, "person", email="person@spam.example")
    assert allowed["action"]["attribution"] == "REFERRAL_CREATED"

    key_id = await h.secret_key_id(tenant)
    audit = await h.audit_entries(tenant, entry_id)  # newest first; the repeated add changed nothing
    assert [(e["action"], e["actorKeyId"], e["note"]) for e in audit] == [
        ("fraud_list.removed", key_id, None),
        ("fraud_list.added", key_id, "bot signups"),
    ]
    assert audit[0]["details"] == {"kind": "DOMAIN", "value": "spam.example"}


async def test_list_entries_are_listed_by_kind(tenant):
    values = {
        "EMAIL": "fraud@example.com",
        "DOMAIN": "spam.example",
        "IP": "198.51.100.9",
        "IP_RANGE": "203.0.113.0/24",
        "DEVICE": "dev-farm-1",
        "PAYMENT": "card-stolen",
    }
    for kind, value in values.items():
        assert (await add(tenant, kind, value))["userErrors"] == []
    await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "tina"}})
    assert (await mark(tenant, "tina", "BANNED"))["userErrors"] == []
    assert (await mark(tenant, "tina", "TRUSTED", "appeal"))["userErrors"] == []  # replaces the ban

    for kind, value in values.items():
        assert [(e["kind"], e["value"]) for e in await entries(tenant, kind)] == [(kind, value)]
    assert await entries(tenant, "BANNED_CUSTOMER") == []
    [trusted] = await entries(tenant, "TRUSTED_CUSTOMER")
    assert trusted["note"] == "appeal"
    assert len(await entries(tenant)) == len(values) + 1
    assert await status_of(tenant, "tina") == "TRUSTED"


# --- customer marks -----------------------------------------------------------------------------


async def test_a_trusted_referrer_skips_review_but_a_blocklist_still_blocks(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    await h.act(tenant, "SIGNUP", "alice", "signup-alice", deviceId="dev-alice")
    assert await status_of(tenant, "alice") == "NONE"
    marked = await mark(tenant, "alice", "TRUSTED", "our ambassador")
    assert marked == {"customer": {"externalId": "alice"}, "status": "TRUSTED", "userErrors": []}
    assert await status_of(tenant, "alice") == "TRUSTED"

    household = await referee_joins(tenant, code, "alices-son", deviceId="dev-alice")
    assert household["action"]["attribution"] == "REFERRAL_CREATED"
    [decision] = await h.decisions(tenant, household["referral"]["id"])
    assert (decision["outcome"], decision["policyOutcome"]) == ("ALLOW", "REVIEW")
    assert h.fired(decision) == {"same_device"} and any("trusted" in a for a in decision["adjustments"])
    assert await h.open_reviews(tenant) == []
    bought = await h.act(tenant, "PURCHASE", "alices-son", "order-1", amount=5000)
    assert h.statuses(bought["rewards"]) == [("AVAILABLE", False)]
    # the purchase's decision, written on PostgreSQL by the statement that granted the reward
    # (app.db.insert_at_commit), reads back as whole as the signup's, inserted at its commit
    at_signup, at_purchase = await h.decisions(tenant, household["referral"]["id"])
    assert (at_purchase["stage"], at_purchase["outcome"], at_purchase["policyOutcome"]) == ("REWARD", "ALLOW", "REVIEW")
    assert at_purchase["adjustments"] == at_signup["adjustments"] and at_purchase["score"] == at_signup["score"]
    assert [o for o in at_purchase["observations"] if o["fired"]] == [o for o in at_signup["observations"] if o["fired"]]

    assert (await add(tenant, "DOMAIN", "bad.example"))["userErrors"] == []
    blocked = await referee_joins(tenant, code, "eve", email="eve@bad.example")
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"
    [decision] = await h.decisions(tenant, blocked["referral"]["id"])
    assert decision["outcome"] == "BLOCK" and decision["adjustments"] == []


async def test_a_trusted_referrer_is_never_blocked_by_a_score_a_person_decides_instead(tenant):
    program = await h.program_with_credit(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    await h.act(tenant, "SIGNUP", "alice", "signup-alice", email="alice.w@gmail.com")
    await mark(tenant, "alice", "TRUSTED", "our ambassador")

    alias = await referee_joins(tenant, code, "alice-2", email="a.lice.w+2@googlemail.com")  # her own mailbox
    assert alias["action"]["attribution"] == "REFERRAL_CREATED"
    [decision] = await h.decisions(tenant, alias["referral"]["id"])
    assert (decision["outcome"], decision["policyOutcome"]) == ("REVIEW", "BLOCK")
    assert decision["adjustments"] == ["referrer trusted: BLOCK -> REVIEW"]
    [review] = await h.open_reviews(tenant, program["id"])
    assert review["referral"]["id"] == alias["referral"]["id"]
    bought = await h.act(tenant, "PURCHASE", "alice-2", "order-1", amount=5000)
    assert h.statuses(bought["rewards"]) == [("HELD", True)]


async def test_banning_a_referrer_takes_back_their_rewards_and_blocks_new_referrals_until_cleared(tenant, db):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP, conditions={"holdDays": 7})
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    bob = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-11))
    earned = await h.act(tenant, "PURCHASE", "bob", "order-bob", amount=5000, at=days(-10))  # its hold is over
    assert h.statuses(earned["rewards"]) == [("AVAILABLE", False)]
    carol = await referee_joins(tenant, code, "carol")
    await h.act(tenant, "PURCHASE", "carol", "order-carol", amount=5000)
    assert await balance(tenant, "alice") == {"available": 1000, "held": 1000}
    assert (await redeem_credit(tenant, "alice", 300, "checkout-1"))["userErrors"] == []

    banned = await mark(tenant, "alice", "BANNED", "ring leader")
    assert banned["userErrors"] == [] and banned["status"] == "BANNED"
    assert await status_of(tenant, "alice") == "BANNED"
    for joined in (bob, carol):
        assert await h.referral_status(tenant, joined["referral"]["id"]) == "REJECTED"
    assert sorted(h.statuses(await h.rewards_of(tenant, "alice"))) == [("REVERSED", False), ("VOIDED", False)]
    assert await balance(tenant, "alice") == {"available": -300, "held": 0}

    dave = await referee_joins(tenant, code, "dave")
    assert dave["action"]["attribution"] == "FRAUD_BLOCKED"
    [decision] = await h.decisions(tenant, dave["referral"]["id"])
    assert decision["outcome"] == "BLOCK" and h.fired(decision) == {"banned_customer"}
    evidence = next(o["evidence"] for o in decision["observations"] if o["signal"] == "banned_customer")
    assert "alice" in evidence and "ring leader" in evidence

    cleared = await mark(tenant, "alice", "NONE", "appeal accepted")
    assert cleared["userErrors"] == [] and cleared["status"] == "NONE"
    assert await status_of(tenant, "alice") == "NONE"
    assert await entries(tenant) == []
    erin = await referee_joins(tenant, code, "erin")
    assert erin["action"]["attribution"] == "REFERRAL_CREATED"
    assert await h.referral_status(tenant, bob["referral"]["id"]) == "REJECTED"  # clearing undoes nothing

    key_id = await h.secret_key_id(tenant)
    audit = [(e["action"], e["actorKeyId"], e["note"]) for e in await h.audit_entries(tenant)]
    assert audit == [
        ("fraud_list.customer_cleared", key_id, "appeal accepted"),
        ("fraud_list.added", key_id, "ring leader"),
        ("fraud_policy.changed", key_id, None),
    ]  # the program pays at signup


async def test_marking_an_unknown_customer_is_refused(tenant):
    refused = await mark(tenant, "nobody", "BANNED")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("customerExternalId", "NOT_FOUND")]
    assert refused["customer"] is None and refused["status"] is None
    body = await tenant.raw(STATUS, {"customer": "nobody"})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert await entries(tenant) == [] and await h.audit_entries(tenant) == []
