"""Building an affiliate program through the API, as a merchant would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.payouts.helpers import run_jobs
from tests.rewards.helpers import create_rule
from tests.scenarios import active_program

TEN_PERCENT = {"name": "10% commission", "trigger": "PURCHASE", "recipient": "REFERRER", "kind": "COMMISSION", "percentBps": 1000}


async def affiliate_program(tenant, *, rule: dict[str, Any] | None = TEN_PERCENT, **overrides: Any) -> dict[str, Any]:
    program = await active_program(tenant, programType="AFFILIATE", name="Affiliates", **overrides)
    if rule is not None:
        await create_rule(tenant, program["id"], **rule)
    return program


async def enrol(tenant, program_id: str, external_id: str, *, approve: bool = True) -> dict[str, Any]:
    """The customer applies (merchant's API) and, by default, is approved: the partner and their link code."""
    data = await tenant.gql(ops.APPLY_AS_PARTNER, {"programId": program_id, "customerExternalId": external_id})
    payload = data["applyAsPartner"]
    assert payload["userErrors"] == [], payload["userErrors"]
    partner = payload["partner"] | {"code": payload["linkCode"]}
    if approve:
        partner |= await decide(tenant, partner["id"], "APPROVE")
    return partner


async def decide(tenant, partner_id: str, decision: str, reason: str | None = None) -> dict[str, Any]:
    data = await tenant.gql(ops.DECIDE_PARTNER, {"partnerId": partner_id, "decision": decision, "reason": reason})
    payload = data["decidePartner"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["partner"]


async def customer(tenant, external_id: str) -> None:
    data = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": external_id}})
    assert data["upsertCustomer"]["userErrors"] == []


async def set_split(tenant, program_id: str, parties: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    data = await tenant.gql(
        ops.SET_COMMISSION_SPLIT,
        {
            "programId": program_id,
            "parties": [{"customerExternalId": c, "shareBps": bps} for c, bps in parties],
            **extra,
        },
    )
    return data["setCommissionSplit"]


async def sale(
    tenant,
    buyer: str,
    *,
    code: str | None = None,
    token: str | None = None,
    amount: int,
    key: str | None = None,
    run: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A referred purchase through the partner's code (or a click's token); the worker then settles it."""
    key = key or f"order-{buyer}-{amount}"
    data = await tenant.gql(
        ops.RECORD_ACTION,
        {
            "input": {
                "type": "PURCHASE",
                "customerExternalId": buyer,
                "idempotencyKey": key,
                "orderId": extra.pop("orderId", key),
                "amount": amount,
                "currency": "USD",
                **({"referralCode": code} if code else {}),
                **({"attributionToken": token} if token else {}),
                **extra,
            }
        },
    )
    assert data["recordAction"]["userErrors"] == [], data["recordAction"]["userErrors"]
    if run:
        await run_jobs(tenant.engine)
    return data["recordAction"]


async def refund(tenant, buyer: str, order_id: str, amount: int | None, key: str, *, run: bool = True) -> dict[str, Any]:
    data = await tenant.gql(
        ops.RECORD_ACTION,
        {
            "input": {
                "type": "REFUND",
                "customerExternalId": buyer,
                "idempotencyKey": key,
                "orderId": order_id,
                **({"amount": amount, "currency": "USD"} if amount is not None else {}),
            }
        },
    )
    assert data["recordAction"]["userErrors"] == [], data["recordAction"]["userErrors"]
    if run:
        await run_jobs(tenant.engine)
    return data["recordAction"]


def period() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": (now - timedelta(days=30)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


async def sales(tenant, program_id: str, order_id: str | None = None) -> list[dict[str, Any]]:
    data = await tenant.gql(ops.PARTNER_SALES, {"programId": program_id, **period(), "orderId": order_id})
    return data["partnerSales"]


async def ledger_rows(tenant, kind: str) -> list[tuple]:
    """(transaction id, entries, sum of entries) of the merchant's ledger transactions of `kind`."""
    from app.rewards.models import LedgerEntry, LedgerTransaction

    async with system_connection(tenant.engine) as connection:
        return list(
            (
                await connection.execute(
                    select(LedgerTransaction.id, func.count(LedgerEntry.id), func.coalesce(func.sum(LedgerEntry.amount), 0))
                    .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                    .where(LedgerTransaction.merchant_id == tenant.id, LedgerTransaction.kind == kind)
                    .group_by(LedgerTransaction.id)
                )
            ).all()
        )


async def commission_balance(tenant, external_id: str, account_type: str | None = None) -> int:
    """The customer's COMMISSION balance in HELD and AVAILABLE (or in `account_type` alone),
    as the cached balances say (checked against the entries by verify)."""
    from app.referrals.models import Customer
    from app.rewards.models import LedgerAccount

    types = [account_type] if account_type else ["HELD", "AVAILABLE"]
    async with system_connection(tenant.engine) as connection:
        return int(
            (
                await connection.execute(
                    select(func.coalesce(func.sum(LedgerAccount.balance), 0))
                    .join(Customer, Customer.id == LedgerAccount.owner_id)
                    .where(
                        Customer.merchant_id == tenant.id,
                        Customer.external_id == external_id,
                        LedgerAccount.kind == "COMMISSION",
                        LedgerAccount.account_type.in_(types),
                    )
                )
            ).scalar_one()
        )


async def partner_rewards(tenant) -> list[tuple[str, int, int, str]]:
    """(party's external id, amount, reversed amount, status) of the rewards paying partner shares."""
    from app.referrals.models import Customer
    from app.rewards.models import Reward

    async with system_connection(tenant.engine) as connection:
        return [
            (external_id, amount, reversed_amount, status.value)
            for external_id, amount, reversed_amount, status in (
                await connection.execute(
                    select(Customer.external_id, Reward.amount, Reward.reversed_amount, Reward.status)
                    .join(Customer, Customer.id == Reward.customer_id)
                    .where(Reward.merchant_id == tenant.id, Reward.source == "PARTNER_SALE")
                    .order_by(Reward.created_at, Customer.external_id)
                )
            ).all()
        ]


async def books_balance(tenant) -> None:
    from app.db import create_session_factory
    from app.rewards import ledger

    async with create_session_factory(tenant.engine)() as session:
        assert await ledger.verify(session) == []
