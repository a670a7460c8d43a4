"""The embedded worker (`make run`): dramatiq worker threads and the in-memory broker inside
the API process, started and stopped by the app's lifespan, on a SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

import tests.worker.jobs_for_tests as test_jobs
from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.migrations import upgrade
from app.worker import outbox
from app.worker.models import JobStatus
from tests.worker.conftest import effect_count, job_row, wait_for_status


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Any]:
    """An app instance inside its lifespan, as uvicorn runs it: the Starlette app within."""
    app = create_app(settings).app
    async with app.router.lifespan_context(app):
        yield app


async def test_the_embedded_worker_runs_jobs_and_after_a_restart_relays_what_was_lost(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}"
    engine = create_engine(database_url)
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text(test_jobs.CREATE_EFFECTS))
    settings = Settings(
        database_url=database_url, broker_url="stub://", embedded_worker=True, app_env="test", secret_key="test-secret"
    )
    sent, lost = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        async with running(settings) as app:
            # A job enqueued and sent after its transaction commits, as a mutation does.
            async with app.state.session_factory() as session:
                job = await outbox.enqueue(session, "test.record", key=sent)
                await session.commit()
                await outbox.dispatch_committed(session)
            assert job is not None
            done = await wait_for_status(engine, job.id, JobStatus.DONE, timeout=15)
            assert done.attempts == 1
            assert await effect_count(engine, sent) == 1

            # The process dies between a commit and the send: the job is only in the outbox.
            async with app.state.session_factory() as session:
                stranded = await outbox.enqueue(session, "test.record", key=lost)
                await session.commit()
            assert stranded is not None
        assert (await job_row(engine, stranded.id)).status is JobStatus.PENDING

        async with running(settings):  # the restart: its worker relays the pending job at boot
            job = await wait_for_status(engine, stranded.id, JobStatus.DONE, timeout=15)
            assert job.attempts == 1
            assert await effect_count(engine, lost) == 1
        assert await effect_count(engine, sent) == 1
    finally:
        await engine.dispose()
