"""Seasonal commission rates: a commission rule's date ranges with their own rates, in the
merchant's time zone; the rate applied is the one in force when the action occurred."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.db import utcnow
from tests.partners.helpers import affiliate_program, enrol, sale, sales
from tests.rewards.helpers import CREATE_RULE
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for, record

NEW_YORK = ZoneInfo("America/New_York")
RULE_HISTORY = """query($id: ID!) { rewardRule(ruleId: $id) { history { version percentBps
    seasons { startsOn endsOn percentBps timeZone } } } }"""
SIMULATE = """query($programId: ID!, $rules: [RewardRuleInput!]!, $from: DateTime!, $to: DateTime!) {
  simulateRewardRules(programId: $programId, rules: $rules, from: $from, to: $to) {
    proposedTotals { kind unit amount count } } }"""


async def in_new_york(tenant) -> None:
    data = await tenant.gql("""mutation { setLocaleSettings(input: {timeZone: "America/New_York"}) {
        userErrors { field code message } } }""")
    assert data["setLocaleSettings"]["userErrors"] == []


def season_around_the_boundary() -> tuple[dict, datetime, datetime]:
    """A season starting three local days ago, and the last second before it and the first in it."""
    first_day = (utcnow().astimezone(NEW_YORK) - timedelta(days=3)).date()
    season = {"startsOn": first_day.isoformat(), "endsOn": (first_day + timedelta(days=1)).isoformat(), "percentBps": 2000}
    midnight = datetime.combine(first_day, time(0), tzinfo=NEW_YORK)
    return season, midnight - timedelta(seconds=1), midnight


def commission_rule(season: dict) -> dict:
    return {
        "name": "10%, 20% in season",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "COMMISSION",
        "percentBps": 1000,
        "seasons": [season],
    }


async def test_a_partner_sale_at_235959_earns_the_old_rate_and_at_000000_local_the_seasons(tenant):
    await in_new_york(tenant)
    season, before, first_second = season_around_the_boundary()
    program = await affiliate_program(tenant, rule=commission_rule(season))
    ann = await enrol(tenant, program["id"], "ann")

    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="eve", occurredAt=before.isoformat())
    await sale(tenant, "cid", code=ann["code"], amount=10_000, key="day-one", occurredAt=first_second.isoformat())

    by_order = {s["orderId"]: s for s in await sales(tenant, program["id"])}
    assert (by_order["eve"]["affiliateBps"], by_order["eve"]["commission"]) == (1000, 1000)
    assert (by_order["day-one"]["affiliateBps"], by_order["day-one"]["commission"]) == (2000, 2000)


async def test_a_referral_commission_uses_the_season_live_and_in_the_simulation(tenant):
    await in_new_york(tenant)
    season, before, first_second = season_around_the_boundary()
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    created = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": commission_rule(season)})
    assert created["createRewardRule"]["userErrors"] == []
    rule_id = created["createRewardRule"]["rewardRule"]["ruleId"]

    for buyer, at in (("bob", before), ("cid", first_second)):
        result = await record(
            tenant,
            type="PURCHASE",
            customerExternalId=buyer,
            idempotencyKey=f"o-{buyer}",
            orderId=buyer,
            amount=10_000,
            currency="USD",
            referralCode=code,
            occurredAt=at.isoformat(),
        )
        assert result["userErrors"] == []
    data = await tenant.gql("""query { rewards(first: 10) { edges { node { amount unit kind } } } }""")
    amounts = sorted(edge["node"]["amount"] for edge in data["rewards"]["edges"] if edge["node"]["kind"] == "COMMISSION")
    assert amounts == [1000, 2000]

    history = (await tenant.gql(RULE_HISTORY, {"id": rule_id}))["rewardRule"]["history"]
    assert history[0]["seasons"] == [season | {"timeZone": "America/New_York"}]

    simulated = await tenant.gql(
        SIMULATE,
        {
            "programId": program["id"],
            "rules": [commission_rule(season | {"percentBps": 3000})],
            "from": (before - timedelta(days=1)).isoformat(),
            "to": utcnow().isoformat(),
        },
    )
    (total,) = simulated["simulateRewardRules"]["proposedTotals"]
    assert (total["amount"], total["count"]) == (1000 + 3000, 2)


async def test_overlapping_seasons_and_seasons_on_other_rules_are_refused(tenant):
    program = await active_program(tenant)
    overlapping = commission_rule({"startsOn": "2026-12-01", "endsOn": "2026-12-10", "percentBps": 2000})
    overlapping["seasons"].append({"startsOn": "2026-12-10", "endsOn": "2026-12-31", "percentBps": 3000})
    data = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": overlapping})
    assert [(e["field"], e["code"]) for e in data["createRewardRule"]["userErrors"]] == [("seasons.1.startsOn", "INVALID_INPUT")]

    backwards = commission_rule({"startsOn": "2026-12-10", "endsOn": "2026-12-01", "percentBps": 2000})
    data = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": backwards})
    assert data["createRewardRule"]["userErrors"][0]["field"] == "seasons.0.endsOn"

    credit = {
        "name": "Give $10",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 1000,
        "currency": "USD",
        "seasons": [{"startsOn": "2026-12-01", "endsOn": "2026-12-10", "percentBps": 2000}],
    }
    data = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": credit})
    assert data["createRewardRule"]["userErrors"][0]["field"] == "seasons"


async def test_seasons_are_checked_in_the_order_given_and_keep_their_zone_when_the_rule_is_switched_off(tenant):
    program = await active_program(tenant)
    out_of_order = commission_rule({"startsOn": "2026-12-20", "endsOn": "2026-12-31", "percentBps": 2000})
    out_of_order["seasons"].append({"startsOn": "2026-12-01", "endsOn": "2026-12-20", "percentBps": 3000})
    data = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": out_of_order})
    assert [(e["field"], e["code"]) for e in data["createRewardRule"]["userErrors"]] == [("seasons.0.startsOn", "INVALID_INPUT")]

    await in_new_york(tenant)
    rule = commission_rule({"startsOn": "2026-12-01", "endsOn": "2026-12-31", "percentBps": 2000})
    created = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": rule})
    rule_id = created["createRewardRule"]["rewardRule"]["ruleId"]
    moved = await tenant.gql("""mutation { setLocaleSettings(input: {timeZone: "Asia/Tokyo"}) { userErrors { code } } }""")
    assert moved["setLocaleSettings"]["userErrors"] == []
    switched = await tenant.gql(
        """mutation($id: ID!) { setRewardRuleEnabled(ruleId: $id, enabled: false) {
        userErrors { code } } }""",
        {"id": rule_id},
    )
    assert switched["setRewardRuleEnabled"]["userErrors"] == []

    history = (await tenant.gql(RULE_HISTORY, {"id": rule_id}))["rewardRule"]["history"]
    assert [h["seasons"][0]["timeZone"] for h in history] == ["America/New_York", "America/New_York"]
