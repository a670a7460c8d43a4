"""Promotion rules: versions with clauses, accepted by referrers from the widget's signed
session or through the API, a new version needing a new acceptance, and a reviewer citing a
clause when rejecting a referral's rewards in the fraud review."""

from __future__ import annotations

import pytest

from tests import graphql_ops as ops
from tests.fraud import helpers as h
from tests.fraud.test_reviews import review_of_referral, shared_device_referral
from tests.rewards.helpers import assert_ledger_consistent
from tests.widget.helpers import signed, widget_secret

CLAUSES = [
    {"id": "no-brand-bidding", "text": "Do not bid on our brand name in search ads."},
    {"id": "no-coupon-sites", "text": "Do not post your link on coupon sites."},
]


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def publish(tenant, program_id: str, text: str = "Promote us fairly.", clauses=CLAUSES) -> dict:
    return (await tenant.gql(ops.PUBLISH_PROMOTION_RULES, {"programId": program_id, "text": text, "clauses": clauses}))[
        "publishPromotionRules"
    ]


async def status_of(tenant, program_id: str, customer: str, **identity) -> dict:
    key = tenant.publishable_key if identity else None
    data = await tenant.gql(ops.PROMOTION_RULES_STATUS, {"programId": program_id, "customer": customer, **identity}, key=key)
    return data["promotionRulesStatus"]


async def test_acceptance_is_recorded_per_version_and_a_new_version_needs_a_new_one(tenant):
    program = await h.program_with_credit(tenant)
    await h.signup(tenant, "jane")
    secret = await widget_secret(tenant)
    identity = {k: v for k, v in signed(secret, "jane").items() if k != "customer"}

    first = await publish(tenant, program["id"])
    assert first["userErrors"] == [] and first["promotionRules"]["version"] == 1
    assert (await status_of(tenant, program["id"], "jane", **identity))["pendingAcceptance"] is True

    accepted = await tenant.gql(
        ops.ACCEPT_PROMOTION_RULES,
        {"programId": program["id"], "version": 1, "customer": "jane", **identity},
        key=tenant.publishable_key,
    )
    status = accepted["acceptPromotionRules"]["status"]
    assert (status["current"]["version"], status["acceptedVia"], status["pendingAcceptance"]) == (1, "WIDGET", False)

    assert (await publish(tenant, program["id"], "Promote us fairly, v2."))["promotionRules"]["version"] == 2
    assert (await status_of(tenant, program["id"], "jane"))["pendingAcceptance"] is True  # re-acceptance needed

    stale = await tenant.gql(ops.ACCEPT_PROMOTION_RULES, {"programId": program["id"], "version": 1, "customer": "jane"})
    assert [(e["field"], e["code"]) for e in stale["acceptPromotionRules"]["userErrors"]] == [("version", "INVALID_INPUT")]
    by_api = await tenant.gql(ops.ACCEPT_PROMOTION_RULES, {"programId": program["id"], "version": 2, "customer": "jane"})
    assert by_api["acceptPromotionRules"]["status"]["acceptedVia"] == "API"
    again = await tenant.gql(ops.ACCEPT_PROMOTION_RULES, {"programId": program["id"], "version": 2, "customer": "jane"})
    assert again["acceptPromotionRules"]["status"]["acceptedAt"] == by_api["acceptPromotionRules"]["status"]["acceptedAt"]

    forged = await tenant.raw(
        ops.ACCEPT_PROMOTION_RULES,
        {"programId": program["id"], "version": 2, "customer": "ken", **identity},
        key=tenant.publishable_key,
    )
    assert [e["code"] for e in forged["data"]["acceptPromotionRules"]["userErrors"]] == ["SIGNATURE_INVALID"]


async def test_bad_clauses_are_refused(tenant):
    program = await h.program_with_credit(tenant)
    duplicate = await publish(tenant, program["id"], clauses=[CLAUSES[0], CLAUSES[0]])
    assert [(e["field"], e["code"]) for e in duplicate["userErrors"]] == [("clauses.id", "INVALID_INPUT")]
    spaced = await publish(tenant, program["id"], clauses=[{"id": "no brand", "text": "x"}])
    assert [e["code"] for e in spaced["userErrors"]] == ["INVALID_INPUT"]
    unknown = await tenant.raw(ops.PROMOTION_RULES_STATUS, {"programId": program["id"], "customer": "nobody"})
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    await h.signup(tenant, "jane")
    nothing_published = await status_of(tenant, program["id"], "jane")
    assert (nothing_published["current"], nothing_published["pendingAcceptance"]) == (None, False)


async def test_a_rejection_cites_a_clause_stored_on_the_review_and_in_the_audit_log(tenant):
    program = await h.program_with_credit(tenant)
    await publish(tenant, program["id"])
    joined = await shared_device_referral(tenant, program["id"])
    review = await review_of_referral(tenant, joined["referral"]["id"])

    unknown = await tenant.gql(
        ops.RESOLVE_FRAUD_REVIEW_CITING,
        {"id": review["id"], "resolution": "REJECT", "citedRule": {"version": 1, "clauseId": "no-spam"}},
    )
    assert [(e["field"], e["code"]) for e in unknown["resolveFraudReview"]["userErrors"]] == [("citedRule.clauseId", "NOT_FOUND")]
    approving = await tenant.gql(
        ops.RESOLVE_FRAUD_REVIEW_CITING,
        {"id": review["id"], "resolution": "APPROVE", "citedRule": {"version": 1, "clauseId": "no-brand-bidding"}},
    )
    assert [e["code"] for e in approving["resolveFraudReview"]["userErrors"]] == ["INVALID_INPUT"]

    rejected = await tenant.gql(
        ops.RESOLVE_FRAUD_REVIEW_CITING,
        {
            "id": review["id"],
            "resolution": "REJECT",
            "note": "brand ads",
            "citedRule": {"version": 1, "clauseId": "No-Brand-Bidding"},
        },
    )
    resolved = rejected["resolveFraudReview"]["review"]
    assert resolved["status"] == "REJECTED"
    assert resolved["citedRule"] == {"version": 1, "clauseId": "no-brand-bidding", "clauseText": CLAUSES[0]["text"]}
    [entry] = [e for e in await h.audit_entries(tenant, review["id"]) if e["action"] == "fraud_review.rejected"]
    assert entry["details"]["cited_rule"]["clauseId"] == "no-brand-bidding"
