"""Velocity as rolling counts over when things happened: a burst spread over hours is caught
against the referrer's own pace, clicks on a referrer's links count, and imported clicks
carry their own time (`trackClick(occurredAt)`, bounded)."""

from __future__ import annotations

from datetime import timedelta

from tests import graphql_ops as ops
from tests import scenarios
from tests.fraud import helpers as h
from tests.fraud.test_signals import code_of, days_ago, decision, fired, in_review, join, observation, quiet
from tests.rewards.helpers import days


async def click(tenant, code: str, device: str, **extra):
    data = await tenant.gql(ops.TRACK_CLICK, {"input": {"code": code, "deviceId": device, **extra}}, key=tenant.publishable_key)
    return data["trackClick"]


async def test_a_burst_spread_over_two_and_a_half_hours_is_caught_against_the_referrers_own_pace(tenant):
    program = await h.program_with_credit(tenant)
    code = await code_of(tenant, program, "alice")
    start = days_ago(3)
    joined = [
        await join(tenant, f"fan-{i}", code, at=start + i * timedelta(minutes=11), deviceId=f"dev-{i}") for i in range(14)
    ]  # never more than 6 in one hour: under the hourly threshold of 10
    decisions = [await decision(tenant, j["referral"]["id"]) for j in joined]
    assert all(
        observation(d, "referrals_per_hour") is None or not observation(d, "referrals_per_hour")["fired"] for d in decisions
    )
    assert [d["outcome"] for d in decisions[:7]] == ["ALLOW"] * 7
    eighth = decisions[7]
    burst = fired(eighth, "referrals_above_baseline", "alice")
    assert burst["value"] == 16 and burst["details"]["count"] == 8  # eight in 3 hours against a usual half
    assert eighth["outcome"] == "REVIEW"
    assert {j["referral"]["id"] for j in joined} <= await in_review(tenant, program)  # the first seven and the tail


async def test_a_steady_referrer_is_not_a_burst(tenant):
    program = await h.program_with_credit(tenant)
    code = await code_of(tenant, program, "bella")
    joined = [
        await join(tenant, f"friend-{i}", code, at=days_ago(10) + i * timedelta(hours=5), deviceId=f"dev-{i}") for i in range(12)
    ]  # twelve over two and a half days
    for j in joined:
        found = await decision(tenant, j["referral"]["id"])
        quiet(found, "referrals_above_baseline")
        assert found["outcome"] == "ALLOW"


async def test_clicks_on_a_referrers_links_count_at_the_time_they_happened(tenant):
    program = await h.program_with_credit(tenant)
    code = await code_of(tenant, program, "alice")
    for i in range(40):  # a bot: one click every 2 minutes, the last 80 minutes, imported
        made = await click(tenant, code, f"bot-{i}", occurredAt=(days(0) - timedelta(minutes=2 * i + 1)).isoformat())
        assert made["userErrors"] == []
    joined = await join(tenant, "bob", code, deviceId="dev-bob")
    found = await decision(tenant, joined["referral"]["id"])
    assert fired(found, "clicks_per_hour", "alice")["value"] == 30  # the 30 of the last hour
    assert observation(found, "clicks_per_day")["value"] == 40
    assert found["score"] >= 30


async def test_an_imported_click_is_dated_within_thirty_days_and_never_in_the_future(tenant):
    program = await scenarios.active_program(tenant)
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]
    for when in (days(1), days(-31)):
        refused = await click(tenant, code, "dev-1", occurredAt=when.isoformat())
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("occurredAt", "INVALID_INPUT")]
        assert refused["attributionToken"] is None
    naive = await tenant.raw(
        ops.TRACK_CLICK, {"input": {"code": code, "occurredAt": "2026-11-01T10:00:00"}}, key=tenant.publishable_key
    )
    assert "errors" in naive or naive["data"]["trackClick"]["userErrors"]
    old = await click(tenant, code, "dev-2", occurredAt=days(-29).isoformat())
    assert old["userErrors"] == [] and old["attributionToken"].startswith("at_")
    assert old["expiresAt"] < days(2).isoformat()  # the 30-day attribution window counts from the click
