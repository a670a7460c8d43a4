"""Building blocks for the fraud tests, through the public API as a merchant would."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests import graphql_ops as ops
from tests import scenarios
from tests.rewards.helpers import REWARD_FIELDS, create_rule, credit_rule

DECISION_FIELDS = """
  id stage outcome policyOutcome score policyVersion adjustments reviewId
  observations { signal value evidence details fired weight relatedReferralIds }
"""

REVIEW_FIELDS = f"""
  id status score signals openedAt resolvedAt resolvedByKeyId resolutionNote programId
  referral {{ id status referrer {{ externalId }} referee {{ externalId }} }}
  decisions {{ {DECISION_FIELDS} }}
  rewards {{ {REWARD_FIELDS} underReview }}
"""

RECORD = ops.RECORD_ACTION_WITH_REWARDS

DECISIONS = f"""
query($referralId: ID!) {{ fraudDecisions(referralId: $referralId) {{ {DECISION_FIELDS} }} }}"""

REVIEWS = f"""
query($programId: ID, $status: FraudReviewStatus, $first: Int, $after: String) {{
  fraudReviews(programId: $programId, status: $status, first: $first, after: $after) {{
    edges {{ node {{ {REVIEW_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

RESOLVE = f"""
mutation($id: ID!, $resolution: FraudResolution!, $note: String) {{
  resolveFraudReview(id: $id, resolution: $resolution, note: $note) {{
    review {{ {REVIEW_FIELDS} }}
    replayed
    userErrors {{ field code message }}
  }}
}}"""

RESOLVE_MANY = """
mutation($filter: FraudReviewFilter!, $resolution: FraudResolution!, $note: String, $limit: Int!) {
  resolveFraudReviews(filter: $filter, resolution: $resolution, note: $note, limit: $limit) {
    resolvedCount
    reviews { id status referral { id status } }
    userErrors { field code message }
  }
}"""

POLICY_FIELDS = """
  version reviewScore blockScore createdAt
  signals { signal description weight threshold firesAtOrBelow valueMeaning action enabled }
"""

POLICY = f"""
query($programId: ID!) {{ fraudPolicy(programId: $programId) {{ {POLICY_FIELDS} }} }}"""

SET_POLICY = f"""
mutation($programId: ID!, $policy: FraudPolicyInput!) {{
  setFraudPolicy(programId: $programId, policy: $policy) {{
    policy {{ {POLICY_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}"""

ADD_LIST_ENTRY = """
mutation($kind: FraudListKind!, $value: String!, $note: String) {
  addFraudListEntry(kind: $kind, value: $value, note: $note) {
    entry { id kind value note }
    userErrors { field code message }
  }
}"""

SET_CUSTOMER_STATUS = """
mutation($customer: String!, $status: CustomerFraudStatus!, $note: String) {
  setCustomerFraudStatus(customerExternalId: $customer, status: $status, note: $note) {
    customer { externalId }
    status
    userErrors { field code message }
  }
}"""

AUDIT_LOG = """
query($subjectId: ID) {
  auditLog(subjectId: $subjectId, first: 100) { edges { node { id action actorKeyId subjectId note details createdAt } } }
}"""


async def program_with_credit(tenant, *, clearance: dict[str, Any] | None = None, **rule: Any) -> dict[str, Any]:
    """An active program paying the referrer $10 credit per referee purchase (rule overrides
    apply); `clearance`: when rewards become spendable (scenarios.PAY_AT_SIGNUP: at once)."""
    program = await scenarios.active_program(tenant, clearance=clearance)
    await create_rule(tenant, program["id"], **credit_rule(**rule))
    return program


async def record(tenant, **input: Any) -> dict[str, Any]:
    if isinstance(input.get("occurredAt"), datetime):
        input["occurredAt"] = input["occurredAt"].isoformat()
    data = await tenant.gql(RECORD, {"input": input})
    payload = data["recordAction"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def signup(tenant, customer: str, *, code: str | None = None, key: str | None = None, **context: Any) -> dict[str, Any]:
    """A SIGNUP with a referral code and request context (deviceId, ip, userAgent, email, ...)."""
    extra = {"referralCode": code} if code else {}
    return await record(
        tenant,
        type="SIGNUP",
        customerExternalId=customer,
        idempotencyKey=key or f"signup-{customer}",
        context=context or None,
        **extra,
    )


async def purchase(tenant, customer: str, order: str, amount: int = 5000, **context: Any) -> dict[str, Any]:
    return await record(
        tenant,
        type="PURCHASE",
        customerExternalId=customer,
        idempotencyKey=order,
        orderId=order,
        amount=amount,
        currency="USD",
        context=context or None,
    )


async def decisions(tenant, referral_id: str) -> list[dict[str, Any]]:
    return (await tenant.gql(DECISIONS, {"referralId": referral_id}))["fraudDecisions"]


def fired(decision: dict[str, Any]) -> set[str]:
    return {o["signal"] for o in decision["observations"] if o["fired"]}


async def open_reviews(tenant, program_id: str | None = None) -> list[dict[str, Any]]:
    data = await tenant.gql(REVIEWS, {"programId": program_id, "status": "OPEN", "first": 100})
    return [edge["node"] for edge in data["fraudReviews"]["edges"]]


REWARDS = f"""
query($customer: String) {{
  rewards(customerExternalId: $customer, first: 100) {{ edges {{ node {{ {REWARD_FIELDS} underReview awaitingClearance leakedAmount }} }} }}
}}"""


REFERRAL = "query($id: ID!) { referral(id: $id) { id status } }"


async def act(
    tenant,
    type: str,
    customer: str,
    key: str,
    *,
    at: datetime | None = None,
    code: str | None = None,
    amount: int | None = None,
    **context: Any,
) -> dict[str, Any]:
    """recordAction at a moment of our choosing (occurredAt), with request context."""
    extra: dict[str, Any] = {"referralCode": code} if code else {}
    if amount is not None:
        extra |= {"amount": amount, "currency": "USD", "orderId": key}
    if at is not None:
        extra["occurredAt"] = at
    return await record(tenant, type=type, customerExternalId=customer, idempotencyKey=key, context=context or None, **extra)


async def rewards_of(tenant, customer: str) -> list[dict[str, Any]]:
    """Oldest first."""
    data = await tenant.gql(REWARDS, {"customer": customer})
    return [edge["node"] for edge in reversed(data["rewards"]["edges"])]


async def referral_status(tenant, referral_id: str) -> str:
    return (await tenant.gql(REFERRAL, {"id": referral_id}))["referral"]["status"]


async def secret_key_id(tenant) -> str:
    keys = (await tenant.gql("{ apiKeys { id kind } }"))["apiKeys"]
    [key] = [k["id"] for k in keys if k["kind"] == "SECRET"]
    return key


async def audit_entries(tenant, subject_id: str | None = None) -> list[dict[str, Any]]:
    data = await tenant.gql(AUDIT_LOG, {"subjectId": subject_id})
    return [edge["node"] for edge in data["auditLog"]["edges"]]


def statuses(rewards: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(r["status"], r["underReview"]) for r in rewards]


def holds(rewards: list[dict[str, Any]]) -> list[tuple[str, bool, bool]]:
    """(status, underReview, awaitingClearance) of each reward."""
    return [(r["status"], r["underReview"], r["awaitingClearance"]) for r in rewards]


async def clear_due(engine, *, at: datetime) -> int:
    """What the worker's `fraud.clear_due` does at `at`: referrals whose quiet period is over
    are screened again and cleared. Returns how many were screened."""
    from app.db import create_session_factory
    from app.fraud import clearance

    async with create_session_factory(engine)() as session:
        screened = await clearance.clear_due(session, now=at)
        await session.commit()
    return screened


async def without_referrer_memory(tenant, program_id: str) -> None:
    """Judge each referral on its own: a flagged referral does not put its referrer's others in
    review (app.fraud.memory, tests/fraud/test_referrer_memory.py). For scenarios that put one
    referrer's honest and dishonest referrals side by side."""
    data = await tenant.gql(
        SET_POLICY, {"programId": program_id, "policy": {"signals": [{"signal": "referrer_under_review", "enabled": False}]}}
    )
    assert data["setFraudPolicy"]["userErrors"] == []
