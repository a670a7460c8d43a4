"""Scheduled reward work, run by the worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.rewards import lifecycle
from app.worker.registry import job


@job("rewards.release_due", every=timedelta(minutes=1))
async def release_due(session: AsyncSession) -> None:
    """HELD rewards whose hold has passed become AVAILABLE."""
    await lifecycle.release_due_rewards(session)


@job("rewards.expire_due", every=timedelta(minutes=10))
async def expire_due(session: AsyncSession) -> None:
    """Unspent credit and points, and unused coupons, past their expiry."""
    await lifecycle.expire_due_rewards(session)
