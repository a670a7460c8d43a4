"""Payouts as the merchant's server and its people use them: requests that never take more
than the balance (also fifty at once), approvals only by a FINANCE or OWNER session with a
code, bound to what was shown, rejections and failures that give the money back, two
approvers above an amount, and the provider files."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import pytest
from sqlalchemy import select

from app.db import create_session_factory
from app.merchants.models import AdminRole, AuditEntry
from app.webhooks.models import WebhookDelivery
from tests.payouts import helpers as h
from tests.rewards.helpers import balance, refund

pytestmark = pytest.mark.usefixtures("clock")


async def commission(tenant, customer: str = "jane", currency: str = "USD") -> dict:
    return await balance(tenant, customer, "COMMISSION", currency)


async def test_a_request_sets_the_balance_aside_and_a_retry_returns_it(tenant):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1500)
    assert (await h.request(tenant, "jane", key="k1"))["userErrors"] == [
        {"field": "customerExternalId", "code": "PAYOUT_ACCOUNT_REQUIRED", "message": "set the customer's payout account first"}
    ]
    await h.set_account(tenant, "jane", method="PAYPAL", paypalEmail="Jane.Doe+shop@gmail.com")

    first = await h.request(tenant, "jane", key="k1", amount=1000)
    assert (first["payout"]["status"], first["payout"]["amount"], first["replayed"]) == ("PENDING_APPROVAL", 1000, False)
    assert first["payout"]["account"]["masked"] == "j•••@gmail.com"
    assert await commission(tenant) == {"available": 500, "held": 0}
    again = await h.request(tenant, "jane", key="k1", amount=1000)
    assert again["replayed"] is True and again["payout"]["id"] == first["payout"]["id"]
    conflict = await h.request(tenant, "jane", key="k1", amount=400)
    assert conflict["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    too_much = await h.request(tenant, "jane", key="k2", amount=501)
    assert too_much["userErrors"] == [
        {"field": "amount", "code": "INSUFFICIENT_BALANCE", "message": "the available commission is 500 USD"}
    ]
    rest = await h.request(tenant, "jane", key="k3")
    assert rest["payout"]["amount"] == 500
    assert (await h.request(tenant, "jane", key="k4"))["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"
    assert await commission(tenant) == {"available": 0, "held": 0}


@pytest.mark.postgresql_only
async def test_fifty_requests_at_once_against_a_balance_for_one_make_one_payout(tenant):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1000)
    await h.set_account(tenant, "jane")
    results = await asyncio.gather(*[h.request(tenant, "jane", key=f"race-{n}", amount=1000) for n in range(50)])
    made = [r for r in results if r["payout"]]
    assert len(made) == 1
    assert {r["userErrors"][0]["code"] for r in results if not r["payout"]} == {"INSUFFICIENT_BALANCE"}
    listed = await tenant.gql("{ payouts(first: 100) { edges { node { id amount } } } }")
    assert [e["node"]["amount"] for e in listed["payouts"]["edges"]] == [1000]
    # the same key fifty times: one payout, forty-nine replays
    await h.earn(tenant, program, "jane", 700, referee="second-friend")
    same = await asyncio.gather(*[h.request(tenant, "jane", key="same") for _ in range(50)])
    assert len({r["payout"]["id"] for r in same}) == 1 and sum(not r["replayed"] for r in same) == 1


async def test_a_negative_balance_after_a_clawback_pays_nothing(tenant):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1000, order="o-1")
    await h.set_account(tenant, "jane")
    paid = await h.request(tenant, "jane")
    assert paid["payout"]["amount"] == 1000
    await refund(tenant, "o-1", "refund-1", customer="jane-friend")  # the order is refunded after the payout was requested
    assert await commission(tenant) == {"available": -1000, "held": 0}
    assert (await h.request(tenant, "jane"))["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"


APPROVE_FORBIDDEN = {"UNAUTHENTICATED", "FORBIDDEN"}


async def test_only_a_finance_or_owner_session_approves(tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    payout = await h.payout_for(tenant, program, "jane", 800)
    reviewer = await h.approver(tenant, clock, AdminRole.REVIEWER)
    admin = await h.approver(tenant, clock, AdminRole.ADMIN)
    for key in (tenant.secret_key, tenant.publishable_key, reviewer.token, admin.token, "sess_unknown" + "x" * 30, "nonsense"):
        body = await h.approve(tenant, reviewer, [payout], code=reviewer.code(clock()), key=key)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] in APPROVE_FORBIDDEN, (key, body)
    assert (await tenant.gql(h.PAYOUT, {"id": payout["id"]}))["payout"]["status"] == "PENDING_APPROVAL"

    owner = await h.approver(tenant, clock, AdminRole.OWNER)
    body = await h.approve(tenant, owner, [payout], code=owner.code(clock()))
    assert body["data"]["approvePayouts"]["approvedCount"] == 1
    # a retry of the same approval changes nothing and spends no code
    again = await h.approve(tenant, owner, [payout], code="123456")
    assert again["data"]["approvePayouts"]["replayed"] is True


async def test_an_approval_binds_what_was_shown(tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    jane = await h.payout_for(tenant, program, "jane", 800)
    bob = await h.payout_for(tenant, program, "bob", 300, method="PAYPAL", paypalEmail="bob@example.com")
    person = await h.approver(tenant, clock)
    shown = h.totals(jane, bob)
    rejected = await tenant.gql(h.REJECT, {"id": bob["id"], "reason": "asked to be paid next month"})
    assert rejected["rejectPayout"]["payout"]["status"] == "REJECTED"

    # bob's payout changed after it was shown: the approval fails and checks no code
    stale = await h.approve(tenant, person, [jane, bob], code=person.code(clock()), expected=shown)
    assert stale["data"]["approvePayouts"]["userErrors"][0]["code"] == "PAYOUT_CHANGED"
    wrong_total = await h.approve(
        tenant, person, [jane], code=person.code(clock()), expected=[{"currency": "USD", "amount": 1100}]
    )
    assert wrong_total["data"]["approvePayouts"]["userErrors"] == [
        {
            "field": "expectedTotals",
            "code": "PAYOUT_CHANGED",
            "message": "these payouts total 800 USD, not 1100 USD: show them again before approving",
        }
    ]
    other_currency = await h.approve(
        tenant, person, [jane], code=person.code(clock()), expected=[{"currency": "EUR", "amount": 800}]
    )
    assert other_currency["data"]["approvePayouts"]["userErrors"][0]["code"] == "PAYOUT_CHANGED"
    unknown = await h.approve(
        tenant, person, [jane, {"id": str(uuid.uuid4()), "currency": "USD", "amount": 0}], code=person.code(clock())
    )
    assert unknown["data"]["approvePayouts"]["userErrors"][0] == {
        "field": "ids.1",
        "code": "NOT_FOUND",
        "message": "payout not found",
    }
    fine = await h.approve(tenant, person, [jane], code=person.code(clock()))
    assert fine["data"]["approvePayouts"]["approvedCount"] == 1


async def test_rejection_and_failure_give_the_money_back(db, tenant, clock):
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    person = await h.approver(tenant, clock)
    await h.earn(tenant, program, "jane", 600)
    await h.earn(tenant, program, "jane", 400, referee="jane-friend-2")
    await h.set_account(tenant, "jane")
    first = (await h.request(tenant, "jane", amount=700))["payout"]
    assert await commission(tenant) == {"available": 300, "held": 0}
    rejected = await tenant.gql(h.REJECT, {"id": first["id"], "reason": "wrong amount"})
    assert rejected["rejectPayout"]["payout"]["status"] == "REJECTED"
    assert await commission(tenant) == {"available": 1000, "held": 0}
    assert (await tenant.gql(h.REJECT, {"id": first["id"], "reason": "again"}))["rejectPayout"]["replayed"] is True

    second = (await h.request(tenant, "jane"))["payout"]
    assert second["amount"] == 1000
    assert (await tenant.gql(h.MARK_FAILED, {"id": second["id"], "reason": "x"}))["markPayoutFailed"]["userErrors"][0][
        "code"
    ] == "INVALID_STATUS_TRANSITION"  # not approved yet: reject it instead
    await h.approve(tenant, person, [second], code=person.code(clock()))
    await h.run_jobs(db)
    failed = await tenant.gql(h.MARK_FAILED, {"id": second["id"], "reason": "IBAN closed"})
    assert (
        failed["markPayoutFailed"]["payout"]["status"] == "FAILED"
        and failed["markPayoutFailed"]["payout"]["note"] == "IBAN closed"
    )
    assert await commission(tenant) == {"available": 1000, "held": 0}
    assert (await tenant.gql(h.MARK_FAILED, {"id": second["id"], "reason": "x"}))["markPayoutFailed"]["replayed"] is True
    assert (await tenant.gql(h.MARK_PAID, {"id": second["id"], "ref": "x"}))["markPayoutPaid"]["userErrors"][0][
        "code"
    ] == "INVALID_STATUS_TRANSITION"

    # paid, then the bank sends it back: failed after paid returns it too
    clock.advance(30)
    third = (await h.request(tenant, "jane"))["payout"]
    await h.approve(tenant, person, [third], code=person.code(clock()))
    await h.run_jobs(db)
    assert (await tenant.gql(h.MARK_PAID, {"id": third["id"], "ref": "wise-1"}))["markPayoutPaid"]["payout"]["status"] == "PAID"
    assert await commission(tenant) == {"available": 0, "held": 0}
    conflict = await tenant.gql(h.MARK_PAID, {"id": third["id"], "ref": "wise-2"})
    assert conflict["markPayoutPaid"]["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    returned = await tenant.gql(h.MARK_FAILED, {"id": third["id"], "reason": "returned by the bank"})
    assert returned["markPayoutFailed"]["payout"]["status"] == "FAILED"
    assert await commission(tenant) == {"available": 1000, "held": 0}
    async with create_session_factory(db)() as session:
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert [a for a in actions if a.startswith("payout.")] == [
        "payout.rejected",
        "payout.approved",
        "payout.failed",
        "payout.approved",
        "payout.paid",
        "payout.failed",
    ]


async def test_two_approvers_above_the_merchants_amount(tenant, clock):
    owner = await h.no_cooling_off(tenant)
    await h.owner_settings(tenant, owner, dualApprovalMinimums=[{"currency": "USD", "amount": 1000}])
    program = await h.commission_program(tenant)
    small = await h.payout_for(tenant, program, "jane", 999)
    large = await h.payout_for(tenant, program, "bob", 1000)
    first, second = await h.approver(tenant, clock), await h.approver(tenant, clock)
    body = (await h.approve(tenant, first, [small, large], code=first.code(clock())))["data"]["approvePayouts"]
    assert body["userErrors"] == []
    assert (body["approvedCount"], body["awaitingSecondApprovalCount"]) == (1, 1)
    assert {p["id"]: p["status"] for p in body["payouts"]} == {small["id"]: "APPROVED", large["id"]: "PENDING_APPROVAL"}
    clock.advance(30)
    again = (await h.approve(tenant, first, [large], code=first.code(clock())))["data"]["approvePayouts"]
    assert again["replayed"] is True and again["payouts"][0]["status"] == "PENDING_APPROVAL"  # one person twice is one approval
    mixed = await h.approve(tenant, first, [large, await h.payout_for(tenant, program, "carl", 10)], code=first.code(clock()))
    assert mixed["data"]["approvePayouts"]["userErrors"][0]["code"] == "ALREADY_APPROVED_BY_YOU"
    done = (await h.approve(tenant, second, [large], code=second.code(clock())))["data"]["approvePayouts"]
    assert done["approvedCount"] == 1 and {a["adminId"] for a in done["payouts"][0]["approvals"]} == {first.id, second.id}


async def test_provider_files_and_the_merchants_webhook(db, tenant, client, clock):
    owner = await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    await tenant.gql(
        """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }""",
        {"input": {"url": "https://hooks.shop.example/payouts", "eventTypes": ["payout.approved", "payout.paid"]}},
    )
    paypal = [
        await h.payout_for(tenant, program, name, amount, method="PAYPAL", paypalEmail=f"{name}@example.com")
        for name, amount in (("ann", 1234), ("=cmd", 5))
    ]
    credit = await h.payout_for(tenant, program, "carl", 300, method="STORE_CREDIT")
    person = await h.approver(tenant, clock)
    await h.approve(tenant, person, paypal + [credit], code=person.code(clock()))
    await h.run_jobs(db)

    views = {p["id"]: (await tenant.gql(h.PAYOUT, {"id": p["id"]}))["payout"] for p in paypal + [credit]}
    assert {v["provider"] for v in views.values()} == {"PAYPAL_PAYOUTS_CSV", "MERCHANT_WEBHOOK"}
    assert views[credit["id"]]["batchId"] is None and views[credit["id"]]["status"] == "PROCESSING"
    [batch_id] = {views[p["id"]]["batchId"] for p in paypal}
    batch = (await tenant.gql(h.BATCH, {"id": batch_id}, key=person.token))["payoutBatch"]
    assert (batch["provider"], batch["payoutCount"], batch["total"], batch["currency"]) == ("PAYPAL_PAYOUTS_CSV", 2, 1239, "USD")
    rows = list(csv.reader(io.StringIO(batch["csv"])))
    assert rows == [
        ["ann@example.com", "12.34", "USD", paypal[0]["reference"], f"Referral payout {paypal[0]['reference']}", "PAYPAL"],
        ["=cmd@example.com", "0.05", "USD", paypal[1]["reference"], f"Referral payout {paypal[1]['reference']}", "PAYPAL"],
    ]
    assert all(len(r[3]) <= 30 and " " not in r[3] for r in rows)

    # a reviewer, an admin or the secret key cannot read bank details
    reviewer = await h.make_admin(tenant, AdminRole.REVIEWER)
    for key in (reviewer.token, tenant.secret_key):
        assert (await tenant.raw(h.BATCH, {"id": batch_id}, key=key))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # the signed link works until it expires; a changed one does not
    url = batch["downloadUrl"].split("testserver" if "testserver" in batch["downloadUrl"] else ":8000", 1)[1]
    assert (await client.get(url)).text == batch["csv"]
    assert (await client.get(url.replace("signature=", "signature=0"))).status_code == 403
    assert (await client.get(url.replace(f"merchant={tenant.id}", f"merchant={uuid.uuid4()}"))).status_code == 403
    expired = url.split("expires=")[0] + "expires=1000000000&" + url.split("&", 2)[2]
    assert (await client.get(expired)).status_code == 403
    assert (await tenant.gql(h.BATCH, {"id": batch_id}, key=owner.token))["payoutBatch"]["downloadCount"] == 1

    # the store credit waits for the merchant, told by the webhook
    async with create_session_factory(db)() as session:
        approved = [
            d.payload
            for d in (await session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_type == "payout.approved"))).all()
        ]
    told = next(p for p in approved if p["id"] == credit["id"])
    assert (told["provider"], told["method"], told["customerExternalId"], told["amount"]) == (
        "MERCHANT_WEBHOOK",
        "STORE_CREDIT",
        "carl",
        300,
    )
    assert {p["provider"] for p in approved} == {"MERCHANT_WEBHOOK", "PAYPAL_PAYOUTS_CSV"} and len(approved) == 3
    paid = await tenant.gql(h.MARK_PAID, {"id": credit["id"], "ref": "store-credit-991"})
    assert paid["markPayoutPaid"]["payout"]["status"] == "PAID"
