"""Privacy work run by the worker: building exports, retention, deleting expired exports."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.privacy import export, retention
from app.worker.registry import job


@job(export.EXPORT_JOB, max_attempts=5)
async def build_export(session: AsyncSession, export_id: str) -> None:
    """A customer's data export, requested with exportCustomerData."""
    await export.build(session, export_id=uuid.UUID(export_id))


@job("privacy.retention", every=timedelta(days=1), own_transactions=True)
async def apply_retention(factory: async_sessionmaker[AsyncSession]) -> None:
    """Coarsen networks and browsers older than each merchant's retention period (one
    transaction per merchant, so one merchant's failure does not hold back the others)."""
    async with factory() as session:
        await retention.apply_all(session)


@job("privacy.expire_exports", every=timedelta(minutes=15))
async def expire_exports(session: AsyncSession) -> None:
    """Delete export documents nobody downloaded in time."""
    await export.expire_due(session)
