"""Affiliate sales, settled in the worker from the outbox (app.partners.sales)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.partners import sales
from app.worker.registry import job


@job(sales.SETTLE_JOB)
async def settle_action(session: AsyncSession, action_id: str) -> None:
    """Pay (or reverse) the affiliate commission of one action, once in effect."""
    await sales.settle_action(session, action_id=uuid.UUID(action_id))
