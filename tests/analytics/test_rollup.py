"""The rollups equal a recount from the raw rows: after the job has run once, late actions
(reported days after they happened), refunds, clawbacks by a fraud decision and new clicks are
picked up by the next run, which recounts only the days they belong to; a backfill from
scratch gives the same rows."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from app.analytics import jobs, leaderboards, rollup
from app.db import create_session_factory
from tests.analytics.helpers import (
    days_ago,
    iso,
    recounted,
    recounted_boards,
    report,
    roll_up,
    stored,
    stored_boards,
    today,
)
from tests.analytics.test_reports import click, shop_with_two_referrers, signed_up
from tests.fraud.helpers import RESOLVE, REVIEWS, without_referrer_memory
from tests.rewards.helpers import purchase, refund
from tests.scenarios import code_for

ZONE = ZoneInfo("UTC")


async def test_rollups_equal_a_recount_after_late_events_refunds_and_reversals(db, tenant):
    program = await shop_with_two_referrers(tenant)
    await without_referrer_memory(tenant, program)  # the review below rejects hal's and ivy's referrals only
    assert await roll_up(db, tenant.id) == 3  # the first run rebuilds: every day since the first action
    first = today() - timedelta(days=20)
    assert await stored(db, tenant.id) == await recounted(db, tenant.id, ZONE, first, today())
    await boards_equal_a_recount(db, tenant.id)
    before = await stored(db, tenant.id)

    # Reported now, happened twelve and eleven days ago: a day the last run had no reason to touch.
    jane = (await tenant.gql("""query { customer(externalId: "jane") { referralCodes { code } } }"""))["customer"][
        "referralCodes"
    ][0]["code"]
    await signed_up(tenant, "gus", code=jane, at=days_ago(12))
    await purchase(tenant, "gus", "order-g", 9000, occurredAt=iso(days_ago(11)))
    await refund(tenant, "order-g", "refund-g", 9000, customer="gus")  # the whole order: his credit is taken back
    await refund(tenant, "order-m", "refund-m", 500, customer="max")  # part of max's order
    await click(tenant, jane, "dev-late", "sms")
    # a fraud review rejected: the referral's reward is clawed back
    await signed_up(tenant, "ivy", code=jane, deviceId="dev-bob-shared")
    await signed_up(tenant, "hal", code=jane, deviceId="dev-bob-shared")  # a device already seen: review
    await purchase(tenant, "hal", "order-h", 1000)  # his referrer's credit is held by the review
    reviews = (await tenant.gql(REVIEWS, {"programId": program, "status": "OPEN"}))["fraudReviews"]["edges"]
    assert reviews
    for review in reviews:
        resolved = await tenant.gql(RESOLVE, {"id": review["node"]["id"], "resolution": "REJECT", "note": "farm"})
        assert resolved["resolveFraudReview"]["userErrors"] == []

    stale = await stored(db, tenant.id)
    fresh = await recounted(db, tenant.id, ZONE, first, today())
    assert stale == before and stale != fresh  # nothing moves until the job runs
    recounted_days = await roll_up(db, tenant.id)
    assert recounted_days < 13  # not every day since gus's: only those touched since the last run (and its margin)
    assert await stored(db, tenant.id) == fresh
    boards = await boards_equal_a_recount(db, tenant.id)
    week_of_gus = today() - timedelta(days=12)
    week_of_gus -= timedelta(days=week_of_gus.weekday())
    board_of_gus_week = next(v for (_p, f, last), v in boards.items() if f == week_of_gus and last - f == timedelta(days=6))
    assert board_of_gus_week[0] >= 1 and board_of_gus_week[1][0][4] >= 1  # jane's late referral ranks her in that week
    gus_day = (today() - timedelta(days=12)).isoformat()
    assert any(row[1].isoformat() == gus_day and row[2] == rollup.REFERRED for row in fresh)

    # the job as the worker runs it, then the backfill command, change nothing
    await jobs.roll_up_all(create_session_factory(db, reason="tests: analytics job"))
    assert await stored(db, tenant.id) == fresh
    async with create_session_factory(db, reason="tests: rebuild")() as session:
        await rollup.rebuild(session, merchant_id=tenant.id)
        await session.commit()
    assert await stored(db, tenant.id) == fresh
    assert await stored_boards(db, tenant.id) == boards

    eleven = today() - timedelta(days=11)
    late = await report(tenant, program, eleven, eleven)
    assert late["money"]["revenue"] == [
        {"currency": "USD", "purchases": 1, "gross": 9000, "refunds": 0, "refunded": 0, "net": 9000}
    ]
    assert late["funnel"]["total"]["qualified"] == 1
    now = await report(tenant, program, today(), today())
    usd = next(r for r in now["money"]["revenue"] if r["currency"] == "USD")
    assert (usd["gross"], usd["refunded"], usd["net"]) == (7000 + 1000, 2000 + 9000 + 500, 8000 - 11500)
    # granted today: bob, carol, lee, max, then gus and hal; taken back: carol's, gus's (refund), hal's (rejected)
    assert now["money"]["rewardCost"] == [{"kind": "CREDIT", "unit": "USD", "granted": 6000, "takenBack": 3000, "net": 3000}]


async def boards_equal_a_recount(db, merchant_id) -> dict:
    """Every maintained board is stored and equals the ranking of the recounted referrals."""
    async with create_session_factory(db, reason="tests: first day")() as session:
        first = await rollup.first_day(session, merchant_id=merchant_id, zone=ZONE)
    periods = leaderboards.maintained_periods(first, today())
    stored_now = await stored_boards(db, merchant_id)
    assert {(f, last) for (_p, f, last) in stored_now} == periods
    assert stored_now == await recounted_boards(db, merchant_id, ZONE, first, periods)
    assert any(entries for _active, entries in stored_now.values())
    return stored_now


async def test_backfill_command_rebuilds_every_merchant(db, tenant, other_tenant):
    await shop_with_two_referrers(tenant)
    await shop_with_two_referrers(other_tenant)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "analytics", "backfill"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "DATABASE_URL": db.url.render_as_string(hide_password=False), "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    assert f"{tenant.id}: " in printed and f"{other_tenant.id}: " in printed
    for merchant in (tenant, other_tenant):
        rows = await stored(db, merchant.id)
        assert rows and rows == await recounted(db, merchant.id, ZONE, today() - timedelta(days=5), today())
        assert any(row[0] == "referrer" for row in rows)

    def programs(rows):
        return {row[1] if row[0] == "referrer" else row[0] for row in rows}

    assert programs(await stored(db, tenant.id)).isdisjoint(programs(await stored(db, other_tenant.id)))


async def test_a_late_referral_moves_the_rank_changes_of_the_week_after(db, tenant, monkeypatch):
    """A board's previous ranks come from the period before it: a referral reported late into
    that period re-ranks the board, though none of the board's own days changed."""
    monkeypatch.setattr(rollup, "LATE_MARGIN", timedelta(0))  # the second run looks only at the late rows
    program = uuid.UUID(await shop_with_two_referrers(tenant))
    await without_referrer_memory(tenant, str(program))
    jane = (await code_for(tenant, str(program), "jane"))["code"]
    kim = (await code_for(tenant, str(program), "kim"))["code"]
    for name, code, ago in (("kai", kim, 21), ("kit", kim, 14)):
        await signed_up(tenant, name, code=code, at=days_ago(ago))
        await purchase(tenant, name, f"order-{name}", 1000, occurredAt=iso(days_ago(ago)))
    await roll_up(db, tenant.id)
    week = (today() - timedelta(days=14)) - timedelta(days=(today() - timedelta(days=14)).weekday())

    def kim_in(boards):
        _active, entries = boards[(program, week, week + timedelta(days=6))]
        return [(rank, previous, qualified) for rank, previous, _id, qualified, _referred in entries]

    assert kim_in(await stored_boards(db, tenant.id)) == [(1, 1, 1)]  # kim alone, first both weeks
    for name in ("jo", "joy"):  # jane's friends of three weeks ago, reported now
        await signed_up(tenant, name, code=jane, at=days_ago(21))
        await purchase(tenant, name, f"order-{name}", 1000, occurredAt=iso(days_ago(21)))
    await roll_up(db, tenant.id)
    assert kim_in(await stored_boards(db, tenant.id)) == [(1, 2, 1)]  # jane's two put kim second the week before
    await boards_equal_a_recount(db, tenant.id)
