"""simulateRewardRules: proposed rules replayed on recorded actions, as live evaluation would
grant them, next to what the current rules granted; nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from app.db import Base
from tests import graphql_ops as ops
from tests.campaigns.helpers import campaign_rewards, create_campaign, program_with_referrers, run_campaign_jobs, sale, today
from tests.conftest import system_connection
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for

NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


CREATE_RULE = """
mutation($programId: ID!, $input: RewardRuleInput!) {
  createRewardRule(programId: $programId, input: $input) {
    rewardRule { ruleId name }
    userErrors { field code message }
  }
}"""

UPDATE_RULE = """
mutation($ruleId: ID!, $input: RewardRuleInput!) {
  updateRewardRule(ruleId: $ruleId, input: $input) { rewardRule { version } userErrors { field code message } }
}"""

RECORD = ops.RECORD_ACTION_WITH_REWARDS

SIMULATE = """
query($programId: ID!, $rules: [RewardRuleInput!]!, $from: DateTime!, $to: DateTime!) {
  simulateRewardRules(programId: $programId, rules: $rules, from: $from, to: $to) {
    actionsReplayed
    proposed { index name count referrerCount refereeCount totals { kind unit amount count } }
    proposedTotals { kind unit amount count }
    current { ruleId name count voidedCount reversedCount totals { kind unit amount count } }
    currentTotals { kind unit amount count }
  }
}"""

GIVE_TEN = {
    "name": "Give $10",
    "trigger": "PURCHASE",
    "recipient": "REFERRER",
    "kind": "CREDIT",
    "amount": 1000,
    "currency": "USD",
}

# (days ago, referee, type, amount, referrer whose code the action carries)
SCRIPT: list[tuple[float, str, str, int | None, str | None]] = [
    (70, "dave", "PURCHASE", 8000, "mike"),
    (60, "bob", "SIGNUP", None, "jane"),
    (50, "bob", "PURCHASE", 5000, None),
    (45, "erin", "SIGNUP", None, "mike"),
    (40, "carol", "PURCHASE", 1500, "jane"),
    (30, "dave", "PURCHASE", 4000, None),
    (30, "frank", "PURCHASE", 9000, None),  # never referred: not replayed
    (20, "bob", "PURCHASE", 3000, None),
    (10, "carol", "PURCHASE", 2500, None),
    (2, "erin", "PURCHASE", 2000, None),
]
CAROL_REFUND = (8, "carol", "REFUND", 1500, None)  # of carol's first order (day 40); not replayed


async def play(tenant, program_id: str, prefix: str, *, refund: bool = False) -> list[tuple[float, list[dict]]]:
    """Record SCRIPT (customers named `prefix + name`) in time order, as the shop reports it;
    returns what each action really granted."""
    codes = {name: (await code_for(tenant, program_id, f"{prefix}{name}"))["code"] for name in ("jane", "mike")}
    steps = sorted(SCRIPT + ([CAROL_REFUND] if refund else []), key=lambda s: -s[0])
    granted = []
    for n, (days, who, type_, amount, referrer) in enumerate(steps):
        order = f"{prefix}carol-40" if type_ == "REFUND" else f"{prefix}{who}-{days}"
        values: dict[str, Any] = {
            "type": type_,
            "customerExternalId": f"{prefix}{who}",
            "idempotencyKey": f"{prefix}{n}",
            "occurredAt": days_ago(days),
            "programId": program_id,
            "orderId": order,
        }
        if amount is not None:
            values |= {"amount": amount, "currency": "USD"}
        if referrer is not None:
            values["referralCode"] = codes[referrer]
        result = (await tenant.gql(RECORD, {"input": values}))["recordAction"]
        assert result["userErrors"] == [], result
        granted.append((days, result["rewards"]))
    return granted


async def create_rule(tenant, program_id: str, rule: dict) -> str:
    data = (await tenant.gql(CREATE_RULE, {"programId": program_id, "input": rule}))["createRewardRule"]
    assert data["userErrors"] == []
    return data["rewardRule"]["ruleId"]


async def simulate(tenant, program_id: str, rules: list[dict], start: str, end: str) -> dict:
    data = await tenant.gql(SIMULATE, {"programId": program_id, "rules": rules, "from": start, "to": end})
    return data["simulateRewardRules"]


async def simulate_error(tenant, program_id: str, rules: list[dict], start: str, end: str, **kw) -> dict:
    body = await tenant.raw(SIMULATE, {"programId": program_id, "rules": rules, "from": start, "to": end}, **kw)
    assert body["data"] is None and len(body["errors"]) == 1, body
    return body["errors"][0]


def total(kind: str, unit: str, amount: int, count: int) -> dict:
    return {"kind": kind, "unit": unit, "amount": amount, "count": count}


async def row_counts(engine) -> dict[str, int]:
    async with system_connection(engine) as connection:
        return {
            table.name: await connection.scalar(select(func.count()).select_from(table)) for table in Base.metadata.sorted_tables
        }


PROPOSED = [
    {
        "name": "10% commission",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "COMMISSION",
        "percentBps": 1000,
        "recurringMonths": 12,
        "conditions": {"minActionAmount": 2000, "minActionCurrency": "USD"},
    },
    {
        "name": "Bonus at 2nd referral",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 5000,
        "currency": "USD",
        "conditions": {"milestone": 2},
    },
    {
        "name": "Welcome points",
        "trigger": "PURCHASE",
        "recipient": "REFEREE",
        "kind": "POINTS",
        "amount": 500,
        "conditions": {"firstActionOnly": True},
    },
    {
        "name": "Switched off",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 100,
        "currency": "USD",
        "enabled": False,
    },
]


async def test_simulation_prices_proposed_rules_next_to_what_current_rules_granted(tenant, db):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    rule_id = await create_rule(tenant, program["id"], GIVE_TEN)
    granted = await play(tenant, program["id"], "", refund=True)
    # The rule changes afterwards: the current side names the version that granted.
    renamed = await tenant.gql(UPDATE_RULE, {"ruleId": rule_id, "input": GIVE_TEN | {"name": "Give $15", "amount": 1500}})
    assert renamed["updateRewardRule"]["rewardRule"]["version"] == 2

    start, end = days_ago(55), days_ago(5)
    before = await row_counts(db)
    statements: list[str] = []
    transactions: list[str] = []
    record_statement = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    record_commit = lambda conn: transactions.append("COMMIT")  # noqa: E731
    event.listen(db.sync_engine, "before_cursor_execute", record_statement)
    event.listen(db.sync_engine, "commit", record_commit)
    try:
        result = await simulate(tenant, program["id"], PROPOSED, start, end)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", record_statement)
        event.remove(db.sync_engine, "commit", record_commit)
    assert await row_counts(db) == before
    writes = [s for s in statements if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "SAVEPOINT")]
    assert writes == [] and transactions == []

    # In [day 55, day 5): bob P50, erin S45, carol P40, dave P30, bob P20, carol P10. Not: the
    # refund (day 8), frank (no referral), dave P70, bob S60, erin P2.
    assert result["actionsReplayed"] == 6
    assert result["proposed"] == [
        # recurring 10 % on orders >= $20: bob 5000 + dave 4000 + bob 3000 + carol 2500 (not carol's 1500)
        {
            "index": 0,
            "name": "10% commission",
            "count": 4,
            "referrerCount": 4,
            "refereeCount": 0,
            "totals": [total("COMMISSION", "USD", 1450, 4)],
        },
        # jane's 2nd qualified referral is carol's on day 40; mike's 2nd (erin) qualifies on day 2, after
        # dave's day-30 purchase, so not in the period
        {
            "index": 1,
            "name": "Bonus at 2nd referral",
            "count": 1,
            "referrerCount": 1,
            "refereeCount": 0,
            "totals": [total("CREDIT", "USD", 5000, 1)],
        },
        # first purchases in the period: bob's and carol's (dave bought first on day 70)
        {
            "index": 2,
            "name": "Welcome points",
            "count": 2,
            "referrerCount": 0,
            "refereeCount": 2,
            "totals": [total("POINTS", "POINTS", 1000, 2)],
        },
        {"index": 3, "name": "Switched off", "count": 0, "referrerCount": 0, "refereeCount": 0, "totals": []},
    ]
    assert result["proposedTotals"] == [
        total("COMMISSION", "USD", 1450, 4),
        total("CREDIT", "USD", 5000, 1),
        total("POINTS", "POINTS", 1000, 2),
    ]
    # Give $10 paid once per referral: bob's (day 50) and carol's (day 40, reversed by the refund)
    # in the period; dave's (day 70) and erin's (day 2) outside it.
    assert result["current"] == [
        {
            "ruleId": rule_id,
            "name": "Give $10",
            "count": 2,
            "voidedCount": 0,
            "reversedCount": 1,
            "totals": [total("CREDIT", "USD", 2000, 2)],
        },
    ]
    assert result["currentTotals"] == [total("CREDIT", "USD", 2000, 2)]
    # ... which is what recordAction said it granted for those actions
    really = [r for days, rewards in granted if 5 < days <= 55 for r in rewards]
    assert sum(r["amount"] for r in really) == 2000 and len(really) == 2

    # No rules: nothing proposed, the current side alone.
    empty = await simulate(tenant, program["id"], [], start, end)
    assert empty["proposed"] == [] and empty["proposedTotals"] == [] and empty["current"] == result["current"]
    assert await row_counts(db) == before


CROSS_CHECK = [
    {
        "name": "10% up to 2 per referrer",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "COMMISSION",
        "percentBps": 1000,
        "recurringMonths": 12,
        "conditions": {"capPerReferrerLifetime": 2},
    },
    {
        "name": "First purchase points",
        "trigger": "PURCHASE",
        "recipient": "BOTH",
        "kind": "POINTS",
        "amount": 300,
        "conditions": {"firstActionOnly": True},
    },
    {
        "name": "2nd referral bonus",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 700,
        "currency": "USD",
        "conditions": {"milestone": 2},
    },
    {
        "name": "15% off orders over $20",
        "trigger": "PURCHASE",
        "recipient": "REFEREE",
        "kind": "DISCOUNT",
        "percentBps": 1500,
        "conditions": {"minActionAmount": 2000, "minActionCurrency": "USD", "withinDaysOfReferral": 30},
    },
    {"name": "Signup credit", "trigger": "SIGNUP", "recipient": "BOTH", "kind": "CREDIT", "amount": 200, "currency": "USD"},
]


async def test_simulated_rules_grant_what_the_same_rules_really_granted(tenant):
    # Program A runs Give $10; program B really runs the proposed rules. Same actions in both.
    a = await active_program(tenant, clearance=PAY_AT_SIGNUP, name="A")
    b = await active_program(tenant, clearance=PAY_AT_SIGNUP, name="B")
    await create_rule(tenant, a["id"], GIVE_TEN)
    for rule in CROSS_CHECK:
        await create_rule(tenant, b["id"], rule)
    await play(tenant, a["id"], "a-")
    granted_b = await play(tenant, b["id"], "b-")

    start, end = days_ago(100), (NOW + timedelta(minutes=1)).isoformat()
    real = await simulate(tenant, b["id"], [], start, end)
    on_a = await simulate(tenant, a["id"], CROSS_CHECK, start, end)
    on_b = await simulate(tenant, b["id"], CROSS_CHECK, start, end)

    expected = [
        # mike: dave 8000, dave 4000 (cap reached before erin); jane: bob 5000, carol 1500 (cap)
        ("10% up to 2 per referrer", [total("COMMISSION", "USD", 1850, 4)]),
        # first purchases of dave, bob, carol and erin, to both sides
        ("First purchase points", [total("POINTS", "POINTS", 2400, 8)]),
        # jane at carol's purchase (day 40), mike at erin's (day 2)
        ("2nd referral bonus", [total("CREDIT", "USD", 1400, 2)]),
        # once per referral, orders >= $20: dave 8000, bob 5000, carol 2500 (her 1500 is too small), erin 2000
        ("15% off orders over $20", [total("DISCOUNT", "PERCENT", 6000, 4)]),
        # bob's and erin's signups, to both sides
        ("Signup credit", [total("CREDIT", "USD", 800, 4)]),
    ]
    assert [(r["name"], r["totals"]) for r in real["current"]] == expected
    assert [(r["name"], r["totals"]) for r in on_a["proposed"]] == expected
    assert [(r["name"], r["totals"]) for r in on_b["proposed"]] == expected
    assert on_a["proposedTotals"] == on_b["proposedTotals"] == real["currentTotals"]
    assert on_a["actionsReplayed"] == on_b["actionsReplayed"] == 9
    # and the real side is what recordAction reported
    assert sum(len(rewards) for _, rewards in granted_b) == sum(r["count"] for r in real["current"]) == 22
    # per recipient
    points = on_a["proposed"][1]
    assert (points["referrerCount"], points["refereeCount"]) == (4, 4)


async def test_simulation_refuses_bad_input(tenant, other_tenant):
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    start, end = days_ago(30), days_ago(0)

    error = await simulate_error(tenant, program["id"], [GIVE_TEN, GIVE_TEN | {"amount": 0}], start, end)
    assert error["extensions"]["code"] == "INVALID_INPUT" and error["message"].endswith("(rules.1.amount)")
    error = await simulate_error(tenant, program["id"], [GIVE_TEN | {"currency": "XYZ"}], start, end)
    assert error["extensions"]["code"] == "INVALID_CURRENCY" and error["message"].endswith("(rules.0.currency)")
    bad_milestone = GIVE_TEN | {"recipient": "REFEREE", "conditions": {"milestone": 2}}
    error = await simulate_error(tenant, program["id"], [bad_milestone], start, end)
    assert error["message"].endswith("(rules.0.conditions.milestone)")
    error = await simulate_error(tenant, program["id"], [GIVE_TEN] * 21, start, end)
    assert error["extensions"]["code"] == "INVALID_INPUT" and error["message"].endswith("(rules)")

    for bad_start, bad_end in ((end, start), (start, start), (days_ago(400), days_ago(0))):
        error = await simulate_error(tenant, program["id"], [GIVE_TEN], bad_start, bad_end)
        assert error["extensions"]["code"] == "INVALID_INPUT" and error["message"].endswith("(to)")
    error = await simulate_error(tenant, program["id"], [GIVE_TEN], "2026-01-01T00:00:00", end)
    assert error["extensions"]["code"] == "INVALID_INPUT" and error["message"].endswith("(from)")
    assert await simulate(tenant, program["id"], [GIVE_TEN], days_ago(366), days_ago(0))  # 366 days is allowed

    theirs = await active_program(other_tenant, clearance=PAY_AT_SIGNUP)
    error = await simulate_error(tenant, theirs["id"], [GIVE_TEN], start, end)
    assert error["extensions"]["code"] == "NOT_FOUND" and error["message"].endswith("(programId)")
    error = await simulate_error(tenant, "not-an-id", [GIVE_TEN], start, end)
    assert error["extensions"]["code"] == "INVALID_ID"
    error = await simulate_error(tenant, program["id"], [GIVE_TEN], start, end, key=tenant.publishable_key)
    assert error["extensions"]["code"] == "FORBIDDEN"


BUDGETED = [
    {
        "name": "$10 each, $25 a month",
        "trigger": "PURCHASE",
        "recipient": "BOTH",
        "kind": "CREDIT",
        "amount": 1000,
        "currency": "USD",
        "conditions": {"programMonthlyBudget": 2500},
    },
    {
        "name": "10% within the budget",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "COMMISSION",
        "percentBps": 1000,
        "recurringMonths": 12,
        "conditions": {"programMonthlyBudget": 2500},
    },
    {
        "name": "100 points, 2 a month",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "POINTS",
        "amount": 100,
        "conditions": {"capPerReferrerMonthly": 2},
    },
]


async def test_budgets_and_monthly_caps_count_across_rules_as_live(tenant):
    # Actions happen now, so the live side's reward times (when recorded) and the simulation's
    # (when the action happened) fall in the same month.
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    for rule in BUDGETED:
        await create_rule(tenant, program["id"], rule)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    for n, (who, amount) in enumerate([("bob", 20000), ("carol", 1000), ("dave", 3000), ("erin", 2000)]):
        result = (
            await tenant.gql(
                RECORD,
                {
                    "input": {
                        "type": "PURCHASE",
                        "customerExternalId": who,
                        "idempotencyKey": f"o{n}",
                        "orderId": f"o{n}",
                        "amount": amount,
                        "currency": "USD",
                        "referralCode": code,
                        "programId": program["id"],
                    }
                },
            )
        )["recordAction"]
        assert result["userErrors"] == []

    end = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()  # NOW is when the module was imported
    result = await simulate(tenant, program["id"], BUDGETED, days_ago(1), end)
    expected = [
        # bob: both sides get $10 (the budget is checked against what was granted before the
        # action: 0 + 1000 twice), leaving $5; nobody else fits.
        ("$10 each, $25 a month", [total("CREDIT", "USD", 2000, 2)]),
        # bob's $20 commission does not fit after the credit (rules run in order); carol's $1
        # and dave's $3 do; erin's $2 would make $26.
        ("10% within the budget", [total("COMMISSION", "USD", 400, 2)]),
        ("100 points, 2 a month", [total("POINTS", "POINTS", 200, 2)]),
    ]
    assert [(r["name"], r["totals"]) for r in result["proposed"]] == expected
    assert [(r["name"], r["totals"]) for r in result["current"]] == expected


async def test_a_campaigns_commission_on_a_replayed_sale_is_no_rules_grant(tenant, db):
    # A RATE_BOOST campaign pays on the sale too: its reward names the sale but no rule (rule_id
    # NULL). "What the current rules granted" leaves it out instead of failing on a rule without id.
    program, codes = await program_with_referrers(tenant, "jane")
    await create_rule(tenant, program["id"], GIVE_TEN)
    campaign = await create_campaign(
        tenant, program["id"], kind="RATE_BOOST", startsOn=today(), endsOn=today(), category="shoes", boostBps=1000
    )
    await sale(tenant, codes["jane"], metadata={"category": "shoes"})
    await run_campaign_jobs(db)
    assert len(await campaign_rewards(db, campaign["id"])) == 1

    now = datetime.now(UTC)  # not NOW: the other database's half of the tests ran first
    result = await simulate(
        tenant, program["id"], [], (now - timedelta(days=1)).isoformat(), (now + timedelta(minutes=1)).isoformat()
    )
    assert [(r["name"], r["totals"]) for r in result["current"]] == [("Give $10", [total("CREDIT", "USD", 1000, 1)])]
    assert result["currentTotals"] == [total("CREDIT", "USD", 1000, 1)]
