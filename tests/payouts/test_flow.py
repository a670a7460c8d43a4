"""The admin flow of the README, end to end: an owner, a finance admin with a second factor,
commission earned, a payout requested, approved with a code, sent in a batch file that is
downloaded through a signed link, marked paid, and the statement that explains it."""

from __future__ import annotations

import csv
import io

from app.merchants.models import AdminRole
from tests.payouts import helpers as h

STATEMENT = """
query($customer: String!, $from: DateTime!, $to: DateTime!) {
  payoutStatement(customerExternalId: $customer, from: $from, to: $to) {
    customerExternalId truncated
    rewards { rewardId status amount remaining currency heldBecause paid { reference status amount } reversals { kind amount } }
    payouts { reference status amount }
    totals { currency earned voided reversed paidOut returned reconciles
             opening { held available payoutPending total } closing { held available payoutPending total } }
  }
}"""


async def test_from_commission_to_a_paid_bank_transfer(db, tenant, client, clock):
    owner = await h.no_cooling_off(tenant)
    finance = await h.approver(tenant, clock)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1250, "EUR")
    await h.earn(tenant, program, "jane", 750, "EUR", referee="jane-friend-2")
    assert (await h.set_account(tenant, "jane"))["userErrors"] == []

    requested = await h.request(tenant, "jane", currency="EUR", key="jane-1")
    assert requested["userErrors"] == [], requested
    payout = requested["payout"]
    assert (payout["status"], payout["amount"], payout["currency"]) == ("PENDING_APPROVAL", 2000, "EUR")
    assert payout["account"]["masked"] == "DE89 ••••3000 (Jane Doe)"

    body = await h.approve(tenant, finance, [payout], code=finance.code(clock()))
    assert "errors" not in body, body
    approved = body["data"]["approvePayouts"]
    assert approved["userErrors"] == [] and approved["approvedCount"] == 1
    assert approved["payouts"][0]["status"] == "APPROVED"
    assert approved["payouts"][0]["approvals"][0]["adminId"] == finance.id

    await h.run_jobs(db)  # the worker: payouts.send
    sent = (await tenant.gql(h.PAYOUT, {"id": payout["id"]}))["payout"]
    assert (sent["status"], sent["provider"]) == ("PROCESSING", "WISE_BATCH_CSV") and sent["batchId"]

    batch = (await tenant.gql(h.BATCH, {"id": sent["batchId"]}, key=finance.token))["payoutBatch"]
    rows = list(csv.reader(io.StringIO(batch["csv"])))
    assert rows == [
        [
            "name",
            "recipientEmail",
            "paymentReference",
            "receiverType",
            "amountCurrency",
            "amount",
            "sourceCurrency",
            "targetCurrency",
            "IBAN",
        ],
        ["Jane Doe", "", payout["reference"], "PERSON", "target", "20.00", "EUR", "EUR", "DE89370400440532013000"],
    ]
    path = batch["downloadUrl"].split("//", 1)[1].split("/", 1)[1]
    downloaded = await client.get("/" + path)
    assert downloaded.status_code == 200 and downloaded.text == batch["csv"]
    assert downloaded.headers["content-disposition"].startswith("attachment;")

    paid = await tenant.gql(h.MARK_PAID, {"id": payout["id"], "ref": "wise-123"})
    assert paid["markPayoutPaid"]["payout"]["status"] == "PAID"
    again = await tenant.gql(h.MARK_PAID, {"id": payout["id"], "ref": "wise-123"})
    assert again["markPayoutPaid"]["replayed"] is True

    statement = (await tenant.gql(STATEMENT, {"customer": "jane", **h.this_week()}))["payoutStatement"]
    [totals] = statement["totals"]
    assert totals["earned"] == 2000 and totals["paidOut"] == 2000 and totals["reconciles"]
    assert totals["closing"] == {"held": 0, "available": 0, "payoutPending": 0, "total": 0}
    assert {r["status"] for r in statement["rewards"]} == {"PAID"}
    assert sorted(p["amount"] for r in statement["rewards"] for p in r["paid"]) == [750, 1250]
    assert owner.role is AdminRole.OWNER
