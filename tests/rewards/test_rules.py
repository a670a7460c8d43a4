"""Reward rules through the API: create, update (a new version), enable/disable, validation
of each kind's fields and conditions, and other merchants' rules."""

from __future__ import annotations

import asyncio

import pytest

from tests.rewards.helpers import (
    CREATE_RULE,
    RULE,
    RULES,
    SET_RULE_ENABLED,
    UPDATE_RULE,
    create_rule,
    credit_rule,
    purchase,
    rewards_of,
)
from tests.scenarios import active_program, code_for


async def rules_of(tenant, program_id: str, include_disabled: bool = True) -> list[dict]:
    return (await tenant.gql(RULES, {"programId": program_id, "includeDisabled": include_disabled}))["rewardRules"]


async def test_create_a_rule_with_every_condition(tenant):
    program = await active_program(tenant)
    rule = await create_rule(
        tenant,
        program["id"],
        **credit_rule(
            name="Give $10",
            trigger="purchase",
            conditions={
                "minActionAmount": 5000,
                "minActionCurrency": "usd",
                "firstActionOnly": True,
                "withinDaysOfReferral": 30,
                "metadataFilters": [{"key": "category", "op": "NOT_IN", "values": ["gift-cards"]}],
                "capPerReferrerMonthly": 5,
                "capPerReferrerLifetime": 50,
                "programMonthlyBudget": 100000,
                "holdDays": 14,
                "expiresInDays": 365,
            },
        ),
    )

    assert rule["version"] == 1 and rule["enabled"] is True and rule["supersededAt"] is None
    assert rule["id"] == rule["ruleId"]  # the first version's id is the rule's id
    assert (rule["trigger"], rule["recipient"], rule["kind"]) == ("PURCHASE", "REFERRER", "CREDIT")
    assert (rule["amount"], rule["currency"], rule["percentBps"]) == (1000, "USD", None)
    assert rule["conditions"] == {
        "minActionAmount": 5000,
        "minActionCurrency": "USD",
        "firstActionOnly": True,
        "withinDaysOfReferral": 30,
        "metadataFilters": [{"key": "category", "op": "NOT_IN", "values": ["gift-cards"]}],
        "milestone": None,
        "capPerReferrerMonthly": 5,
        "capPerReferrerLifetime": 50,
        "programMonthlyBudget": 100000,
        "holdDays": 14,
        "expiresInDays": 365,
    }
    assert [r["ruleId"] for r in await rules_of(tenant, program["id"])] == [rule["ruleId"]]


@pytest.mark.parametrize(
    "input",
    [
        {"kind": "POINTS", "amount": 250, "currency": None},
        {"kind": "COMMISSION", "amount": 2500, "currency": "EUR"},
        {"kind": "COMMISSION", "amount": None, "currency": None, "percentBps": 1000, "recurringMonths": 12},
        {"kind": "DISCOUNT", "amount": None, "currency": None, "percentBps": 1500, "couponMinOrderAmount": 3000},
        {"kind": "DISCOUNT", "amount": 500, "currency": "USD"},
        {"kind": "CREDIT", "recipient": "BOTH"},
        {"kind": "CREDIT", "conditions": {"milestone": 5}},
    ],
    ids=[
        "points",
        "fixed-commission",
        "recurring-percent-commission",
        "percent-discount",
        "fixed-discount",
        "credit-both",
        "milestone",
    ],
)
async def test_each_kind_is_accepted_with_its_fields(tenant, input):
    program = await active_program(tenant)
    rule = await create_rule(tenant, program["id"], **credit_rule(**input))
    for name in ("kind", "amount", "currency", "percentBps", "recurringMonths", "couponMinOrderAmount"):
        if name in input:
            assert rule[name] == input[name]


async def test_update_adds_a_version_and_keeps_the_old_one_in_history(tenant):
    program = await active_program(tenant)
    v1 = await create_rule(tenant, program["id"], **credit_rule())

    data = await tenant.gql(UPDATE_RULE, {"ruleId": v1["ruleId"], "input": credit_rule(name="Give $15", amount=1500)})
    assert data["updateRewardRule"]["userErrors"] == []
    v2 = data["updateRewardRule"]["rewardRule"]

    assert (v2["ruleId"], v2["version"], v2["amount"], v2["name"]) == (v1["ruleId"], 2, 1500, "Give $15")
    assert v2["id"] != v1["id"] and v2["supersededAt"] is None
    current = (await tenant.gql(RULE, {"ruleId": v1["ruleId"]}))["rewardRule"]
    assert (current["id"], current["version"]) == (v2["id"], 2)
    history = current["history"]
    assert [(h["id"], h["version"], h["amount"]) for h in history] == [(v1["id"], 1, 1000), (v2["id"], 2, 1500)]
    assert history[0]["supersededAt"] is not None and history[1]["supersededAt"] is None
    # the program lists each rule once, at its current version
    assert [(r["ruleId"], r["version"]) for r in await rules_of(tenant, program["id"])] == [(v1["ruleId"], 2)]


