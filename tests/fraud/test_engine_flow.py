"""The fraud engine in the referral flow: every referral and reward passes it."""

from __future__ import annotations

from tests import scenarios
from tests.fraud import helpers as h
from tests.scenarios import PAY_AT_SIGNUP


async def test_a_clean_referral_is_allowed_and_its_decision_is_stored(tenant):
    program = await h.program_with_credit(tenant, clearance=PAY_AT_SIGNUP)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    await h.signup(tenant, "alice", deviceId="dev-alice", ip="198.51.100.7", email="alice@example.com")
    joined = await h.signup(tenant, "bob", code=code, deviceId="dev-bob", ip="203.0.113.9", email="bob.stone@example.org")
    assert joined["action"]["attribution"] == "REFERRAL_CREATED"
    bought = await h.purchase(tenant, "bob", "order-1", deviceId="dev-bob", paymentFingerprint="card-bob")
    assert [r["status"] for r in bought["rewards"]] == ["AVAILABLE"]

    decisions = await h.decisions(tenant, joined["referral"]["id"])
    assert [(d["stage"], d["outcome"]) for d in decisions] == [("REFERRAL", "ALLOW"), ("REWARD", "ALLOW")]
    assert all(not h.fired(d) for d in decisions)
    # On PostgreSQL the signup's decision was inserted at its commit and the purchase's by the
    # statement that granted the reward (app.db.insert_at_commit); both read back whole
    for decision in decisions:
        assert (decision["policyOutcome"], decision["score"], decision["adjustments"], decision["reviewId"]) == (
            "ALLOW",
            0,
            [],
            None,
        )


async def test_a_second_account_on_the_referrers_device_is_held_for_review(tenant):
    program = await h.program_with_credit(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    await h.signup(tenant, "alice", deviceId="dev-shared", ip="198.51.100.7", email="alice@example.com")
    joined = await h.signup(tenant, "alias", code=code, deviceId="dev-shared", ip="203.0.113.9", email="al@example.net")
    decision = (await h.decisions(tenant, joined["referral"]["id"]))[0]
    assert decision["outcome"] == "REVIEW"
    assert h.fired(decision) == {"same_device"}
    evidence = next(o["evidence"] for o in decision["observations"] if o["signal"] == "same_device")
    assert "dev-shared" in evidence and "alice" in evidence

    bought = await h.purchase(tenant, "alias", "order-1")
    assert [(r["status"], r["underReview"]) for r in bought["rewards"]] == [("HELD", True)]
    [review] = await h.open_reviews(tenant, program["id"])
    assert review["referral"]["id"] == joined["referral"]["id"]

    approved = await tenant.gql(h.RESOLVE, {"id": review["id"], "resolution": "APPROVE", "note": "her husband"})
    payload = approved["resolveFraudReview"]
    assert payload["userErrors"] == []
    assert payload["review"]["status"] == "APPROVED"
    assert [(r["status"], r["underReview"]) for r in payload["review"]["rewards"]] == [("AVAILABLE", False)]


async def test_the_same_mailbox_is_blocked_and_earns_nothing(tenant):
    program = await h.program_with_credit(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "jane"))["code"]
    await h.signup(tenant, "jane", email="jane.doe@gmail.com")
    joined = await h.signup(tenant, "jane-2", code=code, email="janedoe+promo@googlemail.com")
    assert joined["action"]["attribution"] == "FRAUD_BLOCKED"
    assert joined["referral"]["status"] == "REJECTED"
    bought = await h.purchase(tenant, "jane-2", "order-1")
    assert bought["rewards"] == []
