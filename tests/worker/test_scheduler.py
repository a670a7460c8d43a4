"""Scheduled jobs: any number of workers run the scheduler at once; each period's run of
each scheduled job is created once (its run key is unique)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory
from app.worker import outbox, registry
from app.worker.models import OutboxJob


async def test_concurrent_schedulers_create_each_run_once(db: AsyncEngine) -> None:
    """On PostgreSQL the schedulers really overlap: a second INSERT of a run key waits for
    the first transaction and then does nothing. (SQLite serialises them.)"""
    scheduled = [spec for spec in registry.load_jobs().values() if spec.every is not None]
    assert scheduled
    factory = create_session_factory(db)
    start = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)

    async def scheduler(now: datetime) -> int:
        async with factory() as session:
            return await outbox.schedule_due(session, now=now)

    for now in (start, start + timedelta(seconds=5), start + timedelta(hours=1)):
        await asyncio.gather(*(scheduler(now) for _ in range(4)))

    async with factory() as session:
        rows = (
            await session.execute(
                # Only this test's simulated runs (2026-01-01): a live scheduler left by another test
                # in this process may add runs for the real clock.
                select(OutboxJob.run_key, func.count())
                .where(OutboxJob.run_key.like("%@2026-01-01T%"))
                .group_by(OutboxJob.run_key)
            )
        ).all()
    assert all(count == 1 for _, count in rows), rows
    expected = {
        f"{spec.name}@{outbox.bucket(now, spec.every).isoformat()}"
        for spec in scheduled
        for now in (start, start + timedelta(seconds=5), start + timedelta(hours=1))
    }
    assert {key for key, _ in rows} == expected
    # 12:00:30 and 12:00:35 fall in the same minute (and ten minutes): one run, not two; 13:00:30
    # is another period for every job shorter than a day
    assert len(expected) == sum(2 if spec.every <= timedelta(hours=1) else 1 for spec in scheduled)