async def test_a_reward_keeps_the_rule_version_it_was_granted_under(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    v1 = await create_rule(tenant, program["id"], **credit_rule())
    await purchase(tenant, "bob", "order-bob", 5000, referralCode=code)

    data = await tenant.gql(UPDATE_RULE, {"ruleId": v1["ruleId"], "input": credit_rule(amount=2000)})
    assert data["updateRewardRule"]["userErrors"] == []
    await purchase(tenant, "carol", "order-carol", 5000, referralCode=code)

    rewards = {r["amount"]: r["rule"] for r in await rewards_of(tenant, "jane")}
    assert set(rewards) == {1000, 2000}
    assert (rewards[1000]["version"], rewards[1000]["id"], rewards[1000]["ruleId"]) == (1, v1["id"], v1["ruleId"])
    assert rewards[2000]["version"] == 2 and rewards[2000]["ruleId"] == v1["ruleId"]


async def test_a_rule_updated_after_rewarding_a_referral_does_not_reward_it_again(tenant):
    """Once per referral and recipient is per rule, across its versions."""
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    rule = await create_rule(tenant, program["id"], **credit_rule())
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    await tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=2000)})

    second = await purchase(tenant, "bob", "order-2", 5000)

    assert second["rewards"] == []
    assert [r["amount"] for r in await rewards_of(tenant, "jane")] == [1000]


