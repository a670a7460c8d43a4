"""Clearance: no reward is spendable before its referral is cleared, screened ALLOW after the
evidence the program requires (by default: a fresh check three quiet days after the reward was
earned). Late evidence found before then costs nothing; a referee's first-order coupon is
released at once; a reviewer's approval clears."""

from __future__ import annotations

from tests import scenarios
from tests.fraud import helpers as h
from tests.privacy.helpers import ERASE
from tests.rewards.helpers import balance, create_rule, credit_rule, days, redeem_credit

POLICY = """
query($programId: ID!) { fraudPolicy(programId: $programId) { version clearance { evidence quietDays releaseRefereeDiscounts } } }"""
SET_CLEARANCE = """
mutation($programId: ID!, $policy: FraudPolicyInput!) {
  setFraudPolicy(programId: $programId, policy: $policy) {
    policy { version clearance { evidence quietDays releaseRefereeDiscounts } } userErrors { field code message } } }"""
REFERRAL = "query($id: ID!) { referral(id: $id) { status clearedAt } }"
FIRST_ORDER_COUPON = {
    "name": "10% off the first order",
    "trigger": "SIGNUP",
    "recipient": "REFEREE",
    "kind": "DISCOUNT",
    "percentBps": 1000,
}


async def shop(tenant, *, clearance=None, signup_coupon=True) -> tuple[dict, str]:
    """$10 credit to the referrer per referee purchase, a first-order coupon to the referee; alice's code."""
    program = await h.program_with_credit(tenant, clearance=clearance)
    if signup_coupon:
        await create_rule(tenant, program["id"], **FIRST_ORDER_COUPON)
    await h.act(tenant, "SIGNUP", "alice", "signup-alice", at=days(-10), deviceId="dev-alice", email="alice@example.com")
    return program, (await scenarios.code_for(tenant, program["id"], "alice"))["code"]


async def cleared_at(tenant, referral_id: str) -> str | None:
    return (await tenant.gql(REFERRAL, {"id": referral_id}))["referral"]["clearedAt"]


async def test_by_default_the_referrers_credit_waits_three_quiet_days_and_the_first_order_coupon_does_not(tenant, db):
    program, code = await shop(tenant)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-5), deviceId="dev-bob")
    assert [(r["kind"], r["status"], r["awaitingClearance"]) for r in joined["rewards"]] == [("DISCOUNT", "AVAILABLE", False)]

    bought = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-1), paymentFingerprint="card-bob")
    assert h.holds(bought["rewards"]) == [("HELD", False, True)]
    assert await balance(tenant, "alice") == {"available": 0, "held": 1000}
    assert (await redeem_credit(tenant, "alice", 100, "checkout-1"))["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"

    assert await h.clear_due(db, at=days(1.9)) == 0  # three days after the purchase: not yet
    assert await cleared_at(tenant, joined["referral"]["id"]) is None
    assert await h.clear_due(db, at=days(2.1)) == 1
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False, False)]
    assert await balance(tenant, "alice") == {"available": 1000, "held": 0}
    assert await cleared_at(tenant, joined["referral"]["id"]) is not None
    last = (await h.decisions(tenant, joined["referral"]["id"]))[-1]
    assert (last["stage"], last["outcome"]) == ("CLEARANCE", "ALLOW")
    assert await h.clear_due(db, at=days(3)) == 0  # nothing left waiting


async def test_the_referrers_own_card_seen_after_the_purchase_is_caught_at_clearance_before_any_money_moves(tenant, db):
    program, code = await shop(tenant)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-5), deviceId="dev-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-4), paymentFingerprint="card-x")
    # a day later the referrer buys with the same card: the referee was them
    await h.act(tenant, "PURCHASE", "alice", "order-2", amount=5000, at=days(-3), paymentFingerprint="card-x")

    assert await h.clear_due(db, at=days(0)) == 1
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("HELD", True, True)]
    assert await balance(tenant, "alice") == {"available": 0, "held": 1000}
    [review] = await h.open_reviews(tenant, program["id"])
    assert review["referral"]["id"] == joined["referral"]["id"] and "same_payment" in review["signals"]
    assert await cleared_at(tenant, joined["referral"]["id"]) is None
    assert await h.clear_due(db, at=days(1)) == 0  # the review holds it now, not the clock

    # a person looks and approves: that clears the referral, and the credit is spendable at once
    approved = await tenant.gql(h.RESOLVE, {"id": review["id"], "resolution": "APPROVE", "note": "spouse, same card"})
    assert approved["resolveFraudReview"]["userErrors"] == []
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False, False)]
    assert await cleared_at(tenant, joined["referral"]["id"]) is not None


