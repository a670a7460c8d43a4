"""Contests: a leaderboard where ties share a rank, late refunds move referrers down until
the refund window has passed, then a final standing with prizes granted once; referrers see
the public top by display name and their own line only, through the widget's signed session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from tests import graphql_ops as ops
from tests.campaigns.helpers import (
    campaign_rewards,
    create_campaign,
    finalize_due,
    program_with_referrers,
    refund,
    run_campaign_jobs,
    sale,
    today,
)
from tests.rewards.helpers import assert_ledger_consistent, balance
from tests.widget.helpers import signed, widget_secret


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


def lines(board) -> list[tuple]:
    return [(line["rank"], line["displayName"], line["sales"], line["winsPrize"]) for line in board["top"]]


async def december(tenant, db):
    """A contest that ended yesterday, top 2 win $200, with a 3-day refund window:
    jane 3 sales, ken 3, lea 2, max 1."""
    program, codes = await program_with_referrers(tenant, "jane", "ken", "lea", "max")
    contest = await create_campaign(
        tenant,
        program["id"],
        kind="CONTEST",
        name="December",
        topN=2,
        prizeAmount=20_000,
        refundWindowDays=3,
        startsOn=today() - timedelta(days=10),
        endsOn=today() - timedelta(days=1),
    )
    during = utcnow() - timedelta(days=5)
    purchases = {
        name: [await sale(tenant, codes[name], at=during) for _ in range(count)]
        for name, count in (("jane", 3), ("ken", 3), ("lea", 2), ("max", 1))
    }
    await run_campaign_jobs(db)
    return contest, purchases


async def leaderboard(tenant, contest) -> dict:
    return (await tenant.gql(ops.CAMPAIGN_LEADERBOARD, {"campaignId": contest["id"], "first": 10}))["campaignLeaderboard"]


async def test_ties_share_a_rank_and_a_late_refund_moves_a_referrer_down_before_the_standing_is_final(tenant, db):
    contest, purchases = await december(tenant, db)

    board = await leaderboard(tenant, contest)
    assert board["status"] == "PROVISIONAL"
    assert lines(board) == [(1, "Jane S.", 3, True), (1, "Ken S.", 3, True), (3, "Lea S.", 2, False), (4, "Max S.", 1, False)]
    assert [line["referrerExternalId"] for line in board["top"]] == ["jane", "ken", "lea", "max"]  # the merchant's view

    await refund(tenant, purchases["ken"][0])  # within the refund window
    await run_campaign_jobs(db)

    board = await leaderboard(tenant, contest)
    # ken and lea now tie for 2nd: both are within the top 2, so both win (the documented tie rule)
    assert lines(board) == [(1, "Jane S.", 3, True), (2, "Ken S.", 2, True), (2, "Lea S.", 2, True), (4, "Max S.", 1, False)]


async def test_the_standing_is_fixed_and_prizes_granted_once_only_after_the_refund_window(tenant, db):
    contest, purchases = await december(tenant, db)
    final_after = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=3)

    assert await finalize_due(db, at=final_after - timedelta(seconds=1)) == 0  # refunds may still come
    assert await campaign_rewards(db, contest["id"]) == []

    assert await finalize_due(db, at=final_after) == 1
    assert await finalize_due(db, at=final_after + timedelta(days=1)) == 0  # never twice
    prizes = await campaign_rewards(db, contest["id"])
    assert [(r.amount, r.source) for r in prizes] == [(20_000, "CAMPAIGN")] * 2
    assert (await balance(tenant, "jane", "COMMISSION"))["available"] == 20_000
    assert (await balance(tenant, "ken", "COMMISSION"))["available"] == 20_000
    assert (await balance(tenant, "lea", "COMMISSION"))["available"] == 0

    # a refund after the standing is final changes neither the standing nor the prizes
    await refund(tenant, purchases["jane"][0])
    await run_campaign_jobs(db)
    board = await leaderboard(tenant, contest)
    assert board["status"] == "FINAL"
    assert lines(board) == [(1, "Jane S.", 3, True), (1, "Ken S.", 3, True), (3, "Lea S.", 2, False), (4, "Max S.", 1, False)]
    assert len(await campaign_rewards(db, contest["id"])) == 2


async def test_a_referrer_sees_the_public_top_by_display_name_and_only_their_own_line(tenant, db):
    contest, _ = await december(tenant, db)
    secret = await widget_secret(tenant)
    identity = signed(secret, "max")
    variables = {
        "campaignId": contest["id"],
        "customer": "max",
        "timestamp": identity["timestamp"],
        "signature": identity["signature"],
    }

    body = await tenant.raw(ops.REFERRER_CAMPAIGN_LEADERBOARD, variables, key=tenant.publishable_key)
    board = body["data"]["referrerCampaignLeaderboard"]
    assert board["own"] == {"rank": 4, "displayName": "Max S.", "sales": 1, "winsPrize": False, "referrerExternalId": None}
    assert all(line["referrerExternalId"] is None for line in board["top"])
    assert "@" not in str(body)  # no emails

    # from a browser, another referrer's id without their signature shows nothing
    forged = await tenant.raw(ops.REFERRER_CAMPAIGN_LEADERBOARD, {**variables, "customer": "jane"}, key=tenant.publishable_key)
    assert forged["data"] is None and forged["errors"][0]["extensions"]["code"] == "SIGNATURE_INVALID"
    unsigned = await tenant.raw(
        ops.REFERRER_CAMPAIGN_LEADERBOARD, {"campaignId": contest["id"], "customer": "max"}, key=tenant.publishable_key
    )
    assert unsigned["errors"][0]["extensions"]["code"] == "REQUIRED"
