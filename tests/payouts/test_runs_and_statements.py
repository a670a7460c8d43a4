"""Scheduled payout runs (due days, minimums per currency, one run per period however often
it is started, in chunks) and the statement that answers "where is my commission?"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import create_session_factory, utcnow
from app.payouts import runs
from app.payouts.models import PayoutSchedule
from tests.payouts import helpers as h
from tests.rewards.helpers import balance, refund

pytestmark = pytest.mark.usefixtures("clock")

SET_SCHEDULE = """
mutation($programId: ID!, $input: PayoutScheduleInput!) {
  setPayoutSchedule(programId: $programId, input: $input) {
    schedule { frequency day minimums { currency amount } enabled } userErrors { field code message }
  }
}"""
RUNS = "query($p: ID!) { payoutRuns(programId: $p) { period status payoutsCreated customersWithoutAccount } }"
STATEMENT = """
query($customer: String!, $from: DateTime!, $to: DateTime!) {
  payoutStatement(customerExternalId: $customer, from: $from, to: $to) {
    rewards { amount status reversedAmount remaining heldBecause heldUntil orderId
              reversals { kind amount } refunds { type orderId amount } paid { reference status amount } }
    payouts { reference status amount holdReasons { code } }
    totals { currency earned voided reversed paidOut returned reconciles
             opening { held available payoutPending total } closing { held available payoutPending total } }
  }
}"""


def test_a_run_is_due_from_its_day_in_each_period():
    monthly = PayoutSchedule(frequency="MONTHLY", day=15)
    weekly = PayoutSchedule(frequency="WEEKLY", day=3)  # Wednesday
    assert runs.period_of(monthly, datetime(2026, 11, 14, 23, 59, tzinfo=UTC)) is None
    assert runs.period_of(monthly, datetime(2026, 11, 15, tzinfo=UTC)) == "2026-11"
    assert runs.period_of(monthly, datetime(2026, 11, 30, tzinfo=UTC)) == "2026-11"
    assert runs.period_of(weekly, datetime(2026, 11, 24, tzinfo=UTC)) is None  # a Tuesday
    assert runs.period_of(weekly, datetime(2026, 11, 25, tzinfo=UTC)) == "2026-W48"
    assert runs.period_of(weekly, datetime(2026, 11, 29, tzinfo=UTC)) == "2026-W48"


async def start_runs(db, at: datetime | None = None) -> int:
    async with create_session_factory(db)() as session:
        started = await runs.start_due_runs(session, now=at)
        await session.commit()
    await h.run_jobs(db)
    return len(started)


async def test_a_scheduled_run_pays_balances_above_the_minimum_once_per_period(db, tenant, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK", 2)  # several chunks, each its own job
    await h.no_cooling_off(tenant)
    program = await h.commission_program(tenant)
    other_program = await h.commission_program(tenant, "Other")
    bad = await tenant.gql(SET_SCHEDULE, {"programId": program, "input": {"frequency": "WEEKLY", "day": 8, "minimums": []}})
    assert bad["setPayoutSchedule"]["userErrors"][0]["field"] == "day"
    schedule = await tenant.gql(
        SET_SCHEDULE,
        {"programId": program, "input": {"frequency": "MONTHLY", "day": 1, "minimums": [{"currency": "USD", "amount": 1000}]}},
    )
    assert schedule["setPayoutSchedule"]["schedule"]["minimums"] == [{"currency": "USD", "amount": 1000}]

    for name, amount in (("ann", 1500), ("bea", 1000), ("cal", 2500), ("dan", 700), ("eve", 3000)):
        await h.earn(tenant, program, name, amount)
        if name != "cal":
            await h.set_account(tenant, name)
    await h.earn(tenant, program, "fay", 5000, "EUR")  # a currency the schedule does not pay
    await h.set_account(tenant, "fay")
    await h.earn(tenant, other_program, "ann", 400, referee="ann-other")  # another program's commission

    assert await start_runs(db) == 1
    [run] = (await tenant.gql(RUNS, {"p": program}))["payoutRuns"]
    assert run == {"period": f"{utcnow():%Y-%m}", "status": "DONE", "payoutsCreated": 3, "customersWithoutAccount": 1}
    listed = await tenant.gql("{ payouts(first: 100) { edges { node { customerExternalId amount status currency } } } }")
    assert sorted((e["node"]["customerExternalId"], e["node"]["amount"]) for e in listed["payouts"]["edges"]) == [
        ("ann", 1500),
        ("bea", 1000),
        ("eve", 3000),
    ]
    assert await balance(tenant, "ann", "COMMISSION", "USD") == {"available": 400, "held": 0}  # the other program's

    # started again in the same period (another worker, a retry, new commission since): nothing more
    await h.earn(tenant, program, "ann", 2000, referee="ann-friend-2")
    assert await start_runs(db) == 0
    now = utcnow()
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    later_this_month = min(now + timedelta(hours=1), next_month - timedelta(seconds=1))  # also in a month's last hour
    assert await start_runs(db, later_this_month) == 0
    assert len((await tenant.gql("{ payouts(first: 100) { edges { node { id } } } }"))["payouts"]["edges"]) == 3
    # the next month's run pays what came since
    assert await start_runs(db, utcnow() + timedelta(days=32)) == 1
    amounts = await tenant.gql('{ payouts(customerExternalId: "ann", first: 10) { edges { node { amount } } } }')
    assert sorted(e["node"]["amount"] for e in amounts["payouts"]["edges"]) == [1500, 2000]


async def test_the_statement_explains_every_reward_and_reconciles_with_the_ledger(db, tenant, clock):
    owner = await h.make_admin(tenant)
    await h.owner_settings(tenant, owner, coolingOffHours=0)
    program = await h.commission_program(tenant)
    await h.earn(tenant, program, "jane", 1000, order="o-1")
    await h.earn(tenant, program, "jane", 600, referee="jane-friend-2", order="o-2")
    await h.earn(tenant, program, "jane", 300, referee="jane-friend-3", order="o-3")
    await refund(tenant, "o-2", "refund-o-2", customer="jane-friend-2")  # reversed before any payout
    await h.set_account(tenant, "jane")
    person = await h.approver(tenant, clock)
    first = (await h.request(tenant, "jane", amount=1000))["payout"]
    await h.approve(tenant, person, [first], code=person.code(clock()))
    await h.run_jobs(db)
    await tenant.gql(h.MARK_PAID, {"id": first["id"], "ref": "wise-9"})
    await h.owner_settings(tenant, owner, coolingOffHours=72)
    await h.set_account(tenant, "jane", method="PAYPAL", paypalEmail="jane@example.com")
    second = (await h.request(tenant, "jane"))["payout"]  # the rest, held: the account just changed
    assert second["status"] == "ON_HOLD" and second["amount"] == 300

    found = (await tenant.gql(STATEMENT, {"customer": "jane", **h.this_week()}))["payoutStatement"]
    by_order = {r["orderId"]: r for r in found["rewards"]}
    assert by_order["o-1"]["status"] == "PAID" and by_order["o-1"]["paid"] == [
        {"reference": first["reference"], "status": "PAID", "amount": 1000}
    ]
    assert by_order["o-2"]["status"] == "REVERSED" and by_order["o-2"]["reversals"] == [{"kind": "REVERSAL", "amount": 600}]
    assert by_order["o-2"]["refunds"] == [{"type": "REFUND", "orderId": "o-2", "amount": None}]
    assert by_order["o-3"]["paid"] == [{"reference": second["reference"], "status": "ON_HOLD", "amount": 300}]
    assert [(p["status"], [c["code"] for c in p["holdReasons"]]) for p in found["payouts"]] == [
        ("PAID", []),
        ("ON_HOLD", ["COOLING_OFF"]),
    ]
    [totals] = found["totals"]
    assert (totals["earned"], totals["reversed"], totals["paidOut"], totals["voided"]) == (1900, 600, 1000, 0)
    assert totals["opening"]["total"] == 0 and totals["reconciles"]
    assert totals["closing"] == {"held": 0, "available": 0, "payoutPending": 300, "total": 300}
    assert await h.books_problems(db) == []  # `referral ledger verify` agrees

    # a period that starts after the rewards opens with their balances
    later = {"from": (utcnow() + timedelta(seconds=1)).isoformat(), "to": (utcnow() + timedelta(days=1)).isoformat()}
    after = (await tenant.gql(STATEMENT, {"customer": "jane", **later}))["payoutStatement"]
    assert after["rewards"] == [] and after["totals"][0]["opening"] == totals["closing"] and after["totals"][0]["reconciles"]
    bad = await tenant.raw(STATEMENT, {"customer": "jane", "from": "2026-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