async def test_disable_and_enable_a_rule(tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    rule = await create_rule(tenant, program["id"], **credit_rule())

    off = (await tenant.gql(SET_RULE_ENABLED, {"ruleId": rule["ruleId"], "enabled": False}))["setRewardRuleEnabled"]
    assert off["userErrors"] == [] and (off["rewardRule"]["version"], off["rewardRule"]["enabled"]) == (2, False)
    again = (await tenant.gql(SET_RULE_ENABLED, {"ruleId": rule["ruleId"], "enabled": False}))["setRewardRuleEnabled"]
    assert again["rewardRule"]["version"] == 2  # no change, no new version
    assert await rules_of(tenant, program["id"], include_disabled=False) == []
    assert [r["enabled"] for r in await rules_of(tenant, program["id"])] == [False]

    disabled = await purchase(tenant, "bob", "order-bob", 5000, referralCode=code)
    assert disabled["rewards"] == []

    on = (await tenant.gql(SET_RULE_ENABLED, {"ruleId": rule["ruleId"], "enabled": True}))["setRewardRuleEnabled"]
    assert on["userErrors"] == [] and (on["rewardRule"]["version"], on["rewardRule"]["enabled"]) == (3, True)
    enabled = await purchase(tenant, "carol", "order-carol", 5000, referralCode=code)
    assert [(r["amount"], r["rule"]["version"]) for r in enabled["rewards"]] == [(1000, 3)]
    history = (await tenant.gql(RULE, {"ruleId": rule["ruleId"]}))["rewardRule"]["history"]
    assert [(h["version"], h["enabled"]) for h in history] == [(1, True), (2, False), (3, True)]


INVALID = [
    # each kind's own fields
    ({"currency": None}, "currency", "INVALID_INPUT"),
    ({"amount": None}, "amount", "INVALID_INPUT"),
    ({"percentBps": 1000}, "percentBps", "INVALID_INPUT"),
    ({"amount": 0}, "amount", "INVALID_INPUT"),
    ({"amount": -100}, "amount", "INVALID_INPUT"),
    ({"currency": "XYZ"}, "currency", "INVALID_CURRENCY"),
    ({"kind": "POINTS", "amount": 100, "currency": "USD"}, "currency", "INVALID_INPUT"),
    ({"kind": "POINTS", "amount": None, "currency": None}, "amount", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "amount": 1000, "currency": "USD", "percentBps": 1000}, "amount", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "amount": None, "currency": None}, "amount", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "amount": 1000, "currency": None}, "currency", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "amount": None, "currency": None, "percentBps": 0}, "percentBps", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "amount": None, "currency": None, "percentBps": 10001}, "percentBps", "INVALID_INPUT"),
    ({"kind": "DISCOUNT", "amount": None, "currency": None}, "amount", "INVALID_INPUT"),
    ({"kind": "DISCOUNT", "amount": 500, "currency": None}, "currency", "INVALID_INPUT"),
    ({"recurringMonths": 3}, "recurringMonths", "INVALID_INPUT"),
    (
        {"kind": "COMMISSION", "amount": None, "currency": None, "percentBps": 1000, "recurringMonths": 0},
        "recurringMonths",
        "INVALID_INPUT",
    ),
    ({"couponPoolId": "00000000-0000-7000-8000-000000000000"}, "couponPoolId", "INVALID_INPUT"),
    ({"kind": "COMMISSION", "conditions": {"expiresInDays": 30}}, "conditions.expiresInDays", "INVALID_INPUT"),
    # the rule itself
    ({"name": ""}, "name", "REQUIRED"),
    ({"name": "x" * 201}, "name", "TOO_LONG"),
    ({"trigger": "purchase now!"}, "trigger", "INVALID_INPUT"),
    ({"trigger": "1PURCHASE"}, "trigger", "INVALID_INPUT"),
    ({"trigger": " "}, "trigger", "REQUIRED"),
    # conditions
    ({"recipient": "REFEREE", "conditions": {"milestone": 3}}, "conditions.milestone", "INVALID_INPUT"),
    ({"recipient": "BOTH", "conditions": {"milestone": 3}}, "conditions.milestone", "INVALID_INPUT"),
    ({"conditions": {"milestone": 0}}, "conditions.milestone", "INVALID_INPUT"),
    ({"conditions": {"holdDays": -1}}, "conditions.holdDays", "INVALID_INPUT"),
    ({"conditions": {"holdDays": 366}}, "conditions.holdDays", "INVALID_INPUT"),
    ({"conditions": {"expiresInDays": 0}}, "conditions.expiresInDays", "INVALID_INPUT"),
    ({"conditions": {"withinDaysOfReferral": 0}}, "conditions.withinDaysOfReferral", "INVALID_INPUT"),
    ({"conditions": {"minActionAmount": 5000}}, "conditions.minActionAmount", "INVALID_INPUT"),
    ({"conditions": {"minActionCurrency": "USD"}}, "conditions.minActionAmount", "INVALID_INPUT"),
    ({"conditions": {"minActionAmount": -1, "minActionCurrency": "USD"}}, "conditions.minActionAmount", "INVALID_INPUT"),
    ({"conditions": {"minActionAmount": 1, "minActionCurrency": "ABC"}}, "conditions.minActionCurrency", "INVALID_CURRENCY"),
    ({"conditions": {"capPerReferrerMonthly": 0}}, "conditions.capPerReferrerMonthly", "INVALID_INPUT"),
    ({"conditions": {"capPerReferrerLifetime": -5}}, "conditions.capPerReferrerLifetime", "INVALID_INPUT"),
    ({"conditions": {"programMonthlyBudget": 0}}, "conditions.programMonthlyBudget", "INVALID_INPUT"),
    (
        {"kind": "DISCOUNT", "amount": None, "currency": None, "percentBps": 1500, "conditions": {"programMonthlyBudget": 1000}},
        "conditions.programMonthlyBudget",
        "INVALID_INPUT",
    ),
    (
        {"conditions": {"metadataFilters": [{"key": "category", "op": "EQ", "values": ["shoes"]}]}},
        "conditions.metadataFilters.op",
        "INVALID_INPUT",
    ),
    (
        {"conditions": {"metadataFilters": [{"key": " ", "op": "IN", "values": ["shoes"]}]}},
        "conditions.metadataFilters.key",
        "REQUIRED",
    ),
    (
        {"conditions": {"metadataFilters": [{"key": "category", "op": "IN", "values": [""]}]}},
        "conditions.metadataFilters.values",
        "REQUIRED",
    ),
    (
        {"conditions": {"metadataFilters": [{"key": f"k{i}", "values": ["v"]} for i in range(21)]}},
        "conditions.metadataFilters",
        "INVALID_INPUT",
    ),
]


