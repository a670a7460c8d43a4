"""Business referrals: a referrer submits a lead from the widget's signed session, the
merchant's staff move it through its statuses (every step checked and audited), the
referral fee is granted once at WON (also under concurrent WONs), held, then available for
payouts; duplicates are flagged; `lead.status_changed` carries only what the referrer may see."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.webhooks.models import WebhookDelivery
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.rewards.helpers import assert_ledger_consistent, balance, days, release_due
from tests.scenarios import active_program, code_for
from tests.webhooks.conftest import create_endpoint
from tests.widget.helpers import signed, widget_secret


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def program_with_fee(tenant, **fee: Any) -> dict[str, Any]:
    program = await active_program(tenant)
    for name in ("jane", "ken"):
        await code_for(tenant, program["id"], name)
    data = await tenant.gql(
        ops.SET_LEAD_SETTINGS,
        {
            "programId": program["id"],
            "input": {"kind": "COMMISSION", "feeAmount": 50_000, "currency": "USD", "holdDays": 14, **fee},
        },
    )
    assert data["setLeadSettings"]["userErrors"] == []
    return program


async def submit(tenant, program_id: str, referrer: str = "jane", *, secret: str | None = None, **values: Any) -> dict[str, Any]:
    """From the widget (publishable key + signed customer) when `secret` is given, else with the secret key."""
    input = {"programId": program_id, "customerExternalId": referrer, "company": "Acme GmbH", **values}
    if secret is not None:
        identity = signed(secret, referrer)
        input |= {"timestamp": identity["timestamp"], "signature": identity["signature"]}
        data = await tenant.gql(ops.SUBMIT_LEAD, {"input": input}, key=tenant.publishable_key)
    else:
        data = await tenant.gql(ops.SUBMIT_LEAD, {"input": input})
    return data["submitLead"]


async def move(tenant, lead_id: str, status: str, **values: Any) -> dict[str, Any]:
    return (await tenant.gql(ops.MOVE_LEAD, {"input": {"id": lead_id, "status": status, **values}}))["moveLead"]


async def staff_view(tenant, lead_id: str) -> dict[str, Any]:
    return (await tenant.gql(ops.LEAD, {"id": lead_id}))["lead"]


async def test_a_lead_from_the_widget_moves_to_won_and_earns_its_fee_once_held_then_available(tenant, db):
    program = await program_with_fee(tenant)
    endpoint_id, _ = await create_endpoint(tenant, "https://shop.example/hooks", ["lead.status_changed"])
    secret = await widget_secret(tenant)

    submitted = await submit(
        tenant,
        program["id"],
        secret=secret,
        companyDomain="https://www.Acme.com/about",
        contactName="Ada",
        contactEmail="Ada@Acme.com",
        notes="met at the fair",
    )
    assert submitted["userErrors"] == [] and submitted["lead"]["status"] == "SUBMITTED"
    lead_id = submitted["lead"]["id"]

    assert (await move(tenant, lead_id, "CONTACTED", notes="called Ada", notesVisibleToReferrer=True))["userErrors"] == []
    assert (await move(tenant, lead_id, "QUALIFIED", notes="budget is tight"))["userErrors"] == []
    won = await move(tenant, lead_id, "WON", notes="signed!", notesVisibleToReferrer=True)
    assert won["userErrors"] == []

    lead = won["lead"]
    assert (lead["status"], lead["companyDomain"], lead["contactEmail"]) == ("WON", "acme.com", "ada@acme.com")
    assert [(h["fromStatus"], h["toStatus"], h["byReferrer"], h["actorKeyId"] is not None) for h in lead["history"]] == [
        (None, "SUBMITTED", True, True),
        ("SUBMITTED", "CONTACTED", False, True),
        ("CONTACTED", "QUALIFIED", False, True),
        ("QUALIFIED", "WON", False, True),
    ]
    assert lead["feeRewardId"] is not None
    assert await balance(tenant, "jane", "COMMISSION") == {"available": 0, "held": 50_000}  # the program's 14-day hold
    await release_due(db, at=days(15))
    assert await balance(tenant, "jane", "COMMISSION") == {"available": 50_000, "held": 0}  # payable by payouts

    # the referrer sees their own steps, and only the notes staff marked for them
    identity = signed(secret, "jane")
    mine = (
        await tenant.gql(
            ops.REFERRER_LEADS,
            {"customer": "jane", "timestamp": identity["timestamp"], "signature": identity["signature"]},
            key=tenant.publishable_key,
        )
    )["referrerLeads"]
    assert [(s["status"], s["notes"]) for s in mine[0]["steps"]] == [
        ("SUBMITTED", "met at the fair"),
        ("CONTACTED", "called Ada"),
        ("QUALIFIED", None),
        ("WON", "signed!"),
    ]
    assert mine[0]["feeGranted"] is True

    async with system_connection(db) as connection:
        payloads = (
            (
                await connection.execute(
                    select(WebhookDelivery.payload)
                    .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
                    .order_by(WebhookDelivery.created_at)
                )
            )
            .scalars()
            .all()
        )
    assert [(p["oldStatus"], p["newStatus"], p["notesForReferrer"]) for p in payloads] == [
        (None, "SUBMITTED", "met at the fair"),
        ("SUBMITTED", "CONTACTED", "called Ada"),
        ("CONTACTED", "QUALIFIED", None),
        ("QUALIFIED", "WON", "signed!"),
    ]
    assert {p["referrerExternalId"] for p in payloads} == {"jane"} and payloads[-1]["feeRewardId"] == lead["feeRewardId"]


async def test_invalid_transitions_are_refused_with_typed_errors_and_change_nothing(tenant):
    program = await program_with_fee(tenant)
    lead_id = (await submit(tenant, program["id"]))["lead"]["id"]

    for status in ("QUALIFIED", "WON", "SUBMITTED"):  # no skipping ahead, no standing still
        refused = await move(tenant, lead_id, status)
        assert refused["lead"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("status", "INVALID_STATUS_TRANSITION")]
    assert [
        e["code"] for e in (await move(tenant, lead_id, "CONTACTED", contractValue=5, contractCurrency="USD"))["userErrors"]
    ] == ["INVALID_INPUT"]  # a contract value belongs to WON
    assert (await move(tenant, lead_id, "LOST", notes="went elsewhere"))["userErrors"] == []
    for status in ("CONTACTED", "QUALIFIED", "WON", "SUBMITTED"):  # LOST is final
        assert [e["code"] for e in (await move(tenant, lead_id, status))["userErrors"]] == ["INVALID_STATUS_TRANSITION"]

    lead = await staff_view(tenant, lead_id)
    assert [h["toStatus"] for h in lead["history"]] == ["SUBMITTED", "LOST"] and lead["feeRewardId"] is None
    assert await balance(tenant, "jane", "COMMISSION") == {"available": 0, "held": 0}


async def test_concurrent_won_transitions_grant_one_fee(tenant, db):
    program = await program_with_fee(tenant, feeAmount=None, feePercentBps=1000, holdDays=0)
    lead_id = (await submit(tenant, program["id"]))["lead"]["id"]
    await move(tenant, lead_id, "CONTACTED")
    await move(tenant, lead_id, "QUALIFIED")
    missing = await move(tenant, lead_id, "WON")
    assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [("contractValue", "REQUIRED")]

    results = await asyncio.gather(
        *[move(tenant, lead_id, "WON", contractValue=1_000_000, contractCurrency="USD") for _ in range(4)]
    )

    assert sorted(bool(r["userErrors"]) for r in results) == [False, True, True, True]
    assert {e["code"] for r in results for e in r["userErrors"]} == {"INVALID_STATUS_TRANSITION"}
    assert await balance(tenant, "jane", "COMMISSION") == {"available": 100_000, "held": 0}  # 10 % of $10,000, once
    assert [h["toStatus"] for h in (await staff_view(tenant, lead_id))["history"]].count("WON") == 1


async def test_duplicates_are_flagged_and_retries_return_the_first_lead(tenant):
    program = await program_with_fee(tenant)
    first = (await submit(tenant, program["id"], companyDomain="acme.com", idempotencyKey="lead-1"))["lead"]
    again = await submit(tenant, program["id"], companyDomain="acme.com", idempotencyKey="lead-1")
    assert again["replayed"] is True and again["lead"]["id"] == first["id"]

    same_domain = (await submit(tenant, program["id"], "ken", companyDomain="WWW.ACME.COM"))["lead"]
    same_contact = (await submit(tenant, program["id"], "ken", company="Acme Inc", contactEmail="boss@ACME.com"))["lead"]
    await submit(tenant, program["id"], "ken", contactEmail="boss@acme.com")  # makes the 3rd one's email known
    other = (await submit(tenant, program["id"], "ken", company="Globex", companyDomain="globex.com"))["lead"]

    assert (await staff_view(tenant, same_domain["id"]))["duplicateOfId"] == first["id"]
    assert (await staff_view(tenant, same_contact["id"]))["duplicateOfId"] is None  # nobody named boss@acme.com before
    assert (await staff_view(tenant, other["id"]))["duplicateOfId"] is None
    leads = (await tenant.gql(ops.LEADS, {"programId": program["id"]}))["leads"]["edges"]
    assert len(leads) == 5  # flagged, never dropped

    bad = await submit(tenant, program["id"], companyDomain="not a domain")
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [("companyDomain", "INVALID_INPUT")]
    unknown = await submit(tenant, program["id"], "nobody")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [("customerExternalId", "NOT_FOUND")]


async def test_a_referrer_sees_only_their_own_leads_and_a_browser_needs_their_signature(tenant):
    program = await program_with_fee(tenant)
    secret = await widget_secret(tenant)
    await submit(tenant, program["id"], "jane", secret=secret, company="Jane's lead")
    await submit(tenant, program["id"], "ken", secret=secret, company="Ken's lead")

    identity = signed(secret, "ken")
    mine = (
        await tenant.gql(
            ops.REFERRER_LEADS,
            {"customer": "ken", **{k: identity[k] for k in ("timestamp", "signature")}},
            key=tenant.publishable_key,
        )
    )["referrerLeads"]
    assert [lead["company"] for lead in mine] == ["Ken's lead"]

    forged = await tenant.raw(
        ops.REFERRER_LEADS,
        {"customer": "jane", **{k: identity[k] for k in ("timestamp", "signature")}},
        key=tenant.publishable_key,
    )
    assert forged["errors"][0]["extensions"]["code"] == "SIGNATURE_INVALID"
    unsigned = await tenant.raw(
        ops.SUBMIT_LEAD,
        {"input": {"programId": program["id"], "customerExternalId": "jane", "company": "Sneaky"}},
        key=tenant.publishable_key,
    )
    assert [e["code"] for e in unsigned["data"]["submitLead"]["userErrors"]] == ["REQUIRED"]
    moved = await tenant.raw(ops.MOVE_LEAD, {"input": {"id": mine[0]["id"], "status": "CONTACTED"}}, key=tenant.publishable_key)
    assert moved["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # staff only
