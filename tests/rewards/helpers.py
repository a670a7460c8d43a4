"""Building blocks for the rewards tests: rules, actions, balances and the ledger check,
through the public API as a merchant would; the clock moves through the services."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory, utcnow
from app.referrals.models import Referral
from app.rewards import ledger, lifecycle
from app.rewards.models import LedgerEntry
from tests import graphql_ops as ops
from tests.graphql_ops import REWARD_FIELDS

RULE_FIELDS = """
  id ruleId version name enabled trigger recipient kind amount currency percentBps
  couponPoolId couponMinOrderAmount recurringMonths createdAt supersededAt
  conditions {
    minActionAmount minActionCurrency firstActionOnly withinDaysOfReferral
    metadataFilters { key op values }
    milestone capPerReferrerMonthly capPerReferrerLifetime programMonthlyBudget holdDays expiresInDays
  }
"""

CREATE_RULE = f"""
mutation($programId: ID!, $input: RewardRuleInput!) {{
  createRewardRule(programId: $programId, input: $input) {{
    rewardRule {{ {RULE_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}"""

UPDATE_RULE = f"""
mutation($ruleId: ID!, $input: RewardRuleInput!) {{
  updateRewardRule(ruleId: $ruleId, input: $input) {{
    rewardRule {{ {RULE_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}"""

SET_RULE_ENABLED = """
mutation($ruleId: ID!, $enabled: Boolean!) {
  setRewardRuleEnabled(ruleId: $ruleId, enabled: $enabled) {
    rewardRule { id ruleId version enabled supersededAt }
    userErrors { field code message }
  }
}"""

RULE = f"""
query($ruleId: ID!) {{
  rewardRule(ruleId: $ruleId) {{ {RULE_FIELDS} history {{ id version enabled amount supersededAt }} }}
}}"""

RULES = """
query($programId: ID!, $includeDisabled: Boolean!) {
  rewardRules(programId: $programId, includeDisabled: $includeDisabled) { id ruleId version enabled name }
}"""

RECORD = ops.RECORD_ACTION_WITH_REWARDS

REWARDS = f"""
query($customer: String, $status: RewardStatus) {{
  rewards(customerExternalId: $customer, status: $status, first: 100) {{ edges {{ node {{ {REWARD_FIELDS} }} }} }}
}}"""

BALANCES = """
query($externalId: String!) { customer(externalId: $externalId) { balances { kind unit available held } } }"""

LEDGER_ENTRIES = """
query($externalId: String!, $first: Int, $after: String) {
  customer(externalId: $externalId) {
    ledgerEntries(first: $first, after: $after) {
      edges { node { id amount unit accountType transactionId createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""

REDEEM_CREDIT = """
mutation($input: RedeemCreditInput!) {
  redeemCredit(input: $input) { transactionId amount unit balance replayed userErrors { field code message } }
}"""

REDEEM_POINTS = """
mutation($input: RedeemPointsInput!) {
  redeemPoints(input: $input) { transactionId amount unit balance replayed userErrors { field code message } }
}"""

CLAIM = f"""
mutation($input: ClaimReferralInput!) {{
  claimReferral(input: $input) {{ referral {{ id status source rewards {{ {REWARD_FIELDS} }} }} userErrors {{ field code message }} }}
}}"""


def credit_rule(**overrides: Any) -> dict[str, Any]:
    values = {
        "name": "Give $10",
        "trigger": "PURCHASE",
        "recipient": "REFERRER",
        "kind": "CREDIT",
        "amount": 1000,
        "currency": "USD",
    }
    values.update(overrides)
    return values


async def create_rule(tenant, program_id: str, **input: Any) -> dict[str, Any]:
    data = await tenant.gql(CREATE_RULE, {"programId": program_id, "input": input})
    payload = data["createRewardRule"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["rewardRule"]


async def record(tenant, **input: Any) -> dict[str, Any]:
    """recordAction; a datetime `occurredAt` is sent as ISO 8601."""
    if isinstance(input.get("occurredAt"), datetime):
        input["occurredAt"] = input["occurredAt"].isoformat()
    data = await tenant.gql(RECORD, {"input": input})
    return data["recordAction"]


async def purchase(tenant, customer: str, key: str, amount: int, currency: str = "USD", **extra: Any) -> dict[str, Any]:
    result = await record(
        tenant,
        type="PURCHASE",
        customerExternalId=customer,
        idempotencyKey=key,
        amount=amount,
        currency=currency,
        orderId=extra.pop("orderId", key),
        **extra,
    )
    assert result["userErrors"] == [], result["userErrors"]
    return result


async def refund(
    tenant, order_id: str, key: str, amount: int | None = None, currency: str = "USD", customer: str = "bob", type: str = "REFUND"
) -> dict[str, Any]:
    money = {"amount": amount, "currency": currency} if amount is not None else {}
    result = await record(tenant, type=type, customerExternalId=customer, idempotencyKey=key, orderId=order_id, **money)
    assert result["userErrors"] == [], result["userErrors"]
    return result


async def signup(tenant, customer: str, code: str, key: str | None = None) -> dict[str, Any]:
    result = await record(
        tenant, type="SIGNUP", customerExternalId=customer, idempotencyKey=key or f"signup-{customer}", referralCode=code
    )
    assert result["userErrors"] == [], result["userErrors"]
    return result


async def balances(tenant, external_id: str) -> list[dict[str, Any]]:
    return (await tenant.gql(BALANCES, {"externalId": external_id}))["customer"]["balances"]


async def balance(tenant, external_id: str, kind: str = "CREDIT", unit: str = "USD") -> dict[str, int]:
    """{available, held} of one kind and unit (zeros when the customer never had any)."""
    for row in await balances(tenant, external_id):
        if (row["kind"], row["unit"]) == (kind, unit):
            return {"available": row["available"], "held": row["held"]}
    return {"available": 0, "held": 0}


async def rewards_of(tenant, external_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    data = await tenant.gql(REWARDS, {"customer": external_id, "status": status})
    return [edge["node"] for edge in data["rewards"]["edges"]]


async def redeem_credit(tenant, customer: str, amount: int, key: str, currency: str = "USD", **extra: Any) -> dict[str, Any]:
    data = await tenant.gql(
        REDEEM_CREDIT,
        {
            "input": {
                "customerExternalId": customer,
                "amount": amount,
                "currency": currency,
                "idempotencyKey": key,
                **extra,
            }
        },
    )
    return data["redeemCredit"]


async def redeem_points(tenant, customer: str, points: int, key: str, **extra: Any) -> dict[str, Any]:
    data = await tenant.gql(
        REDEEM_POINTS,
        {
            "input": {
                "customerExternalId": customer,
                "points": points,
                "idempotencyKey": key,
                **extra,
            }
        },
    )
    return data["redeemPoints"]


async def ledger_entries(tenant, external_id: str) -> list[dict[str, Any]]:
    """All of a customer's entries, newest first, following the pages."""
    entries, after = [], None
    while True:
        data = await tenant.gql(LEDGER_ENTRIES, {"externalId": external_id, "first": 100, "after": after})
        page = data["customer"]["ledgerEntries"]
        entries += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return entries
        after = page["pageInfo"]["endCursor"]


# --- time travel and the ledger check, through the services -------------------------------


def days(n: float) -> datetime:
    """n days from now (negative: in the past)."""
    return utcnow() + timedelta(days=n)


async def release_due(engine: AsyncEngine, *, at: datetime) -> int:
    async with create_session_factory(engine)() as session:
        released = await lifecycle.release_due_rewards(session, now=at)
        await session.commit()
    return released


async def expire_due(engine: AsyncEngine, *, at: datetime) -> int:
    async with create_session_factory(engine)() as session:
        expired = await lifecycle.expire_due_rewards(session, now=at)
        await session.commit()
    return expired


async def backdate_referral(engine: AsyncEngine, referral_id: str, *, created_at: datetime) -> None:
    async with create_session_factory(engine)() as session:
        await session.execute(update(Referral).where(Referral.id == uuid.UUID(referral_id)).values(created_at=created_at))
        await session.commit()


async def ledger_problems(engine: AsyncEngine, merchant_id: uuid.UUID | None = None) -> list:
    """`referral ledger verify`: [] when every invariant holds."""
    async with create_session_factory(engine)() as session:
        return await ledger.verify(session, merchant_id=merchant_id)


async def unbalanced_transactions(engine: AsyncEngine) -> list:
    """Transactions whose entries do not sum to zero in some unit (checked independently of verify)."""
    async with create_session_factory(engine)() as session:
        rows = await session.execute(
            select(LedgerEntry.transaction_id, LedgerEntry.unit, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id, LedgerEntry.unit)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
        return list(rows.all())


async def assert_ledger_consistent(engine: AsyncEngine) -> None:
    assert await ledger_problems(engine) == []
    assert await unbalanced_transactions(engine) == []
