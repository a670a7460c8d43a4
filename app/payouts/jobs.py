"""Payout work run by the worker: sending approved payouts, scheduled runs, holds."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.payouts import providers, runs, service
from app.worker.registry import job


@job("payouts.send")
async def send(session: AsyncSession, merchant: str) -> None:
    """Approved payouts to their providers (queued by each approval)."""
    await providers.send_approved(session, merchant_id=uuid.UUID(merchant))


@job("payouts.start_due_runs", every=timedelta(minutes=15))
async def start_due_runs(session: AsyncSession) -> None:
    """Every program's scheduled run that is due, once per period."""
    await runs.start_due_runs(session)


@job("payouts.run_chunk")
async def run_chunk(session: AsyncSession, run_id: str, after: str) -> None:
    """The next customers of a run (each chunk queues the next)."""
    await runs.run_chunk(session, run_id=uuid.UUID(run_id), after=uuid.UUID(after) if after else None)


@job("payouts.refresh_holds", every=timedelta(minutes=5))
async def refresh_holds(session: AsyncSession) -> None:
    """Lift holds whose reason ended; hold waiting payouts whose customer is now in review."""
    await service.refresh_holds(session)
