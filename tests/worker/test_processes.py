"""The outbox and dramatiq for real: worker processes (`python -m dramatiq`) on Redis and on
RabbitMQ, PostgreSQL as the database. Every case checks the effect count of `test.record`:
committed exactly once, whatever the broker did."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_session_factory
from app.worker import broker as worker_broker
from app.worker import outbox
from app.worker.models import JobStatus
from tests.worker.conftest import (
    WorkerPool,
    effect_count,
    enqueue,
    job_row,
    wait_for,
    wait_for_status,
)

pytestmark = pytest.mark.usefixtures("effects")

DONE = JobStatus.DONE
DEAD = JobStatus.DEAD
PENDING = JobStatus.PENDING


def _key() -> str:
    return uuid.uuid4().hex


def _runs(path: Path) -> list[int]:
    """The process groups that began a run of the handler, one line per run."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


async def test_a_committed_job_is_processed_exactly_once(db: AsyncEngine, workers: WorkerPool) -> None:
    workers.ensure_running()
    key = _key()
    job_id = await enqueue(db, "test.record", key=key)

    job = await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    assert job.attempts == 1 and job.finished_at is not None and job.last_error is None
    await asyncio.sleep(0.3)
    assert await effect_count(db, key) == 1


async def test_a_worker_killed_mid_job_leaves_it_to_the_next_worker(db: AsyncEngine, workers: WorkerPool, tmp_path: Path) -> None:
    """SIGKILL in the middle of the job's transaction: nothing of that run is committed, the
    broker hands the message to the restarted worker (RabbitMQ at once when the connection
    drops; Redis once the dead worker's heartbeat is older than REDIS_HEARTBEAT_TIMEOUT),
    and the job is done once."""
    workers.ensure_running()
    key, started = _key(), tmp_path / "started"
    job_id = await enqueue(db, "test.record", key=key, sleep="3", started_file=str(started))

    await wait_for(lambda: bool(_runs(started)), timeout=30, what="the slow job to start", pool=workers)
    [first] = _runs(started)
    workers.kill(first)
    assert (await job_row(db, job_id)).status == PENDING
    assert await effect_count(db, key) == 0  # the killed run's write was rolled back

    workers.start()
    job = await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    runs = _runs(started)
    assert len(runs) == 2 and runs[1] != first  # a second run, in the new worker
    assert job.attempts == 2
    assert await effect_count(db, key) == 1


async def test_a_delayed_job_runs_once_its_delay_has_passed_and_not_before(db: AsyncEngine, workers: WorkerPool) -> None:
    """A job with a delay (a payout run's next chunk, a webhook's retry) goes to the broker's
    delay queue: on Redis sent from the event loop by the API's own dispatch
    (`LoopSendingRedisBroker.enqueue_from_loop`), read by dramatiq's own worker."""
    workers.ensure_running()
    key, delay = _key(), timedelta(seconds=2)
    job_id = await enqueue(db, "test.record", key=key, delay=delay)
    await asyncio.sleep(0.5)
    assert (await job_row(db, job_id)).status == PENDING and await effect_count(db, key) == 0

    job = await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    assert job.finished_at is not None and job.finished_at - job.created_at >= delay
    assert job.attempts == 1 and await effect_count(db, key) == 1


async def test_sending_again_after_the_api_closed_its_broker_clients_still_delivers(db: AsyncEngine, workers: WorkerPool) -> None:
    """The API's shutdown closes the clients it sent with on its event loop; a later send (a
    test's, an embedded worker's relay) opens a new one."""
    workers.ensure_running()
    first, second = _key(), _key()
    await wait_for_status(db, await enqueue(db, "test.record", key=first), DONE, timeout=30, pool=workers)
    await worker_broker.close_loop_clients()
    await wait_for_status(db, await enqueue(db, "test.record", key=second), DONE, timeout=30, pool=workers)
    assert await effect_count(db, first) == 1 and await effect_count(db, second) == 1


async def test_a_job_committed_but_never_sent_is_relayed_and_processed_once(db: AsyncEngine, workers: WorkerPool) -> None:
    """A crash between the commit and the send: only the relay can bring the job to a worker."""
    workers.ensure_running()
    key = _key()
    job_id = await enqueue(db, "test.record", dispatch=False, key=key)
    await asyncio.sleep(0.5)
    job = await job_row(db, job_id)
    assert (job.status, job.attempts) == (PENDING, 0)  # nobody has it

    async with create_session_factory(db)() as session:
        assert await outbox.relay(session, older_than=timedelta(0)) >= 1
    job = await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    assert job.attempts == 1

    async with create_session_factory(db)() as session:  # done: the relay leaves it alone
        await outbox.relay(session, older_than=timedelta(0))
    await asyncio.sleep(0.5)
    assert (await job_row(db, job_id)).attempts == 1
    assert await effect_count(db, key) == 1


async def test_the_same_job_delivered_twice_has_one_effect(db: AsyncEngine, workers: WorkerPool, tmp_path: Path) -> None:
    """Two messages for one job (a relay racing a slow worker, a broker redelivery), taken by
    the worker's two threads at once: the second waits for the first's row lock, finds the
    job DONE and does not run the handler."""
    workers.ensure_running()
    key, started = _key(), tmp_path / "started"
    job_id = await enqueue(db, "test.record", dispatch=False, key=key, sleep="1", started_file=str(started))
    actor = worker_broker.actor_for("test.record")
    await asyncio.to_thread(actor.send, str(job_id))
    await asyncio.to_thread(actor.send, str(job_id))

    await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    await asyncio.sleep(1.0)  # the second delivery has finished too
    assert await effect_count(db, key) == 1
    assert len(_runs(started)) == 1


async def test_a_failing_job_goes_dead_after_max_attempts_and_a_retry_runs_it(
    db: AsyncEngine, workers: WorkerPool, tmp_path: Path
) -> None:
    """test.flaky: max_attempts=2, min_backoff 100 ms. It fails while the file exists."""
    workers.ensure_running()
    key, switch = _key(), tmp_path / "fail"
    switch.touch()
    job_id = await enqueue(db, "test.flaky", key=key, fail_while=str(switch))

    job = await wait_for_status(db, job_id, DEAD, timeout=30, pool=workers)
    assert job.attempts == 2
    assert job.last_error is not None and "told to fail" in job.last_error
    assert job.finished_at is not None
    await asyncio.sleep(1.0)  # dramatiq does not retry it any more
    job = await job_row(db, job_id)
    assert (job.status, job.attempts) == (DEAD, 2)
    assert await effect_count(db, key) == 0

    switch.unlink()
    async with create_session_factory(db)() as session:
        await outbox.retry_dead_job(session, merchant_id=None, job_id=job_id)
        await session.commit()
        await outbox.dispatch_committed(session)
    job = await wait_for_status(db, job_id, DONE, timeout=30, pool=workers)
    assert job.attempts == 1
    assert await effect_count(db, key) == 1
