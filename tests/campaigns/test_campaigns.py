"""Campaigns over a program's referrers: a threshold bonus granted once, a rate boost by
category within the period, tiered rates topped up by one adjustment when a tier is crossed,
also under concurrent sales and redelivered jobs. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.rewards.models import RewardKind, RewardStatus
from tests import graphql_ops as ops
from tests.campaigns.helpers import (
    campaign_rewards,
    count_again,
    create_campaign,
    keyed,
    pending_campaign_jobs,
    program_with_referrers,
    refund,
    run_campaign_jobs,
    sale,
    today,
)
from tests.fraud.helpers import clear_due
from tests.rewards.helpers import assert_ledger_consistent, balance, create_rule, credit_rule, days
from tests.scenarios import active_program, allow_bursts, code_for, record


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def test_a_purchase_in_a_program_without_campaigns_writes_no_campaign_job(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    other = await active_program(tenant)
    await create_campaign(
        tenant,
        other["id"],
        kind="THRESHOLD_BONUS",
        startsOn=today().isoformat(),
        endsOn=today().isoformat(),
        threshold=1,
        bonusAmount=100,
    )

    await sale(tenant, codes["jane"])

    assert await pending_campaign_jobs(db) == []


async def test_the_threshold_bonus_is_granted_once_at_the_threshold_whatever_the_redeliveries(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane", "ken")
    campaign = await create_campaign(
        tenant,
        program["id"],
        kind="THRESHOLD_BONUS",
        startsOn=today() - timedelta(days=1),
        endsOn=today(),
        threshold=3,
        bonusAmount=5000,
    )
    sales = [await sale(tenant, codes["jane"]) for _ in range(2)] + [await sale(tenant, codes["ken"])]
    await run_campaign_jobs(db)
    assert await campaign_rewards(db, campaign["id"]) == []  # two sales: not there yet

    sales += [await sale(tenant, codes["jane"]) for _ in range(2)]  # the 3rd and 4th at once
    await run_campaign_jobs(db, concurrently=True)
    await count_again(db, [s["action"]["id"] for s in sales])

    [bonus] = await campaign_rewards(db, campaign["id"])
    assert (bonus.amount, bonus.unit, bonus.kind, bonus.source, bonus.status) == (
        5000,
        "USD",
        RewardKind.COMMISSION,
        "CAMPAIGN",
        RewardStatus.AVAILABLE,
    )
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 5000
    assert (await balance(tenant, "ken", "COMMISSION"))["available"] == 0


async def test_tier_crossing_tops_up_earlier_sales_by_one_adjustment_under_concurrent_sales(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    campaign = await create_campaign(
        tenant,
        program["id"],
        kind="TIERED_RATE",
        startsOn=today() - timedelta(days=1),
        endsOn=today(),
        tiers=[{"fromSale": 4, "rateBps": 1500}, {"fromSale": 1, "rateBps": 1000}],
    )
    assert campaign["tiers"] == [{"fromSale": 1, "rateBps": 1000}, {"fromSale": 4, "rateBps": 1500}]
    sales = [await sale(tenant, codes["jane"]) for _ in range(3)]
    await run_campaign_jobs(db)
    assert sorted(r.amount for r in await campaign_rewards(db, campaign["id"])) == [1000, 1000, 1000]  # 10 % of $100

    # the 4th and 5th sales arrive together: both are at 15 %, and the first three are topped up once
    sales += [await sale(tenant, codes["jane"]) for _ in range(2)]
    await run_campaign_jobs(db, concurrently=True)
    await count_again(db, [s["action"]["id"] for s in sales], times=3)

    granted = await campaign_rewards(db, campaign["id"])
    [adjustment] = keyed(granted, "tier")
    assert adjustment.amount == 3 * 10_000 * 500 // 10_000  # 3 earlier sales x 5 points
    assert sorted(r.amount for r in keyed(granted, "sale")) == [1000, 1000, 1000, 1500, 1500]
    assert sum(r.amount for r in granted) == 5 * 10_000 * 1500 // 10_000  # everything at 15 %
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 7500


async def test_a_refunded_sale_leaves_the_count_and_its_campaign_commission_is_taken_back(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    campaign = await create_campaign(
        tenant,
        program["id"],
        kind="TIERED_RATE",
        startsOn=today(),
        endsOn=today(),
        tiers=[{"fromSale": 1, "rateBps": 1000}, {"fromSale": 3, "rateBps": 2000}],
    )
    first = await sale(tenant, codes["jane"])
    await sale(tenant, codes["jane"])
    await run_campaign_jobs(db)
    await refund(tenant, first)
    await run_campaign_jobs(db)
    await sale(tenant, codes["jane"])  # the 2nd live sale: still the first tier
    await run_campaign_jobs(db)

    granted = await campaign_rewards(db, campaign["id"])
    assert keyed(granted, "tier") == []
    assert [(r.amount, r.status) for r in keyed(granted, "sale")] == [
        (1000, RewardStatus.REVERSED),
        (1000, RewardStatus.AVAILABLE),
        (1000, RewardStatus.AVAILABLE),
    ]
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 2000


async def test_a_refund_recorded_before_its_sale_is_counted_keeps_the_sale_out(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    campaign = await create_campaign(
        tenant, program["id"], kind="THRESHOLD_BONUS", startsOn=today(), endsOn=today(), threshold=1, bonusAmount=700
    )
    purchase = await sale(tenant, codes["jane"])
    await refund(tenant, purchase)  # before the worker counted the sale
    await run_campaign_jobs(db)

    assert await campaign_rewards(db, campaign["id"]) == []


async def test_the_rate_boost_pays_on_the_category_within_the_period_in_the_merchants_time_zone(tenant, db):
    data = await tenant.gql("""mutation { setLocaleSettings(input: {timeZone: "Asia/Tehran"}) { userErrors { code } } }""")
    assert data["setLocaleSettings"]["userErrors"] == []
    program, codes = await program_with_referrers(tenant, "jane")
    first_day, last_day = today() - timedelta(days=5), today() - timedelta(days=2)
    campaign = await create_campaign(
        tenant, program["id"], kind="RATE_BOOST", startsOn=first_day, endsOn=last_day, category="Shoes", boostBps=500
    )
    tehran = ZoneInfo("Asia/Tehran")
    starts = datetime(first_day.year, first_day.month, first_day.day, tzinfo=tehran).astimezone(UTC)
    ends = datetime(last_day.year, last_day.month, last_day.day, tzinfo=tehran).astimezone(UTC) + timedelta(days=1)
    assert (campaign["startsAt"], campaign["endsAt"], campaign["timeZone"]) == (
        starts.isoformat(),
        ends.isoformat(),
        "Asia/Tehran",
    )
    second = timedelta(seconds=1)
    shoes = {"category": "shoes"}

    await sale(tenant, codes["jane"], at=starts - second, metadata=shoes)  # before the period
    at_start = await sale(tenant, codes["jane"], at=starts, metadata=shoes)
    mixed = await sale(
        tenant,
        codes["jane"],
        at=starts + timedelta(days=1),
        amount=10_000,
        metadata={
            "items": [{"sku": "s-1", "category": "SHOES", "amount": 6000}, {"sku": "k-1", "category": "socks", "amount": 4000}]
        },
    )
    await sale(tenant, codes["jane"], at=starts + timedelta(days=1), metadata={"category": "socks"})  # another category
    at_end = await sale(tenant, codes["jane"], at=ends - second, metadata=shoes)
    await sale(tenant, codes["jane"], at=ends, metadata=shoes)  # the period is over
    await run_campaign_jobs(db)

    boosts = {r.trigger_action_id: r.amount for r in await campaign_rewards(db, campaign["id"])}
    assert {str(k): v for k, v in boosts.items()} == {
        at_start["action"]["id"]: 500,
        mixed["action"]["id"]: 300,
        at_end["action"]["id"]: 500,
    }


async def test_campaign_input_is_checked_with_typed_errors(tenant):
    program, _ = await program_with_referrers(tenant, "jane")
    cases = [
        ({"kind": "THRESHOLD_BONUS", "bonusAmount": 100}, "threshold", "REQUIRED"),
        ({"kind": "TIERED_RATE", "tiers": [{"fromSale": 2, "rateBps": 100}]}, "tiers", "INVALID_INPUT"),
        (
            {"kind": "TIERED_RATE", "tiers": [{"fromSale": 1, "rateBps": 900}, {"fromSale": 5, "rateBps": 100}]},
            "tiers",
            "INVALID_INPUT",
        ),
        ({"kind": "CONTEST", "topN": 0, "prizeAmount": 1}, "topN", "INVALID_INPUT"),
        ({"kind": "RATE_BOOST", "boostBps": 100, "currency": "XXQ", "category": "a"}, "currency", "INVALID_CURRENCY"),
        (
            {"kind": "RATE_BOOST", "boostBps": 100, "category": "a", "endsOn": (today() - timedelta(days=1)).isoformat()},
            "endsOn",
            "INVALID_INPUT",
        ),
    ]
    for values, field, code in cases:
        data = await tenant.gql(
            ops.CREATE_CAMPAIGN,
            {
                "input": {
                    "programId": program["id"],
                    "name": "x",
                    "currency": "USD",
                    "startsOn": today().isoformat(),
                    "endsOn": today().isoformat(),
                    **values,
                }
            },
        )
        assert data["createCampaign"]["campaign"] is None
        assert [(e["field"], e["code"]) for e in data["createCampaign"]["userErrors"]] == [(field, code)], values
    assert (await tenant.gql(ops.CAMPAIGNS, {"programId": program["id"]}))["campaigns"]["edges"] == []


async def test_a_cancelled_campaign_counts_nothing_more(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    campaign = await create_campaign(
        tenant, program["id"], kind="THRESHOLD_BONUS", startsOn=today(), endsOn=today(), threshold=1, bonusAmount=700
    )
    cancelled = await tenant.gql(ops.CANCEL_CAMPAIGN, {"id": campaign["id"]})
    assert cancelled["cancelCampaign"]["campaign"]["status"] == "CANCELLED"

    await sale(tenant, codes["jane"])
    await run_campaign_jobs(db)

    assert await campaign_rewards(db, campaign["id"]) == []


async def test_refunds_without_referral_or_unknown_orders_change_nothing(tenant, db):
    program, codes = await program_with_referrers(tenant, "jane")
    await create_campaign(tenant, program["id"], kind="CONTEST", startsOn=today(), endsOn=today(), topN=1, prizeAmount=100)
    await code_for(tenant, program["id"], "zed")
    await record(tenant, type="REFUND", customerExternalId="stranger", idempotencyKey="r-unknown", orderId="nope")
    assert await run_campaign_jobs(db) == 1  # looked, found nothing


async def test_a_sales_campaign_commission_waits_for_its_referrals_clearance_like_the_rules_rewards(tenant, db):
    program = await active_program(tenant)  # the default clearance: a quiet period, then a fresh check
    await allow_bursts(tenant, program["id"])
    await create_rule(tenant, program["id"], **credit_rule())
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    campaign = await create_campaign(
        tenant, program["id"], kind="RATE_BOOST", startsOn=today(), endsOn=today(), category="shoes", boostBps=1000
    )
    await sale(tenant, code, metadata={"category": "shoes"})
    await run_campaign_jobs(db)

    [boost] = await campaign_rewards(db, campaign["id"])
    assert (boost.amount, boost.status, boost.clearance_hold) == (1000, RewardStatus.HELD, True)
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 0

    assert await clear_due(db, at=days(60)) == 1  # the quiet period is over: screened again, cleared
    [boost] = await campaign_rewards(db, campaign["id"])
    assert (boost.status, boost.clearance_hold) == (RewardStatus.AVAILABLE, False)
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 1000
