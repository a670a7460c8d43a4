"""Building blocks for scenarios, through the public API as a merchant would."""

from __future__ import annotations

from typing import Any

from tests import graphql_ops as ops

# Rewards spendable once the check that made the referral allowed it: for scenarios about what
# happens to spendable rewards (ledgers, payouts, exports), not about clearance, which by default
# waits a quiet period (tests/fraud/test_clearance.py).
PAY_AT_SIGNUP = {"evidence": "SIGNUP"}


async def active_program(tenant, *, clearance: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    values = {"name": "Give $10, get $10", "status": "ACTIVE", "shareUrlTemplate": "https://shop.example/?ref={code}"}
    values.update(overrides)
    data = await tenant.gql(ops.CREATE_PROGRAM, {"input": values})
    assert data["createProgram"]["userErrors"] == []
    program = data["createProgram"]["program"]
    if clearance is not None:
        await set_clearance(tenant, program["id"], clearance)
    return program


async def set_clearance(tenant, program_id: str, clearance: dict[str, Any]) -> None:
    data = await tenant.gql(
        """mutation($programId: ID!, $policy: FraudPolicyInput!) {
             setFraudPolicy(programId: $programId, policy: $policy) { userErrors { field code message } } }""",
        {"programId": program_id, "policy": {"clearance": clearance}},
    )
    assert data["setFraudPolicy"]["userErrors"] == []


async def code_for(tenant, program_id: str, external_id: str, **extra: Any) -> dict[str, Any]:
    data = await tenant.gql(ops.ISSUE_CODE, {"input": {"programId": program_id, "customerExternalId": external_id, **extra}})
    assert data["issueReferralCode"]["userErrors"] == []
    return data["issueReferralCode"]["referralCode"]


async def record(tenant, **input: Any) -> dict[str, Any]:
    data = await tenant.gql(ops.RECORD_ACTION, {"input": input})
    return data["recordAction"]


async def click(tenant, code: str, device_id: str = "dev-1") -> dict[str, Any]:
    data = await tenant.gql(
        ops.TRACK_CLICK,
        {"input": {"code": code, "deviceId": device_id, "landingUrl": f"https://shop.example/?ref={code}"}},
        key=tenant.publishable_key,
    )
    return data["trackClick"]


async def allow_bursts(tenant, program_id: str) -> None:
    """Turn off the fraud velocity signals for a program (for tests that burst on purpose)."""
    signals = [
        {"signal": name, "enabled": False}
        for name in (
            "referrals_per_hour",
            "referrals_per_day",
            "rewards_per_hour",
            "rewards_per_day",
            "ip_burst",
            "referrals_above_baseline",
        )
    ]
    data = await tenant.gql(
        """mutation($programId: ID!, $policy: FraudPolicyInput!) {
             setFraudPolicy(programId: $programId, policy: $policy) { userErrors { field code message } } }""",
        {"programId": program_id, "policy": {"signals": signals}},
    )
    assert data["setFraudPolicy"]["userErrors"] == []
