"""Fraud work run by the worker: clearing referrals whose quiet period ended."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.fraud import clearance
from app.worker.jobs import job


@job("fraud.clear_due", every=timedelta(minutes=1))
async def clear_due(session: AsyncSession) -> None:
    """Referrals whose rewards waited out their quiet period are screened again and cleared."""
    await clearance.clear_due(session)
