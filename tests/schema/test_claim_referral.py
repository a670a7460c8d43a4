"""claimReferral: a referee who lost the referral link's cookie names the code after signing
up, within the program's claim window; what they did since signing up then counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.referrals.models import Customer
from tests import graphql_ops as ops
from tests.scenarios import active_program, code_for, record

REFERRAL = """
query($id: ID!) {
  referral(id: $id) {
    id status source qualifiedAt
    program { id }
    code { code }
    referrer { externalId }
    referee { externalId }
    actions { id type attribution }
  }
}"""

REFERRALS = """
query { referrals(first: 100) { edges { node { id source referrer { externalId } referee { externalId } } } } }"""


async def claim(tenant, program_id: str, customer: str, code: str) -> dict:
    data = await tenant.gql(
        ops.CLAIM_REFERRAL, {"input": {"programId": program_id, "customerExternalId": customer, "code": code}}
    )
    return data["claimReferral"]


async def referral(tenant, referral_id: str) -> dict:
    return (await tenant.gql(REFERRAL, {"id": referral_id}))["referral"]


async def referrals(tenant) -> list[dict]:
    return [edge["node"] for edge in (await tenant.gql(REFERRALS))["referrals"]["edges"]]


def refused(payload: dict) -> list[tuple[str | None, str]]:
    assert payload["referral"] is None
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def signed_up(tenant, customer: str = "bob") -> dict:
    result = await record(tenant, type="SIGNUP", customerExternalId=customer, idempotencyKey=f"signup-{customer}")
    assert result["userErrors"] == [] and result["referral"] is None
    return result["action"]


async def bought(tenant, customer: str = "bob", key: str = "order-1", **extra) -> dict:
    result = await record(
        tenant, type="PURCHASE", customerExternalId=customer, idempotencyKey=key, amount=1999, currency="USD", **extra
    )
    assert result["userErrors"] == []
    return result


async def signed_up_days_ago(session, tenant, customer: str, days: float) -> None:
    await session.execute(
        update(Customer)
        .where(Customer.merchant_id == tenant.id, Customer.external_id == customer)
        .values(created_at=datetime.now(UTC) - timedelta(days=days))
    )
    await session.commit()


async def test_a_referee_who_lost_the_link_claims_the_code_and_their_purchase_counts(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    signup = await signed_up(tenant)
    purchase = await bought(tenant)
    assert purchase["action"]["attribution"] == "NONE"

    claimed = await claim(tenant, program["id"], "bob", code.lower())

    assert claimed["userErrors"] == []
    assert claimed["referral"]["source"] == "CLAIM"
    assert claimed["referral"]["status"] == "QUALIFIED"
    assert claimed["referral"]["referrer"] == {"externalId": "jane"}
    assert claimed["referral"]["referee"] == {"externalId": "bob"}
    stored = await referral(tenant, claimed["referral"]["id"])
    assert stored["qualifiedAt"] == purchase["action"]["occurredAt"]
    assert stored["code"] == {"code": code}
    assert stored["program"] == {"id": program["id"]}
    assert [a["id"] for a in stored["actions"]] == [signup["id"], purchase["action"]["id"]]
    assert [r["id"] for r in await referrals(tenant)] == [claimed["referral"]["id"]]
    assert {a["attribution"] for a in stored["actions"]} == {"LINKED_TO_REFERRAL"}


async def test_a_claim_before_any_purchase_stays_pending_until_the_first_purchase(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)

    claimed = await claim(tenant, program["id"], "bob", code)
    assert claimed["referral"]["status"] == "PENDING"

    purchase = await bought(tenant)
    assert purchase["action"]["attribution"] == "LINKED_TO_REFERRAL"
    assert purchase["referral"]["id"] == claimed["referral"]["id"]
    assert purchase["referral"]["status"] == "QUALIFIED"


async def test_claiming_the_same_code_again_returns_the_same_referral(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)
    first = await claim(tenant, program["id"], "bob", code)

    again = await claim(tenant, program["id"], "bob", code)

    assert again["userErrors"] == []
    assert again["referral"] == first["referral"]
    assert len(await referrals(tenant)) == 1


async def test_a_referee_who_came_through_a_link_may_still_name_the_same_code(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    signup = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=code)

    claimed = await claim(tenant, program["id"], "bob", code)

    assert claimed["userErrors"] == []
    assert claimed["referral"]["id"] == signup["referral"]["id"]
    assert claimed["referral"]["source"] == "CODE"


async def test_claiming_another_referrers_code_is_refused(tenant):
    program = await active_program(tenant)
    jane = (await code_for(tenant, program["id"], "jane"))["code"]
    kim = (await code_for(tenant, program["id"], "kim"))["code"]
    await signed_up(tenant)
    first = await claim(tenant, program["id"], "bob", jane)

    second = await claim(tenant, program["id"], "bob", kim)

    assert refused(second) == [("code", "ALREADY_REFERRED")]
    [only] = await referrals(tenant)
    assert only["id"] == first["referral"]["id"]
    assert only["referrer"] == {"externalId": "jane"}


async def test_claiming_ones_own_code_is_refused(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]

    result = await claim(tenant, program["id"], "jane", code)

    assert refused(result) == [("code", "SELF_REFERRAL")]
    assert await referrals(tenant) == []


async def test_a_claim_after_the_claim_window_is_refused(tenant, session):
    program = await active_program(tenant)  # claim window: 14 days by default
    assert program["claimWindowDays"] == 14
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)
    await signed_up_days_ago(session, tenant, "bob", 15)

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("customerExternalId", "CLAIM_WINDOW_EXPIRED")]
    assert await referrals(tenant) == []


async def test_a_claim_near_the_end_of_the_claim_window_is_accepted(tenant, session):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)
    await signed_up_days_ago(session, tenant, "bob", 13.9)

    result = await claim(tenant, program["id"], "bob", code)

    assert result["userErrors"] == []
    assert result["referral"]["source"] == "CLAIM"


async def test_a_claim_window_of_zero_days_disables_claims(tenant):
    program = await active_program(tenant, claimWindowDays=0)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("customerExternalId", "CLAIM_WINDOW_EXPIRED")]
    assert await referrals(tenant) == []


async def test_an_unknown_customer_cannot_claim(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]

    result = await claim(tenant, program["id"], "nobody", code)

    assert refused(result) == [("customerExternalId", "NOT_FOUND")]
    assert await referrals(tenant) == []


async def test_a_code_from_another_program_cannot_be_claimed(tenant):
    p1 = await active_program(tenant, name="Friends")
    p2 = await active_program(tenant, name="Partners")
    code_in_p2 = (await code_for(tenant, p2["id"], "jane"))["code"]
    await signed_up(tenant)

    result = await claim(tenant, p1["id"], "bob", code_in_p2)

    assert refused(result) == [("code", "CODE_NOT_FOUND")]
    assert await referrals(tenant) == []


@pytest.mark.parametrize("code", ["NOSUCHCODE", "not a code!"])
async def test_an_unknown_code_cannot_be_claimed(tenant, code):
    program = await active_program(tenant)
    await code_for(tenant, program["id"], "jane")
    await signed_up(tenant)

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("code", "CODE_NOT_FOUND")]


async def test_another_shops_code_and_program_cannot_be_claimed(tenant, other_tenant):
    ours = await active_program(tenant)
    theirs = await active_program(other_tenant)
    their_code = (await code_for(other_tenant, theirs["id"], "jane"))["code"]
    our_code = (await code_for(tenant, ours["id"], "kim"))["code"]
    await signed_up(tenant)

    assert refused(await claim(tenant, ours["id"], "bob", their_code)) == [("code", "CODE_NOT_FOUND")]
    assert refused(await claim(tenant, theirs["id"], "bob", our_code)) == [("programId", "NOT_FOUND")]
    assert await referrals(tenant) == []
    assert await referrals(other_tenant) == []


async def test_a_deactivated_code_cannot_be_claimed(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await tenant.gql(ops.DEACTIVATE_CODE, {"code": code})
    await signed_up(tenant)

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("code", "CODE_INACTIVE")]
    assert await referrals(tenant) == []


async def test_nothing_can_be_claimed_in_a_paused_program(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)
    paused = await tenant.gql(ops.UPDATE_PROGRAM, {"id": program["id"], "input": {"status": "PAUSED"}})
    assert paused["updateProgram"]["program"]["status"] == "PAUSED"

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("programId", "PROGRAM_NOT_ACTIVE")]
    assert await referrals(tenant) == []


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"programId": "not-an-id"}, "programId", "INVALID_ID"),
        ({"customerExternalId": "bob\x00"}, "customerExternalId", "INVALID_INPUT"),
        ({"customerExternalId": ""}, "customerExternalId", "REQUIRED"),
        ({"code": "JANE\x00"}, "code", "INVALID_INPUT"),
        ({"code": "  "}, "code", "REQUIRED"),
    ],
    ids=["bad-program-id", "nul-in-customer", "empty-customer", "nul-in-code", "blank-code"],
)
async def test_refused_claim_input_is_a_user_error(tenant, change, field, code):
    program = await active_program(tenant)
    referral_code = (await code_for(tenant, program["id"], "jane"))["code"]
    await signed_up(tenant)
    valid = {"programId": program["id"], "customerExternalId": "bob", "code": referral_code}

    body = await tenant.raw(ops.CLAIM_REFERRAL, {"input": {**valid, **change}})

    assert "errors" not in body, body["errors"]
    assert refused(body["data"]["claimReferral"]) == [(field, code)]
    assert await referrals(tenant) == []


async def test_a_claim_leaves_actions_of_another_program_alone(tenant):
    p1 = await active_program(tenant, name="Friends")
    p2 = await active_program(tenant, name="Partners")
    code = (await code_for(tenant, p1["id"], "jane"))["code"]
    signup = await signed_up(tenant)
    partner_order = await bought(tenant, key="partner-order", programId=p2["id"])

    claimed = await claim(tenant, p1["id"], "bob", code)

    stored = await referral(tenant, claimed["referral"]["id"])
    assert [a["id"] for a in stored["actions"]] == [signup["id"]]
    assert partner_order["action"]["id"] not in [a["id"] for a in stored["actions"]]
    assert stored["status"] == "PENDING"


async def test_a_purchase_reported_a_little_late_as_the_first_thing_we_hear_still_counts_for_a_claim(tenant):
    # The shop's order webhook arrives two minutes after checkout, with the order's own time;
    # that call is also what creates the customer here.
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    ordered_at = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    purchase = await bought(tenant, occurredAt=ordered_at)

    claimed = await claim(tenant, program["id"], "bob", code)

    assert claimed["userErrors"] == []
    assert claimed["referral"]["status"] == "QUALIFIED"
    stored = await referral(tenant, claimed["referral"]["id"])
    assert [a["id"] for a in stored["actions"]] == [purchase["action"]["id"]]


async def test_a_customer_whose_first_known_order_is_older_than_the_claim_window_cannot_claim(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await bought(tenant, occurredAt=(datetime.now(UTC) - timedelta(days=20)).isoformat())

    result = await claim(tenant, program["id"], "bob", code)

    assert refused(result) == [("customerExternalId", "CLAIM_WINDOW_EXPIRED")]
    assert await referrals(tenant) == []
