"""Building blocks for the campaign tests: a program with referrers, referred sales, the
campaign jobs run as the worker would, and what was granted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app import unit_of_work
from app.campaigns import contests, counting
from app.db import create_session_factory, utcnow
from app.rewards.models import Reward
from app.worker import outbox, registry
from app.worker.models import JobStatus, OutboxJob
from tests import graphql_ops as ops
from tests.scenarios import PAY_AT_SIGNUP, active_program, allow_bursts, code_for


async def program_with_referrers(tenant, *referrers: str) -> tuple[dict[str, Any], dict[str, str]]:
    """An active program (no fraud velocity limits: the tests burst on purpose) and a code per referrer."""
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    await allow_bursts(tenant, program["id"])
    codes = {name: (await code_for(tenant, program["id"], name))["code"] for name in referrers}
    for name in referrers:
        await tenant.gql(
            ops.UPSERT_CUSTOMER, {"input": {"externalId": name, "name": f"{name.title()} Smith", "email": f"{name}@example.com"}}
        )
    return program, codes


async def create_campaign(tenant, program_id: str, **input: Any) -> dict[str, Any]:
    values = {"programId": program_id, "name": "Campaign", "currency": "USD", **input}
    for day in ("startsOn", "endsOn"):
        if isinstance(values.get(day), date):
            values[day] = values[day].isoformat()
    data = await tenant.gql(ops.CREATE_CAMPAIGN, {"input": values})
    payload = data["createCampaign"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["campaign"]


_sales = iter(range(1, 10**6))


async def sale(
    tenant, code: str, *, amount: int = 10_000, at: datetime | None = None, metadata: dict | None = None, buyer: str | None = None
) -> dict[str, Any]:
    """A referred customer's purchase (a new customer each time unless `buyer` is given)."""
    n = next(_sales)
    buyer = buyer or f"buyer-{n}"
    order = f"order-{n}"
    values: dict[str, Any] = {
        "type": "PURCHASE",
        "customerExternalId": buyer,
        "idempotencyKey": order,
        "orderId": order,
        "amount": amount,
        "currency": "USD",
        "referralCode": code,
        "context": {"deviceId": f"dev-{buyer}", "ip": f"10.0.{n // 250}.{n % 250}"},
    }
    if at is not None:
        values["occurredAt"] = at.isoformat()
    if metadata is not None:
        values["metadata"] = metadata
    data = await tenant.gql(ops.RECORD_ACTION, {"input": values})
    payload = data["recordAction"]
    assert payload["userErrors"] == [] and payload["referral"]["status"] != "REJECTED", payload
    return payload


async def refund(tenant, purchase: dict[str, Any]) -> None:
    order = purchase["action"]["orderId"]
    data = await tenant.gql(
        ops.RECORD_ACTION,
        {
            "input": {
                "type": "REFUND",
                "customerExternalId": purchase["referral"]["referee"]["externalId"],
                "idempotencyKey": f"refund-{order}",
                "orderId": order,
            }
        },
    )
    assert data["recordAction"]["userErrors"] == []


async def pending_campaign_jobs(engine: AsyncEngine) -> list[str]:
    async with create_session_factory(engine)() as session:
        return [
            str(i)
            for i in (
                await session.scalars(
                    select(OutboxJob.id)
                    .where(OutboxJob.actor.like("campaigns.%"), OutboxJob.status == JobStatus.PENDING.value)
                    .order_by(OutboxJob.id)
                )
            ).all()
        ]


async def run_campaign_jobs(engine: AsyncEngine, *, concurrently: bool = False) -> int:
    """Run the pending campaign jobs as workers would (all at once with `concurrently`)."""
    registry.load_jobs()
    pending = await pending_campaign_jobs(engine)
    factory = create_session_factory(engine)
    runs = [outbox.run_job(factory, job_id) for job_id in pending]
    if concurrently:
        await asyncio.gather(*runs)
    else:
        for run in runs:
            await run
    return len(pending)


async def count_again(engine: AsyncEngine, action_ids: list[str], *, times: int = 2) -> None:
    """Redeliveries: the counting of each action run again, `times` at once, each in its own
    transaction (retried on a deadlock, as the worker's would be)."""
    factory = create_session_factory(engine)

    async def once(action_id: str) -> None:
        async with factory() as session:
            await unit_of_work.commit(session, lambda s: counting.count_sale(s, uuid.UUID(action_id)))

    await asyncio.gather(*[once(a) for a in action_ids for _ in range(times)])


async def campaign_rewards(engine: AsyncEngine, campaign_id: str) -> list[Reward]:
    """What the campaign granted, by grant key."""
    async with create_session_factory(engine)() as session:
        return list(
            (
                await session.scalars(
                    select(Reward)
                    .where(Reward.grant_key.like(f"campaign:{campaign_id}:%"))
                    .order_by(Reward.created_at, Reward.id)
                )
            ).all()
        )


def keyed(rewards: list[Reward], kind: str) -> list[Reward]:
    return [r for r in rewards if r.grant_key.split(":")[2] == kind]


async def finalize_due(engine: AsyncEngine, *, at: datetime) -> int:
    async with create_session_factory(engine)() as session:
        done = await contests.finalize_due(session, now=at)
        await session.commit()
    return done


def today() -> date:
    return utcnow().date()


def days_ago(n: float) -> datetime:
    return utcnow() - timedelta(days=n)
