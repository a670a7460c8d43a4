"""recordAction as a merchant's server calls it: codes typed at checkout, links, every way the
referral evidence can be refused (the action is still recorded), programs, idempotent retries,
concurrent retries, and input the API must refuse without writing anything."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from app.actions import service as actions_service
from app.db import create_session_factory
from app.referrals import customers
from app.referrals.models import Action, Click, Customer, Referral, ReferralStatus
from tests import graphql_ops as ops
from tests.scenarios import active_program, click, code_for, record

REFERRALS = """
query($programId: ID) {
  referrals(programId: $programId, first: 100) {
    edges { node {
      id status source
      program { id }
      code { code }
      referrer { externalId }
      referee { externalId }
      actions { id type attribution }
    } }
  }
}"""

ACTIONS = """
query($customerExternalId: String) {
  actions(customerExternalId: $customerExternalId, first: 100) {
    edges { node { id type idempotencyKey attribution amount { amount currency } referral { id } } }
  }
}"""

CUSTOMER = """query($externalId: String!) { customer(externalId: $externalId) { externalId } }"""


async def referrals(tenant, program_id: str | None = None) -> list[dict]:
    data = await tenant.gql(REFERRALS, {"programId": program_id})
    return [edge["node"] for edge in data["referrals"]["edges"]]


async def actions(tenant, customer: str | None = None) -> list[dict]:
    data = await tenant.gql(ACTIONS, {"customerExternalId": customer})
    return [edge["node"] for edge in data["actions"]["edges"]]


async def customer_exists(tenant, external_id: str) -> bool:
    body = await tenant.raw(CUSTOMER, {"externalId": external_id})
    if "errors" in body:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], body
        return False
    return body["data"]["customer"]["externalId"] == external_id


async def pause(tenant, program_id: str) -> None:
    data = await tenant.gql(ops.UPDATE_PROGRAM, {"id": program_id, "input": {"status": "PAUSED"}})
    assert data["updateProgram"]["userErrors"] == []
    assert data["updateProgram"]["program"]["status"] == "PAUSED"


async def shop_with_referrer(tenant, referrer: str = "jane") -> tuple[dict, str]:
    program = await active_program(tenant)
    code = await code_for(tenant, program["id"], referrer)
    return program, code["code"]


def assert_recorded_without_referral(result: dict, attribution: str) -> None:
    assert result["userErrors"] == []
    assert result["action"] is not None
    assert result["action"]["attribution"] == attribution
    assert result["referral"] is None
    assert result["replayed"] is False


# --- a code typed at checkout -------------------------------------------------------------


async def test_a_code_typed_at_checkout_refers_the_buyer_and_qualifies_at_once(tenant):
    program, code = await shop_with_referrer(tenant)

    result = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-1",
        orderId="1",
        amount=2500,
        currency="EUR",
        referralCode=code,
    )

    assert result["userErrors"] == []
    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["action"]["amount"] == {"amount": 2500, "currency": "EUR"}
    assert result["referral"]["status"] == "QUALIFIED"
    assert result["referral"]["source"] == "CODE"
    assert result["referral"]["referrer"] == {"externalId": "jane"}
    assert result["referral"]["referee"] == {"externalId": "bob"}
    [listed] = await referrals(tenant, program["id"])
    assert listed["id"] == result["referral"]["id"]
    assert listed["source"] == "CODE"
    assert listed["code"] == {"code": code}
    assert [a["id"] for a in listed["actions"]] == [result["action"]["id"]]


async def test_a_code_typed_in_lower_case_with_spaces_still_counts(tenant):
    _, code = await shop_with_referrer(tenant)

    result = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="signup-bob", referralCode=f"  {code.lower()} "
    )

    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["referral"]["status"] == "PENDING"
    assert result["referral"]["referrer"] == {"externalId": "jane"}


async def test_a_later_purchase_without_a_code_qualifies_the_signup_referral(tenant):
    _, code = await shop_with_referrer(tenant)
    signup = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=code)
    assert signup["referral"]["status"] == "PENDING"

    purchase = await record(tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o", amount=100, currency="USD")

    assert purchase["action"]["attribution"] == "LINKED_TO_REFERRAL"
    assert purchase["referral"]["id"] == signup["referral"]["id"]
    assert purchase["referral"]["status"] == "QUALIFIED"


# --- every way the evidence can be refused: the action is recorded all the same -----------


async def test_an_unknown_code_records_the_purchase_without_a_referral(tenant):
    await shop_with_referrer(tenant)

    result = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o",
        amount=100,
        currency="USD",
        referralCode="NOSUCHCODE",
    )

    assert_recorded_without_referral(result, "UNKNOWN_CODE")
    assert await referrals(tenant) == []
    assert [a["id"] for a in await actions(tenant, "bob")] == [result["action"]["id"]]


async def test_a_code_that_cannot_be_a_code_is_just_unknown(tenant):
    await shop_with_referrer(tenant)

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode="10% OFF!")

    assert_recorded_without_referral(result, "UNKNOWN_CODE")
    assert await referrals(tenant) == []


async def test_another_shops_code_is_unknown_here(tenant, other_tenant):
    await shop_with_referrer(tenant)
    _, their_code = await shop_with_referrer(other_tenant, "theirs")

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=their_code)

    assert_recorded_without_referral(result, "UNKNOWN_CODE")
    assert await referrals(tenant) == []
    assert await referrals(other_tenant) == []


async def test_a_deactivated_code_no_longer_refers(tenant):
    _, code = await shop_with_referrer(tenant)
    deactivated = await tenant.gql(ops.DEACTIVATE_CODE, {"code": code})
    assert deactivated["deactivateReferralCode"]["referralCode"]["active"] is False

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=code)

    assert_recorded_without_referral(result, "INACTIVE_CODE")
    assert await referrals(tenant) == []


async def test_the_action_stores_the_referral_it_created_as_its_response_says(tenant, session):
    """Read back from the database, not from the response: an action that created a referral
    is stored pointing at it (on PostgreSQL the referral's INSERT writes that in the same
    statement), with the click of a link; one whose referral the fraud check then blocked is
    stored FRAUD_BLOCKED; a later action of an existing pair is linked to it."""
    from tests.fraud import helpers as fraud

    program, code = await shop_with_referrer(tenant)
    token = (await click(tenant, code, device_id="dev-bob"))["attributionToken"]
    by_link = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s-bob", attributionToken=token)
    by_code = await record(
        tenant, type="PURCHASE", customerExternalId="ann", idempotencyKey="o-ann", amount=900, currency="USD", referralCode=code
    )
    linked = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o-bob", amount=900, currency="USD", referralCode=code
    )
    assert linked["action"]["attribution"] == "LINKED_TO_REFERRAL"
    await fraud.signup(tenant, "jane", email="jane.doe@gmail.com")
    blocked = await fraud.signup(tenant, "jane-2", code=code, email="janedoe+promo@googlemail.com")
    assert blocked["action"]["attribution"] == "FRAUD_BLOCKED"

    rows = (
        await session.execute(
            select(Action.idempotency_key, Action.attribution_status, Action.referral_id, Action.program_id, Action.click_id)
        )
    ).all()
    stored = {
        key: (status.value, str(referral), str(program_id), click_id is not None)
        for key, status, referral, program_id, click_id in rows
    }
    assert stored["s-bob"] == ("REFERRAL_CREATED", by_link["referral"]["id"], program["id"], True)
    assert stored["o-ann"] == ("REFERRAL_CREATED", by_code["referral"]["id"], program["id"], False)
    assert stored["o-bob"] == ("LINKED_TO_REFERRAL", by_link["referral"]["id"], program["id"], False)
    assert stored["signup-jane-2"] == ("FRAUD_BLOCKED", blocked["referral"]["id"], program["id"], False)
    rejected = (
        await session.execute(select(Referral.status).where(Referral.id == uuid.UUID(blocked["referral"]["id"])))
    ).scalar_one()
    assert rejected == ReferralStatus.REJECTED


async def test_an_unknown_attribution_token_records_the_signup_without_a_referral(tenant):
    await shop_with_referrer(tenant)

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken="at_forged")

    assert_recorded_without_referral(result, "UNKNOWN_TOKEN")
    assert await referrals(tenant) == []


async def test_another_shops_attribution_token_is_unknown_here(tenant, other_tenant):
    await shop_with_referrer(tenant)
    _, their_code = await shop_with_referrer(other_tenant, "theirs")
    their_click = await click(other_tenant, their_code)

    result = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken=their_click["attributionToken"]
    )

    assert_recorded_without_referral(result, "UNKNOWN_TOKEN")
    assert await referrals(tenant) == []
    assert await referrals(other_tenant) == []


async def test_a_click_older_than_the_attribution_window_no_longer_refers(tenant, session):
    _, code = await shop_with_referrer(tenant)
    token = (await click(tenant, code))["attributionToken"]
    long_ago = datetime.now(UTC) - timedelta(days=31)
    await session.execute(
        update(Click)
        .where(Click.attribution_token == token)
        .values(created_at=long_ago, expires_at=long_ago + timedelta(days=30))
    )
    await session.commit()

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken=token)

    assert_recorded_without_referral(result, "EXPIRED_TOKEN")
    assert await referrals(tenant) == []


async def test_a_signup_within_the_attribution_window_is_still_referred(tenant, session):
    _, code = await shop_with_referrer(tenant)
    token = (await click(tenant, code))["attributionToken"]
    clicked = datetime.now(UTC) - timedelta(days=29)
    await session.execute(
        update(Click).where(Click.attribution_token == token).values(created_at=clicked, expires_at=clicked + timedelta(days=30))
    )
    await session.commit()

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken=token)

    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["referral"]["source"] == "LINK"


async def test_a_code_from_a_paused_program_no_longer_refers(tenant):
    program, code = await shop_with_referrer(tenant)
    await pause(tenant, program["id"])

    result = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o", amount=100, currency="USD", referralCode=code
    )

    assert_recorded_without_referral(result, "PROGRAM_NOT_ACTIVE")
    assert await referrals(tenant) == []


async def test_a_referrer_using_their_own_code_is_not_referred(tenant):
    _, code = await shop_with_referrer(tenant, "jane")

    result = await record(
        tenant, type="PURCHASE", customerExternalId="jane", idempotencyKey="o", amount=100, currency="USD", referralCode=code
    )

    assert_recorded_without_referral(result, "SELF_REFERRAL")
    assert await referrals(tenant) == []


async def test_a_second_referrers_code_does_not_steal_an_existing_referral(tenant):
    program, jane_code = await shop_with_referrer(tenant, "jane")
    kim_code = (await code_for(tenant, program["id"], "kim"))["code"]
    signup = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=jane_code)
    assert signup["action"]["attribution"] == "REFERRAL_CREATED"

    purchase = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o",
        amount=100,
        currency="USD",
        referralCode=kim_code,
    )

    assert purchase["userErrors"] == []
    assert purchase["action"]["attribution"] == "ALREADY_REFERRED"
    assert purchase["referral"]["id"] == signup["referral"]["id"]
    assert purchase["referral"]["referrer"] == {"externalId": "jane"}
    assert purchase["referral"]["status"] == "QUALIFIED"
    [only] = await referrals(tenant)
    assert only["referrer"] == {"externalId": "jane"}
    assert [a["id"] for a in only["actions"]] == [signup["action"]["id"], purchase["action"]["id"]]


async def test_a_customer_who_bought_before_cannot_be_referred_afterwards(tenant):
    _, code = await shop_with_referrer(tenant)
    first = await record(tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o1", amount=100, currency="USD")
    assert first["action"]["attribution"] == "NONE"

    result = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o2", amount=100, currency="USD", referralCode=code
    )

    assert_recorded_without_referral(result, "EXISTING_CUSTOMER")
    assert await referrals(tenant) == []
    assert len(await actions(tenant, "bob")) == 2


async def test_a_customer_who_only_signed_up_before_can_still_be_referred(tenant):
    _, code = await shop_with_referrer(tenant)
    await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s")

    result = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o", amount=100, currency="USD", referralCode=code
    )

    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["referral"]["status"] == "QUALIFIED"


async def test_a_refund_carrying_a_code_never_starts_a_referral(tenant):
    _, code = await shop_with_referrer(tenant)

    result = await record(
        tenant, type="REFUND", customerExternalId="bob", idempotencyKey="r", amount=100, currency="USD", referralCode=code
    )

    assert_recorded_without_referral(result, "NOT_ELIGIBLE_ACTION")
    assert result["action"]["type"] == "REFUND"
    assert await referrals(tenant) == []


# --- link versus code ---------------------------------------------------------------------


async def test_the_link_a_friend_clicked_wins_over_a_code_typed_at_signup(tenant):
    program, jane_code = await shop_with_referrer(tenant, "jane")
    kim_code = (await code_for(tenant, program["id"], "kim"))["code"]
    token = (await click(tenant, jane_code))["attributionToken"]

    result = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken=token, referralCode=kim_code
    )

    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["referral"]["source"] == "LINK"
    assert result["referral"]["referrer"] == {"externalId": "jane"}
    [only] = await referrals(tenant)
    assert only["code"] == {"code": jane_code}


async def test_an_unknown_token_falls_back_to_the_typed_code(tenant):
    _, code = await shop_with_referrer(tenant)

    result = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", attributionToken="at_forged", referralCode=code
    )

    assert result["action"]["attribution"] == "REFERRAL_CREATED"
    assert result["referral"]["source"] == "CODE"
    assert result["referral"]["referrer"] == {"externalId": "jane"}


# --- several programs ---------------------------------------------------------------------


async def test_a_customer_referred_in_one_program_can_be_referred_once_in_another(tenant):
    p1 = await active_program(tenant, name="Friends")
    p2 = await active_program(tenant, name="Partners")
    jane_p1 = (await code_for(tenant, p1["id"], "jane"))["code"]
    lee_p1 = (await code_for(tenant, p1["id"], "lee"))["code"]
    kim_p2 = (await code_for(tenant, p2["id"], "kim"))["code"]

    first = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=jane_p1)
    second = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o1", amount=100, currency="USD", referralCode=kim_p2
    )
    third = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o2", amount=100, currency="USD", referralCode=lee_p1
    )

    assert first["action"]["attribution"] == "REFERRAL_CREATED"
    assert second["action"]["attribution"] == "REFERRAL_CREATED"
    assert second["referral"]["id"] != first["referral"]["id"]
    assert second["referral"]["status"] == "QUALIFIED"
    assert third["action"]["attribution"] == "ALREADY_REFERRED"
    [in_p1] = await referrals(tenant, p1["id"])
    [in_p2] = await referrals(tenant, p2["id"])
    assert (in_p1["referrer"], in_p1["referee"]) == ({"externalId": "jane"}, {"externalId": "bob"})
    assert (in_p2["referrer"], in_p2["referee"]) == ({"externalId": "kim"}, {"externalId": "bob"})
    assert in_p2["program"] == {"id": p2["id"]}


async def test_program_id_limits_attribution_to_that_program(tenant):
    p1 = await active_program(tenant, name="Friends")
    p2 = await active_program(tenant, name="Partners")
    jane_p1 = (await code_for(tenant, p1["id"], "jane"))["code"]

    elsewhere = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s1", referralCode=jane_p1, programId=p2["id"]
    )
    assert_recorded_without_referral(elsewhere, "UNKNOWN_CODE")
    assert await referrals(tenant) == []

    here = await record(
        tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s2", referralCode=jane_p1, programId=p1["id"]
    )
    assert here["action"]["attribution"] == "REFERRAL_CREATED"
    assert [r["id"] for r in await referrals(tenant, p1["id"])] == [here["referral"]["id"]]


async def test_a_purchase_for_another_program_does_not_qualify_the_referral(tenant):
    p1 = await active_program(tenant, name="Friends")
    p2 = await active_program(tenant, name="Partners")
    jane_p1 = (await code_for(tenant, p1["id"], "jane"))["code"]
    signup = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", referralCode=jane_p1)

    purchase = await record(
        tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o", amount=100, currency="USD", programId=p2["id"]
    )

    assert purchase["action"]["attribution"] == "NONE"
    assert purchase["referral"] is None
    [referral] = await referrals(tenant, p1["id"])
    assert referral["id"] == signup["referral"]["id"]
    assert referral["status"] == "PENDING"


async def test_another_shops_program_id_is_refused(tenant, other_tenant):
    await shop_with_referrer(tenant)
    theirs = await active_program(other_tenant)

    result = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="s", programId=theirs["id"])

    assert result["action"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [("programId", "NOT_FOUND")]
    assert await actions(tenant) == []
    assert not await customer_exists(tenant, "bob")


# --- idempotency --------------------------------------------------------------------------


async def test_a_retried_purchase_is_recorded_once(tenant):
    _, code = await shop_with_referrer(tenant)
    order = dict(
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-1001",
        orderId="1001",
        amount=4999,
        currency="USD",
        referralCode=code,
        metadata={"items": 2, "coupon": None},
        context={"email": "bob@example.com", "ip": "198.51.100.4"},
    )
    first = await record(tenant, **order)
    assert first["replayed"] is False

    retry = await record(tenant, **order)

    assert retry["userErrors"] == []
    assert retry["replayed"] is True
    assert retry["action"] == first["action"]
    assert retry["referral"] == first["referral"]
    assert [a["id"] for a in await actions(tenant)] == [first["action"]["id"]]
    assert len(await referrals(tenant)) == 1


async def test_a_retry_that_types_the_code_or_the_time_differently_is_still_a_retry(tenant):
    _, code = await shop_with_referrer(tenant)
    first = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-7",
        amount=100,
        currency="USD",
        referralCode=code,
        occurredAt="2026-01-15T12:00:00+02:00",
    )

    retry = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-7",
        amount=100,
        currency="usd",
        referralCode=f" {code.lower()} ",
        occurredAt="2026-01-15T10:00:00+00:00",
    )

    assert retry["userErrors"] == []
    assert retry["replayed"] is True
    assert retry["action"]["id"] == first["action"]["id"]


async def test_an_over_long_code_or_token_still_records_the_purchase(tenant):
    await shop_with_referrer(tenant)

    with_code = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o-1",
        amount=100,
        currency="USD",
        referralCode="X" * 100,
    )
    with_token = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o-2",
        amount=100,
        currency="USD",
        attributionToken="at_" + "x" * 200,
    )

    assert with_code["userErrors"] == [] and with_code["action"]["attribution"] == "UNKNOWN_CODE"
    assert with_token["userErrors"] == [] and with_token["action"]["attribution"] == "UNKNOWN_TOKEN"
    assert len(await actions(tenant)) == 2


async def test_a_retry_after_the_referral_was_qualified_replays_the_first_answer(tenant):
    _, code = await shop_with_referrer(tenant)
    signup = dict(type="SIGNUP", customerExternalId="bob", idempotencyKey="signup-bob", referralCode=code)
    first = await record(tenant, **signup)
    await record(tenant, type="PURCHASE", customerExternalId="bob", idempotencyKey="o", amount=1, currency="USD")

    retry = await record(tenant, **signup)

    assert retry["replayed"] is True
    assert retry["action"]["id"] == first["action"]["id"]
    assert retry["action"]["attribution"] == "REFERRAL_CREATED"
    assert retry["referral"]["id"] == first["referral"]["id"]
    assert len(await actions(tenant)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"customerExternalId": "carol"},
        {"amount": 5000},
        {"type": "SUBSCRIPTION_STARTED"},
        {"referralCode": None},
    ],
    ids=["other-customer", "other-amount", "other-type", "without-code"],
)
async def test_reusing_a_key_for_a_different_action_is_refused_and_writes_nothing(tenant, change):
    _, code = await shop_with_referrer(tenant)
    order = dict(
        type="PURCHASE", customerExternalId="bob", idempotencyKey="order-1", amount=4999, currency="USD", referralCode=code
    )
    first = await record(tenant, **order)

    conflict = await record(tenant, **{**order, **change})

    assert conflict["action"] is None
    assert conflict["referral"] is None
    assert [(e["field"], e["code"]) for e in conflict["userErrors"]] == [("idempotencyKey", "IDEMPOTENCY_CONFLICT")]
    assert [a["id"] for a in await actions(tenant)] == [first["action"]["id"]]
    assert [r["id"] for r in await referrals(tenant)] == [first["referral"]["id"]]
    assert not await customer_exists(tenant, "carol")


async def test_two_shops_may_use_the_same_idempotency_key(tenant, other_tenant):
    ours = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="signup-1")
    theirs = await record(other_tenant, type="SIGNUP", customerExternalId="alice", idempotencyKey="signup-1")

    assert ours["replayed"] is False and theirs["replayed"] is False
    assert ours["action"]["id"] != theirs["action"]["id"]
    assert [a["id"] for a in await actions(tenant)] == [ours["action"]["id"]]
    assert [a["id"] for a in await actions(other_tenant)] == [theirs["action"]["id"]]
    assert not await customer_exists(tenant, "alice")


# --- concurrency (PostgreSQL: SQLite serialises writers) ----------------------------------


@pytest.mark.postgresql_only
async def test_twenty_concurrent_retries_of_one_purchase_record_it_once(tenant, backend):
    _, code = await shop_with_referrer(tenant)
    order = dict(
        type="PURCHASE", customerExternalId="bob", idempotencyKey="order-7", amount=1200, currency="USD", referralCode=code
    )

    results = await asyncio.gather(*(record(tenant, **order) for _ in range(20)))

    assert all(r["userErrors"] == [] for r in results)
    assert len({r["action"]["id"] for r in results}) == 1
    assert len({r["referral"]["id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 19
    assert len(await actions(tenant)) == 1
    [referral] = await referrals(tenant)
    assert referral["status"] == "QUALIFIED"


@pytest.mark.postgresql_only
@pytest.mark.parametrize("known_customer", [False, True], ids=["new-customer", "known-customer"])
async def test_twenty_concurrent_signups_of_one_referee_make_one_referral(tenant, backend, known_customer):
    _, code = await shop_with_referrer(tenant)
    if known_customer:  # the referee exists already, so nothing serialises the calls before the referral
        created = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "bob"}})
        assert created["upsertCustomer"]["userErrors"] == []

    results = await asyncio.gather(
        *(
            record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey=f"signup-{i}", referralCode=code)
            for i in range(20)
        )
    )

    assert all(r["userErrors"] == [] for r in results)
    assert len({r["action"]["id"] for r in results}) == 20
    assert len({r["referral"]["id"] for r in results}) == 1
    assert sorted(r["action"]["attribution"] for r in results) == ["LINKED_TO_REFERRAL"] * 19 + ["REFERRAL_CREATED"]
    [referral] = await referrals(tenant)
    assert len(referral["actions"]) == 20


@pytest.mark.postgresql_only
async def test_an_action_whose_new_customer_another_call_is_creating_names_that_customer(tenant, db, backend):
    """On PostgreSQL the customer's INSERT and the action's are one statement. When another
    transaction is inserting the same new customer, that INSERT waits for it; once it commits,
    the statement's snapshot (taken before) shows no customer to name, and the action is
    recorded by the two statements instead, for the customer the other call created."""
    factory = create_session_factory(db)
    async with factory() as first, factory() as second:
        created = await customers.ensure_customer(first, merchant_id=tenant.id, external_id="bob", email="bob@example.com")
        signup = actions_service.ActionInput(
            type="SIGNUP", customer_external_id="bob", idempotency_key="signup-bob", customer_name="Bob"
        )
        recording = asyncio.create_task(actions_service.record_action(second, merchant_id=tenant.id, data=signup))
        await asyncio.sleep(0.5)
        assert not recording.done()  # waiting for `first`'s customer
        await first.commit()
        recorded = await recording
        await second.commit()

    assert recorded.action.customer_id == created.id
    [listed] = await actions(tenant, "bob")
    assert listed["id"] == str(recorded.action.id)
    async with factory() as session:
        [(email, name)] = (
            await session.execute(select(Customer.email, Customer.name).where(Customer.external_id == "bob"))
        ).all()
    assert (email, name) == ("bob@example.com", "Bob")  # the action filled in what the first call left blank


# --- refused input: a user error, never a top-level error, and nothing written ------------


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"amount": 100, "currency": None}, "currency", "REQUIRED"),
        ({"amount": None, "currency": "USD"}, "amount", "REQUIRED"),
        ({"currency": "XYZ"}, "currency", "INVALID_CURRENCY"),
        ({"currency": "US"}, "currency", "INVALID_CURRENCY"),
        ({"amount": -1}, "amount", "INVALID_AMOUNT"),
        ({"occurredAt": "FUTURE"}, "occurredAt", "INVALID_INPUT"),
        ({"occurredAt": "2025-01-15T10:00:00"}, "occurredAt", "INVALID_INPUT"),
        ({"type": "sign up!"}, "type", "INVALID_INPUT"),
        ({"type": ""}, "type", "REQUIRED"),
        ({"idempotencyKey": ""}, "idempotencyKey", "REQUIRED"),
        ({"idempotencyKey": "k" * 256}, "idempotencyKey", "TOO_LONG"),
        ({"customerExternalId": ""}, "customerExternalId", "REQUIRED"),
        ({"customerExternalId": "   "}, "customerExternalId", "REQUIRED"),
        ({"customerExternalId": "bob\x00"}, "customerExternalId", "INVALID_INPUT"),
        ({"idempotencyKey": "order\x001"}, "idempotencyKey", "INVALID_INPUT"),
        ({"orderId": "1\x00"}, "orderId", "INVALID_INPUT"),
        ({"referralCode": "JANE\x00"}, "referralCode", "INVALID_INPUT"),
        ({"metadata": ["not", "an", "object"]}, "metadata", "INVALID_INPUT"),
        ({"metadata": "text"}, "metadata", "INVALID_INPUT"),
        ({"metadata": {"note": "a\x00b"}}, "metadata", "INVALID_INPUT"),
        ({"context": {"email": "not-an-email"}}, "context.email", "INVALID_EMAIL"),
        ({"context": {"shippingAddress": {"city": "Paris\x00"}}}, "shippingAddress.city", "INVALID_INPUT"),
        ({"programId": "not-an-id"}, "programId", "INVALID_ID"),
    ],
    ids=[
        "amount-without-currency",
        "currency-without-amount",
        "unknown-currency",
        "short-currency",
        "negative-amount",
        "occurred-in-the-future",
        "occurred-without-timezone",
        "bad-type",
        "empty-type",
        "empty-idempotency-key",
        "long-idempotency-key",
        "empty-customer",
        "blank-customer",
        "nul-in-customer",
        "nul-in-key",
        "nul-in-order-id",
        "nul-in-code",
        "metadata-list",
        "metadata-string",
        "nul-in-metadata",
        "bad-email",
        "nul-in-address",
        "bad-program-id",
    ],
)
async def test_refused_input_is_a_user_error_and_writes_nothing(tenant, change, field, code):
    _, referral_code = await shop_with_referrer(tenant)
    if change.get("occurredAt") == "FUTURE":
        change = {**change, "occurredAt": _in_an_hour()}
    valid = dict(
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="order-1",
        amount=100,
        currency="USD",
        referralCode=referral_code,
        context={"email": "bob@example.com"},
    )

    body = await tenant.raw(ops.RECORD_ACTION, {"input": {**valid, **change}})

    assert "errors" not in body, body["errors"]
    result = body["data"]["recordAction"]
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [(field, code)]
    assert result["action"] is None
    assert result["referral"] is None
    assert await actions(tenant) == []
    assert await referrals(tenant) == []
    assert not await customer_exists(tenant, "bob")
    # the same call with valid input goes through: the refusal was about that field alone
    assert (await record(tenant, **valid))["action"]["attribution"] == "REFERRAL_CREATED"


async def test_a_purchase_reported_late_keeps_the_time_it_happened_in_any_timezone(tenant):
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    result = await record(
        tenant,
        type="PURCHASE",
        customerExternalId="bob",
        idempotencyKey="o",
        amount=0,
        currency="usd",
        occurredAt=occurred.astimezone(timezone(timedelta(hours=2))).isoformat(),
    )

    assert result["userErrors"] == []
    assert datetime.fromisoformat(result["action"]["occurredAt"]) == occurred
    assert result["action"]["amount"] == {"amount": 0, "currency": "USD"}


async def test_a_custom_action_type_is_recorded_in_upper_case(tenant):
    result = await record(tenant, type="newsletter_signup", customerExternalId="bob", idempotencyKey="n")

    assert result["userErrors"] == []
    assert result["action"]["type"] == "NEWSLETTER_SIGNUP"
    assert [a["type"] for a in await actions(tenant, "bob")] == ["NEWSLETTER_SIGNUP"]
