"""What the console's people may configure with their session alone: owners and admins edit
reward rules (after simulating them) and webhook endpoints; finance and reviewers may not, and
their refused calls change nothing."""

from __future__ import annotations

import pytest

from app.merchants.models import AdminRole
from tests.payouts.helpers import make_admin
from tests.rewards.helpers import UPDATE_RULE, create_rule, credit_rule
from tests.scenarios import active_program

SIMULATE = """
query($p: ID!, $rules: [RewardRuleInput!]!) {
  simulateRewardRules(programId: $p, rules: $rules, from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") {
    actionsReplayed proposedTotals { kind unit amount } } }"""
CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id enabled } secret userErrors { field code message } } }"""
DISABLE_ENDPOINT = """
mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { endpoint { enabled } userErrors { code } } }"""
STATE = "query($p: ID!) { rewardRules(programId: $p) { version amount } webhookEndpoints { id enabled } }"


@pytest.mark.parametrize("role", [AdminRole.OWNER, AdminRole.ADMIN])
async def test_owners_and_admins_edit_rules_and_endpoints_from_a_session(tenant, role):
    program = (await active_program(tenant))["id"]
    rule = await create_rule(tenant, program, **credit_rule())
    person = await make_admin(tenant, role)

    simulated = await tenant.raw(SIMULATE, {"p": program, "rules": [credit_rule(amount=1500)]}, key=person.token)
    assert simulated.get("errors") is None and simulated["data"]["simulateRewardRules"]["actionsReplayed"] == 0
    updated = (await tenant.raw(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=1500)}, key=person.token))[
        "data"
    ]["updateRewardRule"]
    assert updated["userErrors"] == [] and (updated["rewardRule"]["version"], updated["rewardRule"]["amount"]) == (2, 1500)

    created = (
        await tenant.raw(
            CREATE_ENDPOINT, {"input": {"url": "https://shop.example/hooks", "eventTypes": ["reward.granted"]}}, key=person.token
        )
    )["data"]["createWebhookEndpoint"]
    assert created["userErrors"] == [] and created["secret"].startswith("whsec_")
    disabled = (await tenant.raw(DISABLE_ENDPOINT, {"id": created["endpoint"]["id"]}, key=person.token))["data"]
    assert disabled["updateWebhookEndpoint"]["endpoint"]["enabled"] is False


@pytest.mark.parametrize("role", [AdminRole.FINANCE, AdminRole.REVIEWER])
async def test_finance_and_reviewers_cannot_change_rules_or_endpoints(tenant, role):
    program = (await active_program(tenant))["id"]
    rule = await create_rule(tenant, program, **credit_rule())
    await tenant.gql(CREATE_ENDPOINT, {"input": {"url": "https://shop.example/hooks", "eventTypes": ["reward.granted"]}})
    before = await tenant.gql(STATE, {"p": program})
    person = await make_admin(tenant, role)

    calls = [
        (SIMULATE, {"p": program, "rules": [credit_rule(amount=1)]}),
        (UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=1)}),
        (CREATE_ENDPOINT, {"input": {"url": "https://evil.example/hooks", "eventTypes": ["reward.granted"]}}),
        (DISABLE_ENDPOINT, {"id": before["webhookEndpoints"][0]["id"]}),
    ]
    for document, variables in calls:
        body = await tenant.raw(document, variables, key=person.token)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert await tenant.gql(STATE, {"p": program}) == before
