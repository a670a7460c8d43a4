"""Referrer memory: once one of a referrer's referrals is flagged for fraud, their other
referrals not yet cleared go to review and new ones start held (`referrer_under_review`),
until a reviewer clears the referrer, which releases them in one action."""

from __future__ import annotations

from tests import scenarios
from tests.fraud import helpers as h
from tests.rewards.helpers import balance

CLEAR_REFERRER = """
mutation($customer: String!, $note: String) {
  clearReferrer(customerExternalId: $customer, note: $note) {
    customer { externalId } approvedReviews { id referral { id } } userErrors { field code message } } }"""


async def test_a_flagged_referral_puts_the_referrers_others_in_review_until_a_reviewer_clears_them(tenant, db):
    program = await h.program_with_credit(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    bob = await h.act(tenant, "SIGNUP", "bob", "signup-bob", code=code, deviceId="dev-bob", email="bob@example.com")
    await h.act(tenant, "PURCHASE", "bob", "order-bob", amount=5000, paymentFingerprint="card-bob")
    assert await h.open_reviews(tenant, program["id"]) == []

    dave = await h.act(tenant, "SIGNUP", "dave", "signup-dave", code=code, deviceId="dev-dave", email="dave@mailinator.com")
    assert "disposable_email" in h.fired((await h.decisions(tenant, dave["referral"]["id"]))[-1])
    reviews = {r["referral"]["id"]: r for r in await h.open_reviews(tenant, program["id"])}
    assert set(reviews) == {dave["referral"]["id"], bob["referral"]["id"]}
    assert reviews[bob["referral"]["id"]]["signals"] == ["referrer_under_review"]
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("HELD", True, True)]

    # a new referral of alice's starts held, with its own reason
    erin = await h.act(tenant, "SIGNUP", "erin", "signup-erin", code=code, deviceId="dev-erin", email="erin@example.com")
    [decision] = await h.decisions(tenant, erin["referral"]["id"])
    assert decision["outcome"] == "REVIEW" and h.fired(decision) == {"referrer_under_review"}
    bought = await h.act(tenant, "PURCHASE", "erin", "order-erin", amount=5000, paymentFingerprint="card-erin")
    assert h.holds(bought["rewards"]) == [("HELD", True, True)]

    # the reviewer clears alice: bob's and erin's reviews are approved at once, dave's stays
    cleared = await tenant.gql(CLEAR_REFERRER, {"customer": "alice", "note": "known creator"})
    assert cleared["clearReferrer"]["userErrors"] == []
    assert {r["referral"]["id"] for r in cleared["clearReferrer"]["approvedReviews"]} == {
        bob["referral"]["id"],
        erin["referral"]["id"],
    }
    assert [r["referral"]["id"] for r in await h.open_reviews(tenant, program["id"])] == [dave["referral"]["id"]]
    assert h.holds(await h.rewards_of(tenant, "alice")) == [("AVAILABLE", False, False)] * 2  # a person cleared them
    assert await balance(tenant, "alice") == {"available": 2000, "held": 0}
    frank = await h.act(tenant, "SIGNUP", "frank", "signup-frank", code=code, deviceId="dev-frank", email="frank@example.com")
    assert [d["outcome"] for d in await h.decisions(tenant, frank["referral"]["id"])] == ["ALLOW"]
    [entry] = [e for e in await h.audit_entries(tenant) if e["action"] == "fraud.referrer_cleared"]
    assert entry["note"] == "known creator"


async def test_clearing_an_unknown_customer_is_refused_and_the_mark_cannot_be_set_by_hand(tenant):
    refused = await tenant.gql(CLEAR_REFERRER, {"customer": "nobody"})
    assert [e["code"] for e in refused["clearReferrer"]["userErrors"]] == ["NOT_FOUND"]
    added = await tenant.gql(h.ADD_LIST_ENTRY, {"kind": "REFERRER_UNDER_REVIEW", "value": "x"})
    assert [e["field"] for e in added["addFraudListEntry"]["userErrors"]] == ["kind"]


FRIENDS = ["ana", "bertrand", "chiamaka", "dmitri", "eleonora", "farid", "guadalupe", "hiroshi"]


async def test_putting_a_referrers_referrals_in_review_costs_the_same_statements_for_two_or_eight(
    tenant, other_tenant, count_statements
):
    """A flag puts the referrer's other open referrals in review together (decisions, reviews,
    holds, take-backs): one referral at a time, each cost a dozen statements, and a burst of
    flagged purchases slowed every purchase of the shop."""

    async def flag_a_referrer_with(shop, others: int) -> tuple[int, int]:
        program = await h.program_with_credit(shop)
        await scenarios.allow_bursts(shop, program["id"])  # eight friends in a minute: no velocity signal
        code = (await scenarios.code_for(shop, program["id"], "alice"))["code"]
        for name in FRIENDS[:others]:  # unlike names: numbered mailboxes are a signal of their own
            await h.act(shop, "SIGNUP", name, f"signup-{name}", code=code, deviceId=f"dev-{name}", email=f"{name}@{name}.example")
            await h.act(shop, "PURCHASE", name, f"order-{name}", amount=5000, paymentFingerprint=f"card-{name}")
        with count_statements() as counter:
            dave = await h.act(shop, "SIGNUP", "dave", "signup-dave", code=code, deviceId="dev-dave", email="dave@mailinator.com")
        assert "disposable_email" in h.fired((await h.decisions(shop, dave["referral"]["id"]))[-1])
        in_review = [r for r in await h.open_reviews(shop, program["id"]) if r["signals"] == ["referrer_under_review"]]
        return counter.count, len(in_review)

    two, eight = await flag_a_referrer_with(tenant, 2), await flag_a_referrer_with(other_tenant, 8)
    assert (two[1], eight[1]) == (2, 8)
    assert two[0] == eight[0]