async def test_a_block_at_clearance_voids_the_waiting_credit(tenant, db):
    program, code = await shop(tenant)
    await tenant.gql(h.ADD_LIST_ENTRY, {"kind": "PAYMENT", "value": "card-stolen", "note": "chargeback"})
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-5), deviceId="dev-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-4), paymentFingerprint="card-ok")
    await h.act(tenant, "PURCHASE", "bob", "order-2", amount=5000, at=days(-3.5), paymentFingerprint="card-stolen")

    await h.clear_due(db, at=days(0))
    assert await h.referral_status(tenant, joined["referral"]["id"]) == "REJECTED"
    assert [r["status"] for r in await h.rewards_of(tenant, "alice")] == ["VOIDED"]
    assert await balance(tenant, "alice") == {"available": 0, "held": 0}


async def test_first_purchase_clearance_releases_what_the_signup_earned_once_the_purchase_is_screened(tenant):
    program, code = await shop(tenant, clearance={"evidence": "FIRST_PURCHASE"}, signup_coupon=False)
    await create_rule(tenant, program["id"], **credit_rule(name="$5 per sign-up", trigger="SIGNUP", amount=500))
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob")
    assert h.holds(joined["rewards"]) == [("HELD", False, True)]

    bought = await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, paymentFingerprint="card-bob")
    assert h.holds(bought["rewards"]) == [("AVAILABLE", False, False)]
    assert sorted(h.holds(await h.rewards_of(tenant, "alice"))) == [("AVAILABLE", False, False)] * 2
    assert await balance(tenant, "alice") == {"available": 1500, "held": 0}
    assert await cleared_at(tenant, joined["referral"]["id"]) is not None

    # a referee paying with the referrer's card is not cleared by their purchase
    carol = await h.act(tenant, "SIGNUP", "carol", "signup-carol", code=code, deviceId="dev-carol")
    await h.act(tenant, "PURCHASE", "alice", "order-alice", amount=5000, paymentFingerprint="card-alice")
    held = await h.act(tenant, "PURCHASE", "carol", "order-2", amount=5000, paymentFingerprint="card-alice")
    assert h.holds(held["rewards"]) == [("HELD", True, False)]
    assert await cleared_at(tenant, carol["referral"]["id"]) is None
    assert await balance(tenant, "alice") == {"available": 1500, "held": 1500}


async def test_signup_clearance_pays_at_once_and_referee_coupons_can_be_made_to_wait(tenant):
    program, code = await shop(tenant, clearance={"evidence": "SIGNUP", "releaseRefereeDiscounts": False})
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob")
    assert h.holds(joined["rewards"]) == [("AVAILABLE", False, False)]  # SIGNUP: the check at signup cleared it
    changed = await tenant.gql(SET_CLEARANCE, {"programId": program["id"], "policy": {"clearance": {"evidence": "QUIET_DAYS"}}})
    assert changed["setFraudPolicy"]["policy"]["clearance"] == {
        "evidence": "QUIET_DAYS",
        "quietDays": 3,
        "releaseRefereeDiscounts": False,
    }
    carol = await h.act(tenant, "SIGNUP", "carol", "signup-carol", code=code, deviceId="dev-carol")
    assert h.holds(carol["rewards"]) == [("HELD", False, True)]  # the coupon waits too now


async def test_the_clearance_setting_is_part_of_the_versioned_fraud_policy_and_checked(tenant):
    program = await scenarios.active_program(tenant)
    default = (await tenant.gql(POLICY, {"programId": program["id"]}))["fraudPolicy"]
    assert default == {"version": 0, "clearance": {"evidence": "QUIET_DAYS", "quietDays": 3, "releaseRefereeDiscounts": True}}

    for days_ in (0, 91, -1):
        refused = await tenant.gql(SET_CLEARANCE, {"programId": program["id"], "policy": {"clearance": {"quietDays": days_}}})
        assert [(e["field"], e["code"]) for e in refused["setFraudPolicy"]["userErrors"]] == [
            ("clearance.quietDays", "INVALID_INPUT")
        ]
    changed = await tenant.gql(SET_CLEARANCE, {"programId": program["id"], "policy": {"clearance": {"quietDays": 7}}})
    assert changed["setFraudPolicy"]["policy"] == {
        "version": 1,
        "clearance": {"evidence": "QUIET_DAYS", "quietDays": 7, "releaseRefereeDiscounts": True},
    }
    bad = await tenant.raw(SET_CLEARANCE, {"programId": program["id"], "policy": {"clearance": {"evidence": "NEVER"}}})
    assert "errors" in bad  # not an enum value: refused before anything runs


