"""Campaign work run by the worker: counting sales and refunds, finalizing contests."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import contests, counting
from app.worker.registry import job


@job(counting.COUNT_SALE)
async def count_sale(session: AsyncSession, action_id: str) -> None:
    await counting.count_sale(session, uuid.UUID(action_id))


@job(counting.COUNT_REFUND)
async def count_refund(session: AsyncSession, action_id: str) -> None:
    await counting.count_refund(session, uuid.UUID(action_id))


@job("campaigns.finalize_contests", every=timedelta(minutes=10))
async def finalize_contests(session: AsyncSession) -> None:
    """Contests past their refund window get their final standing and prizes."""
    await contests.finalize_due(session)