@pytest.mark.parametrize(("change", "field", "code"), INVALID, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(INVALID)])
async def test_invalid_rules_are_refused_with_the_field_and_nothing_is_written(tenant, change, field, code):
    program = await active_program(tenant)
    rule = await create_rule(tenant, program["id"], **credit_rule(name="Existing"))

    created = await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": credit_rule(**change)})
    updated = await tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(**change)})

    for payload in (created["createRewardRule"], updated["updateRewardRule"]):
        assert payload["rewardRule"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload["userErrors"]
    assert [(r["ruleId"], r["version"]) for r in await rules_of(tenant, program["id"])] == [(rule["ruleId"], 1)]


async def test_unknown_program_and_rule_are_not_found(tenant):
    program = await active_program(tenant)
    unknown = "00000000-0000-7000-8000-000000000000"

    created = (await tenant.gql(CREATE_RULE, {"programId": unknown, "input": credit_rule()}))["createRewardRule"]
    assert [(e["field"], e["code"]) for e in created["userErrors"]] == [("programId", "NOT_FOUND")]
    updated = (await tenant.gql(UPDATE_RULE, {"ruleId": unknown, "input": credit_rule()}))["updateRewardRule"]
    assert [(e["field"], e["code"]) for e in updated["userErrors"]] == [("ruleId", "NOT_FOUND")]
    bad_id = (await tenant.gql(UPDATE_RULE, {"ruleId": "rule-1", "input": credit_rule()}))["updateRewardRule"]
    assert [(e["field"], e["code"]) for e in bad_id["userErrors"]] == [("ruleId", "INVALID_ID")]
    body = await tenant.raw(RULE, {"ruleId": unknown})
    assert body["data"]["rewardRule"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert await rules_of(tenant, program["id"]) == []


async def test_another_merchants_program_and_rules_are_not_found(tenant, other_tenant):
    program = await active_program(tenant)
    rule = await create_rule(tenant, program["id"], **credit_rule())

    created = (await other_tenant.gql(CREATE_RULE, {"programId": program["id"], "input": credit_rule()}))["createRewardRule"]
    assert [(e["field"], e["code"]) for e in created["userErrors"]] == [("programId", "NOT_FOUND")]
    updated = await other_tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=1)})
    assert [(e["field"], e["code"]) for e in updated["updateRewardRule"]["userErrors"]] == [("ruleId", "NOT_FOUND")]
    toggled = await other_tenant.gql(SET_RULE_ENABLED, {"ruleId": rule["ruleId"], "enabled": False})
    assert [(e["field"], e["code"]) for e in toggled["setRewardRuleEnabled"]["userErrors"]] == [("ruleId", "NOT_FOUND")]
    for document, variables in (
        (RULE, {"ruleId": rule["ruleId"]}),
        (RULES, {"programId": program["id"], "includeDisabled": True}),
    ):
        body = await other_tenant.raw(document, variables)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], body

    # the owner's rule is untouched
    current = (await tenant.gql(RULE, {"ruleId": rule["ruleId"]}))["rewardRule"]
    assert (current["version"], current["amount"], current["enabled"]) == (1, 1000, True)


@pytest.mark.postgresql_only
async def test_concurrent_changes_to_a_rule_each_add_a_version(tenant, backend):
    """Each waits for the one before; none is refused as NOT_FOUND because the version it
    waited for was superseded, and disabling copies the latest version, not a stale one."""
    program = await active_program(tenant)
    rule = await create_rule(tenant, program["id"], **credit_rule())

    results = await asyncio.gather(
        *(tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=100 + i)}) for i in range(5)),
        tenant.gql(SET_RULE_ENABLED, {"ruleId": rule["ruleId"], "enabled": False}),
    )

    payloads = [r["updateRewardRule"] for r in results[:5]] + [results[5]["setRewardRuleEnabled"]]
    assert all(p["userErrors"] == [] for p in payloads), payloads
    history = (await tenant.gql(RULE, {"ruleId": rule["ruleId"]}))["rewardRule"]["history"]
    assert [h["version"] for h in history] == list(range(1, 8))
    assert [h["supersededAt"] is None for h in history] == [False] * 6 + [True]
    assert sorted(h["amount"] for h in history[1:] if h["enabled"]) == [100, 101, 102, 103, 104]
    [disabled] = [i for i, h in enumerate(history) if not h["enabled"]]
    assert history[disabled]["amount"] == history[disabled - 1]["amount"]  # a copy of the version it replaced