async def test_a_reward_waiting_for_clearance_is_not_paid_even_when_its_own_hold_ends(tenant, db):
    from tests.rewards.helpers import release_due

    program, code = await shop(tenant, signup_coupon=False)
    await create_rule(tenant, program["id"], **credit_rule(name="$1 held a day", amount=100, conditions={"holdDays": 1}))
    await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-2), deviceId="dev-bob")
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-2), paymentFingerprint="card-bob")
    assert await release_due(db, at=days(0)) == 0  # the rule's day is over; clearance is not
    assert await balance(tenant, "alice") == {"available": 0, "held": 1100}
    await h.clear_due(db, at=days(1.1))
    assert await balance(tenant, "alice") == {"available": 1100, "held": 0}


async def test_a_payout_never_includes_commission_of_a_referral_not_yet_cleared(tenant, db):
    from tests.payouts import helpers as payouts

    program = await scenarios.active_program(tenant)  # the default clearance
    rule = await tenant.gql(
        payouts.COMMISSION_RULE,
        {
            "programId": program["id"],
            "input": {
                "name": "10% commission",
                "trigger": "PURCHASE",
                "recipient": "REFERRER",
                "kind": "COMMISSION",
                "percentBps": 1000,
            },
        },
    )
    assert rule["createRewardRule"]["userErrors"] == []
    await h.act(tenant, "SIGNUP", "jane", "signup-jane", at=days(-30), deviceId="dev-jane")
    code = (await scenarios.code_for(tenant, program["id"], "jane"))["code"]
    await h.act(tenant, "SIGNUP", "old", "signup-old", code=code, at=days(-20), deviceId="dev-old")
    await h.act(tenant, "PURCHASE", "old", "order-old", amount=30000, at=days(-20), paymentFingerprint="card-old")
    await h.clear_due(db, at=days(0))  # cleared: 30.00 of commission is hers
    await h.act(tenant, "SIGNUP", "new", "signup-new", code=code, at=days(-1), deviceId="dev-new")
    await h.act(tenant, "PURCHASE", "new", "order-new", amount=50000, at=days(-1), paymentFingerprint="card-new")
    assert await balance(tenant, "jane", "COMMISSION") == {"available": 3000, "held": 5000}

    assert (await payouts.set_account(tenant, "jane"))["userErrors"] == []
    whole = await payouts.request(tenant, "jane", amount=8000)
    assert [e["code"] for e in whole["userErrors"]] == ["INSUFFICIENT_BALANCE"]
    requested = await payouts.request(tenant, "jane")  # everything she may have: the cleared part only
    assert requested["userErrors"] == [] and requested["payout"]["amount"] == 3000


async def test_a_referee_erased_while_waiting_is_screened_again_on_what_still_matches(tenant, db):
    # Bob bought on alice's network and browser; then he asked to be erased. His identifiers keep
    # their keyed hashes, not their values: the fresh check still sees what matched, names it
    # [erased] as erasure does, and clears (an AttributeError on the missing value before).
    program, code = await shop(tenant)
    network = {"ip": "198.51.100.7", "userAgent": "Browser/1.0"}
    await h.act(tenant, "PURCHASE", "alice", "order-a", amount=5000, at=days(-9), **network)
    joined = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, at=days(-5), **network)
    await h.act(tenant, "PURCHASE", "bob", "order-1", amount=5000, at=days(-1), paymentFingerprint="card-bob", **network)
    erased = (await tenant.gql(ERASE, {"customer": "bob", "reason": "GDPR request"}))["eraseCustomer"]
    assert erased["userErrors"] == []

    assert await h.clear_due(db, at=days(2.1)) == 1
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False, False)]
    last = (await h.decisions(tenant, joined["referral"]["id"]))[-1]
    assert (last["stage"], last["outcome"]) == ("CLEARANCE", "ALLOW")
    shared = {
        o["signal"]: o["details"]["value"] for o in last["observations"] if o["signal"] in ("shared_ip", "same_ip_user_agent")
    }
    assert shared == {"shared_ip": "[erased]", "same_ip_user_agent": "[erased]"}
