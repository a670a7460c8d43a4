"""The write path keeps a merchant's rules, fraud policy and webhook endpoints in memory
(app/config_cache.py). A change must apply to the very next purchase: made over the API, or
straight in the database as another API process's transaction would be."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from app.merchants.models import Merchant
from app.rewards.models import RewardRule
from tests.conftest import system_connection
from tests.fraud.helpers import SET_POLICY
from tests.rewards.helpers import UPDATE_RULE, credit_rule, purchase
from tests.rewards.test_evaluation import shop
from tests.webhooks.conftest import create_endpoint, run_deliveries


async def referred_purchase(tenant, code: str, customer: str, email: str | None = None) -> list[dict]:
    result = await purchase(
        tenant,
        customer,
        f"order-{customer}",
        5000,
        referralCode=code,
        context={"email": email or f"{customer}@example.com"},
    )
    return result["rewards"]


async def test_a_changed_rule_applies_to_the_next_purchase(tenant):
    _, code, [rule] = await shop(tenant, credit_rule(amount=1000))
    assert [r["amount"] for r in await referred_purchase(tenant, code, "bob")] == [1000]

    changed = await tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=2500)})
    assert changed["updateRewardRule"]["userErrors"] == []

    assert [r["amount"] for r in await referred_purchase(tenant, code, "carol")] == [2500]


async def test_a_rule_changed_by_another_process_applies_to_the_next_purchase(tenant, db):
    _, code, [rule] = await shop(tenant, credit_rule(amount=1000))
    assert len(await referred_purchase(tenant, code, "bob")) == 1

    async with system_connection(db) as connection:  # not through this process's API
        await connection.execute(update(RewardRule).where(RewardRule.id == uuid.UUID(rule["id"])).values(enabled=False))

    assert await referred_purchase(tenant, code, "carol") == []


async def test_an_endpoint_added_after_purchases_receives_the_next_one(tenant, db, receiver):
    _, code, _ = await shop(tenant, credit_rule())
    await referred_purchase(tenant, code, "bob")

    await create_endpoint(tenant, receiver.url, ["reward.granted"])
    [granted] = await referred_purchase(tenant, code, "carol")

    await run_deliveries(db)
    assert [r.json["data"]["id"] for r in receiver.requests] == [granted["id"]]


async def test_a_changed_fraud_policy_judges_the_next_purchase(tenant):
    program, code, _ = await shop(tenant, credit_rule())
    [held] = await referred_purchase(tenant, code, "bob", email="bob@mailinator.com")
    assert held["status"] == "HELD"  # a disposable email: in review by default

    changed = await tenant.gql(
        SET_POLICY,
        {
            "programId": program["id"],
            "policy": {
                "signals": [
                    {"signal": "disposable_email", "enabled": False},
                    {"signal": "referrer_under_review", "enabled": False},
                ]
            },
        },
    )  # bob's review marked jane
    assert changed["setFraudPolicy"]["userErrors"] == []

    [granted] = await referred_purchase(tenant, code, "carol", email="carol@mailinator.com")
    assert granted["status"] == "AVAILABLE"


async def test_the_version_goes_up_with_each_configuration_change_only(tenant, db):
    async def version() -> int:
        async with system_connection(db) as connection:
            return await connection.scalar(select(Merchant.config_version).where(Merchant.id == tenant.id))

    start = await version()
    _, code, [rule] = await shop(tenant, credit_rule())
    after_rule = await version()
    await referred_purchase(tenant, code, "bob")

    assert after_rule > start
    assert await version() == after_rule  # purchases, rewards and ledger entries change no configuration
