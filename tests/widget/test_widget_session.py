"""widgetSession: the share panel of a customer signed by the shop's server, with the
publishable key. Forged, expired or other merchants' signatures get a typed error and never
anyone's data; the panel shows the customer's own code, referrals and rewards."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.db import create_session_factory
from app.referrals.models import Customer
from app.widget.models import WidgetSettings
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.fraud import helpers as fraud
from tests.rewards.helpers import create_rule, credit_rule
from tests.scenarios import PAY_AT_SIGNUP, active_program, click, code_for
from tests.widget.helpers import SET_PROGRAM_WIDGET, open_session, signed, widget_secret

DAY = 24 * 3600


def refused(payload: dict, code: str, field: str) -> None:
    assert payload["session"] is None, payload
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload


async def customers_named(tenant, external_id: str) -> int:
    async with create_session_factory(tenant.engine)() as session:
        rows = await session.scalars(
            select(Customer).where(Customer.merchant_id == tenant.id, Customer.external_id == external_id)
        )
        return len(rows.all())


async def test_a_signed_customer_gets_their_code_issued_on_first_use_and_the_same_one_after(tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    first = await open_session(tenant, signed(secret, "jane"))
    assert first["userErrors"] == []
    session = first["session"]
    assert session["shareUrl"] == f"https://shop.example/?ref={session['code']}"
    assert (session["successfulReferrals"], session["pendingReferrals"], session["rewards"]) == (0, 0, [])
    assert session["program"] == {
        "id": program["id"],
        "name": program["name"],
        "texts": [],
        "colors": {"primary": None, "background": None, "text": None},
    }

    again = await open_session(tenant, signed(secret, "jane"))
    assert again["session"]["code"] == session["code"]
    issued = await code_for(tenant, program["id"], "jane")  # the merchant's server sees the same code
    assert issued["code"] == session["code"]


async def test_the_panel_counts_the_customers_own_referrals_and_sums_their_rewards(tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    await create_rule(tenant, program["id"], **credit_rule())
    await create_rule(
        tenant,
        program["id"],
        **credit_rule(name="Points later", kind="POINTS", amount=500, currency=None, conditions={"holdDays": 30}),
    )
    secret = await widget_secret(tenant)
    code = (await open_session(tenant, signed(secret, "jane")))["session"]["code"]
    for friend in ("bob", "carol", "dan"):
        await fraud.signup(tenant, friend, code=code, email=f"{friend}@friends.example")
    await fraud.purchase(tenant, "bob", "order-bob")
    await fraud.purchase(tenant, "carol", "order-carol")
    await fraud.signup(tenant, "erin", email="erin@friends.example")  # not jane's referral
    other = await code_for(tenant, program["id"], "zoe")
    await fraud.signup(tenant, "finn", code=other["code"])
    await fraud.purchase(tenant, "finn", "order-finn")  # zoe's, not jane's

    session = (await open_session(tenant, signed(secret, "jane")))["session"]
    assert (session["successfulReferrals"], session["pendingReferrals"]) == (2, 1)
    assert session["rewards"] == [
        {"kind": "CREDIT", "unit": "USD", "count": 2, "earned": 2000, "pending": 0},
        {"kind": "POINTS", "unit": "POINTS", "count": 2, "earned": 0, "pending": 1000},
    ]


async def test_program_texts_and_colours_come_with_the_session(tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    widget = {
        "texts": [
            {"locale": "en", "title": "Give $10, get $10", "shareMessage": "Get $10 off at Shop A"},
            {"locale": "ar", "title": "امنح 10 دولارات واحصل على 10"},
        ],
        "colors": {"primary": "#0B6E4F", "background": "#ffffff"},
    }
    data = await tenant.gql(SET_PROGRAM_WIDGET, {"programId": program["id"], "input": widget})
    assert data["setProgramWidget"]["userErrors"] == []
    session = (await open_session(tenant, signed(await widget_secret(tenant), "jane")))["session"]
    assert session["program"]["texts"] == [
        {"locale": "ar", "title": "امنح 10 دولارات واحصل على 10", "description": None, "shareMessage": None},
        {"locale": "en", "title": "Give $10, get $10", "description": None, "shareMessage": "Get $10 off at Shop A"},
    ]
    assert session["program"]["colors"] == {"primary": "#0b6e4f", "background": "#ffffff", "text": None}


async def test_forged_signatures_get_a_typed_error_and_write_nothing(tenant, other_tenant):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    b_secret = await widget_secret(other_tenant)
    now = int(time.time())
    genuine = signed(secret, "jane", now)
    forgeries = {
        "guessed secret": signed("wsec_guess", "mallory", now),
        "another merchant's secret": signed(b_secret, "mallory", now),
        "jane's signature for mallory": {**genuine, "customer": "mallory"},
        "jane's signature, another time": {**signed(secret, "mallory", now), "timestamp": now - 60},
        "empty": {"customer": "mallory", "timestamp": now, "signature": "0" * 64},
        "upper-case look-alike": {**signed(secret, "mallory", now), "customer": "MALLORY"},
    }
    for forged in forgeries.values():
        refused(await open_session(tenant, forged), "SIGNATURE_INVALID", "signature")
    assert await customers_named(tenant, "mallory") == 0
    assert await customers_named(tenant, "MALLORY") == 0


async def test_a_signature_is_good_for_24_hours_and_not_from_the_future(tenant):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    now = int(time.time())
    assert (await open_session(tenant, signed(secret, "jane", now - DAY + 120)))["userErrors"] == []
    assert (await open_session(tenant, signed(secret, "jane", now + 60)))["userErrors"] == []  # a shop clock a minute ahead
    for timestamp in (now - DAY - 1, now + 3600, -5, 2**52):
        refused(await open_session(tenant, signed(secret, "jane", timestamp)), "SIGNATURE_EXPIRED", "timestamp")


async def test_without_a_widget_secret_no_signature_is_accepted(tenant):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    refused(await open_session(tenant, signed("", "jane")), "SIGNATURE_INVALID", "signature")


async def test_a_rotated_secret_keeps_working_for_the_overlap_and_then_stops(tenant):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    old = await widget_secret(tenant)
    new = await widget_secret(tenant, overlap_hours=24)
    assert (await open_session(tenant, signed(old, "jane")))["userErrors"] == []
    assert (await open_session(tenant, signed(new, "jane")))["userErrors"] == []

    async with system_connection(tenant.engine) as connection:  # the overlap has passed
        await connection.execute(
            update(WidgetSettings).values(previous_secret_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    refused(await open_session(tenant, signed(old, "jane")), "SIGNATURE_INVALID", "signature")
    assert (await open_session(tenant, signed(new, "jane")))["userErrors"] == []

    newest = await widget_secret(tenant, overlap_hours=0)  # a leaked secret: replace it at once
    refused(await open_session(tenant, signed(new, "jane")), "SIGNATURE_INVALID", "signature")
    assert (await open_session(tenant, signed(newest, "jane")))["userErrors"] == []


async def test_the_secret_is_shown_once_and_stored_encrypted(tenant):
    secret = await widget_secret(tenant)
    assert secret.startswith("wsec_") and len(secret) > 40
    settings = await tenant.gql("{ widgetSettings { secretConfigured secretLast4 secretCreatedAt } }")
    assert settings["widgetSettings"]["secretConfigured"] is True
    assert settings["widgetSettings"]["secretLast4"] == secret[-4:]
    async with create_session_factory(tenant.engine)() as session:
        row = await session.scalar(select(WidgetSettings).where(WidgetSettings.merchant_id == tenant.id))
    assert secret not in repr(row.__dict__) and secret[5:] not in (row.secret_encrypted or "")
    log = await tenant.gql("{ auditLog(first: 10) { edges { node { action details } } } }")
    [entry] = [e["node"] for e in log["auditLog"]["edges"]]
    assert entry["action"] == "widget.secret_rotated" and secret not in str(entry["details"])


async def test_which_program_the_panel_shows(tenant):
    secret = await widget_secret(tenant)
    refused(await open_session(tenant, signed(secret, "jane")), "PROGRAM_NOT_ACTIVE", "programId")
    first = await active_program(tenant, clearance=PAY_AT_SIGNUP, name="Friends")
    assert (await open_session(tenant, signed(secret, "jane")))["session"]["program"]["id"] == first["id"]
    second = await active_program(tenant, clearance=PAY_AT_SIGNUP, name="Partners")
    refused(await open_session(tenant, signed(secret, "jane")), "REQUIRED", "programId")
    named = await open_session(tenant, signed(secret, "jane"), programId=second["id"])
    assert named["session"]["program"]["id"] == second["id"]
    paused = await tenant.gql(ops.UPDATE_PROGRAM, {"id": second["id"], "input": {"status": "PAUSED"}})
    assert paused["updateProgram"]["userErrors"] == []
    refused(await open_session(tenant, signed(secret, "jane"), programId=second["id"]), "PROGRAM_NOT_ACTIVE", "programId")
    refused(await open_session(tenant, signed(secret, "jane"), programId="not-an-id"), "INVALID_ID", "programId")


async def test_bad_input_gets_typed_errors(tenant):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    refused(await open_session(tenant, {**signed(secret, "jane"), "signature": "a" * 500}), "TOO_LONG", "signature")
    refused(await open_session(tenant, signed(secret, " ")), "REQUIRED", "customerExternalId")
    refused(await open_session(tenant, signed(secret, "jane"), deviceId="d" * 300), "TOO_LONG", "deviceId")
    refused(await open_session(tenant, signed(secret, "jane\x00")), "INVALID_INPUT", "customerExternalId")
    body = await tenant.raw(
        'mutation($t: BigInt!) { widgetSession(customerExternalId: "jane", timestamp: $t, signature: "x") { session { code } } }',
        {"t": "soon"},
        key=tenant.publishable_key,
    )
    assert body["data"] is None and "BigInt" in body["errors"][0]["message"]


async def test_the_device_that_opened_the_panel_is_evidence_when_it_clicks_the_link(tenant):
    await fraud.program_with_credit(tenant)
    secret = await widget_secret(tenant)
    code = (await open_session(tenant, signed(secret, "jane"), deviceId="dev-jane", fingerprint="fp1_aa"))["session"]["code"]
    tracked = await click(tenant, code, device_id="dev-jane")  # jane, in her own browser
    alias = await fraud.record(
        tenant,
        type="SIGNUP",
        customerExternalId="jane-alias",
        idempotencyKey="s-alias",
        attributionToken=tracked["attributionToken"],
    )
    [decision] = await fraud.decisions(tenant, alias["referral"]["id"])
    assert {"same_device", "same_ip_user_agent"} <= fraud.fired(decision)  # her device, her network and browser
    assert decision["outcome"] == "BLOCK" and alias["referral"]["status"] == "REJECTED"


async def test_opening_the_panel_costs_a_fixed_handful_of_statements(tenant, backend, count_statements):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    await open_session(tenant, signed(secret, "jane"))  # the code exists from here on
    with count_statements() as counter:
        opened = await open_session(tenant, signed(secret, "jane"), deviceId="dev-jane", fingerprint="fp1_aa")
    assert opened["userErrors"] == []
    # key, widget secret, program, code, sightings, the new device's re-screening job (issue 13;
    # on PostgreSQL written by the sightings' statement), referral counts, program widget, reward totals
    queries = [s for s in counter.statements if not s.startswith("BEGIN")]
    assert len(queries) == {"postgresql": 8, "sqlite": 9}[backend], queries


@pytest.mark.postgresql_only
async def test_concurrent_first_sessions_of_a_new_customer_make_one_customer_and_one_code(tenant, backend):
    await active_program(tenant, clearance=PAY_AT_SIGNUP)
    secret = await widget_secret(tenant)
    results = await asyncio.gather(*(open_session(tenant, signed(secret, "newcomer")) for _ in range(10)))
    assert all(r["userErrors"] == [] for r in results), results
    assert len({r["session"]["code"] for r in results}) == 1
    assert await customers_named(tenant, "newcomer") == 1
