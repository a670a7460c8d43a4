"""Partner shares are payable: each party's share of a sale is a reward that waits for the
referral's clearance like any commission, then sits in the party's balance, where a payout
run pays it and the partner report shows it paid."""

from __future__ import annotations

from datetime import timedelta

from app.db import utcnow
from tests import graphql_ops as ops
from tests.fraud.helpers import clear_due
from tests.partners.helpers import (
    TEN_PERCENT,
    affiliate_program,
    books_balance,
    commission_balance,
    customer,
    enrol,
    partner_rewards,
    period,
    refund,
    sale,
    set_split,
)
from tests.payouts import helpers as payouts


async def split_program(tenant) -> tuple[dict, dict]:
    program = await affiliate_program(tenant, rule=None)  # the default clearance: a quiet period, then screened again
    ann = await enrol(tenant, program["id"], "ann")
    await customer(tenant, "carla")
    assert (await set_split(tenant, program["id"], [("carla", 1000)], affiliateBps=4000))["userErrors"] == []
    return program, ann


async def report_of(tenant, program_id: str, who: str) -> dict:
    rows = (await tenant.gql(ops.PARTNER_REPORT, {"programId": program_id, **period(), "groupBy": "PARTNER"}))["partnerReport"]
    return next(row for row in rows if row["partnerExternalId"] == who)


async def test_a_split_share_is_released_by_clearance_and_paid_by_a_payout_run(tenant, clock):
    await payouts.no_cooling_off(tenant)
    finance = await payouts.approver(tenant, clock)
    program, ann = await split_program(tenant)
    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="order-1")

    # Earned, but waiting for the referral's clearance: in HELD, nothing to pay yet.
    assert sorted(await partner_rewards(tenant)) == [("ann", 4000, 0, "HELD"), ("carla", 1000, 0, "HELD")]
    assert [await commission_balance(tenant, who, "HELD") for who in ("ann", "carla")] == [4000, 1000]
    assert (await payouts.set_account(tenant, "ann"))["userErrors"] == []
    too_early = await payouts.request(tenant, "ann", key="too-early")
    assert too_early["payout"] is None and too_early["userErrors"]

    assert await clear_due(tenant.engine, at=utcnow() + timedelta(days=90)) == 1
    assert sorted(await partner_rewards(tenant)) == [("ann", 4000, 0, "AVAILABLE"), ("carla", 1000, 0, "AVAILABLE")]
    assert [await commission_balance(tenant, who, "AVAILABLE") for who in ("ann", "carla")] == [4000, 1000]
    report = await report_of(tenant, program["id"], "ann")
    assert (report["commissionEarned"], report["commissionHeld"], report["commissionPaid"]) == (
        [{"amount": 4000, "currency": "USD"}],
        [{"amount": 0, "currency": "USD"}],
        [{"amount": 0, "currency": "USD"}],
    )

    requested = await payouts.request(tenant, "ann", key="ann-1")
    assert requested["userErrors"] == [], requested
    assert (requested["payout"]["amount"], requested["payout"]["currency"]) == (4000, "USD")
    body = await payouts.approve(tenant, finance, [requested["payout"]], code=finance.code(clock()))
    assert "errors" not in body and body["data"]["approvePayouts"]["userErrors"] == [], body
    await payouts.run_jobs(tenant.engine)  # the worker sends it
    paid = await tenant.gql(payouts.MARK_PAID, {"id": requested["payout"]["id"], "ref": "wise-1"})
    assert paid["markPayoutPaid"]["payout"]["status"] == "PAID"

    assert sorted(await partner_rewards(tenant)) == [("ann", 4000, 0, "PAID"), ("carla", 1000, 0, "AVAILABLE")]
    assert [await commission_balance(tenant, who) for who in ("ann", "carla")] == [0, 1000]
    report = await report_of(tenant, program["id"], "ann")
    assert report["commissionPaid"] == [{"amount": 4000, "currency": "USD"}]
    await books_balance(tenant)
    assert await payouts.books_problems(tenant.engine) == []


async def test_a_refund_after_release_claws_back_each_share_in_proportion_and_never_more(tenant):
    program, ann = await split_program(tenant)
    await sale(tenant, "bob", code=ann["code"], amount=9999, key="order-1")
    await clear_due(tenant.engine, at=utcnow() + timedelta(days=90))
    await refund(tenant, "bob", "order-1", 3333, "refund-1")
    # 40 % of 9,999 is 3,999.6 and 10 % is 999.9: the one cent left goes to the larger remainder, carla's
    assert sorted(await partner_rewards(tenant)) == [
        ("ann", 3999, 3999 * 3333 // 9999, "AVAILABLE"),
        ("carla", 1000, 1000 * 3333 // 9999, "AVAILABLE"),
    ]
    await refund(tenant, "bob", "order-1", None, "refund-2")  # the rest of the order
    await refund(tenant, "bob", "order-1", 500, "refund-3")  # past the order: nothing more to take
    assert sorted(await partner_rewards(tenant)) == [("ann", 3999, 3999, "REVERSED"), ("carla", 1000, 1000, "REVERSED")]
    assert [await commission_balance(tenant, who) for who in ("ann", "carla")] == [0, 0]
    report = await report_of(tenant, program["id"], "ann")
    assert report["commissionEarned"] == [{"amount": 0, "currency": "USD"}]
    await books_balance(tenant)


async def test_the_programs_commission_hold_keeps_a_cleared_share_held_until_it_ends(tenant):
    program = await affiliate_program(tenant, rule=TEN_PERCENT | {"conditions": {"holdDays": 30}})
    ann = await enrol(tenant, program["id"], "ann")
    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="order-1")
    assert await clear_due(tenant.engine, at=utcnow() + timedelta(days=4)) == 1  # cleared, but inside the refund window
    assert await partner_rewards(tenant) == [("ann", 1000, 0, "HELD")]
    await payouts.release_due(tenant.engine, utcnow() + timedelta(days=29))
    assert await partner_rewards(tenant) == [("ann", 1000, 0, "HELD")]
    await payouts.release_due(tenant.engine, utcnow() + timedelta(days=31))
    assert await partner_rewards(tenant) == [("ann", 1000, 0, "AVAILABLE")]
    assert await commission_balance(tenant, "ann", "AVAILABLE") == 1000
    await books_balance(tenant)
