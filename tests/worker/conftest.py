"""Fixtures for the worker tests: real dramatiq worker processes on real Redis and RabbitMQ,
with PostgreSQL as the database.

Each test module gets its own dramatiq queue (WORKER_QUEUE) on Redis database 9 / on the
RabbitMQ default vhost, removed afterwards. A broker that is unreachable skips its half of the
tests, unless REQUIRE_SERVICES=1, which makes that a failure (as for PostgreSQL)."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import tests.worker.jobs_for_tests as test_jobs
from app.config import Settings
from app.db import create_session_factory
from app.worker import broker as worker_broker
from app.worker import outbox
from app.worker.models import JobStatus, OutboxJob
from tests.conftest import REQUIRE_SERVICES

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
HEARTBEAT_MS = 2000


def _check_reachable(kind: str, url: str) -> None:
    try:
        if kind == "redis":
            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        else:
            parameters = pika.URLParameters(url)
            parameters.connection_attempts = 1
            parameters.socket_timeout = 3
            pika.BlockingConnection(parameters).close()
    except Exception as error:  # redis.ConnectionError, pika.exceptions.AMQPError, OSError
        if REQUIRE_SERVICES:
            pytest.fail(f"{kind} is required (REQUIRE_SERVICES=1) but unreachable at {url}: {error!r}")
        pytest.skip(f"{kind} unreachable at {url}: {error!r}")


def _remove_queue(kind: str, url: str, queue: str) -> None:
    if kind == "redis":
        client = redis.Redis.from_url(url)
        for pattern in (f"dramatiq:{queue}*", f"dramatiq:__acks__.*.{queue}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        return
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def broker_url(broker_kind: str) -> str:
    url = REDIS_URL if broker_kind == "redis" else RABBITMQ_URL
    _check_reachable(broker_kind, url)
    return url


class WorkerPool:
    """Real `dramatiq` worker processes, each in its own process group (killed as a whole)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self._started = 0

    def start(self) -> subprocess.Popen[bytes]:
        self._started += 1
        log = open(self.log_dir / f"worker-{self._started}.log", "wb")  # noqa: SIM115 (the worker process writes it)
        process = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "tests.worker.entry_for_tests", "--processes", "1", "--threads", "2"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: os.killpg reaches the worker process too
        )
        log.close()
        self.processes.append(process)
        return process

    def ensure_running(self) -> None:
        self.processes = [process for process in self.processes if process.poll() is None]
        if not self.processes:
            self.start()

    def kill(self, pgid: int) -> None:
        """SIGKILL a worker and its process group: no shutdown, no ack, no rollback."""
        os.killpg(pgid, signal.SIGKILL)
        for process in self.processes:
            if process.pid == pgid:
                process.wait(timeout=10)
        self.processes = [process for process in self.processes if process.pid != pgid]

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                # The main process only: it stops its worker processes gracefully. A second
                # SIGTERM, as a whole-group signal would give them, means "exit now".
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}" for path in sorted(self.log_dir.glob("*.log"))
        )


@pytest.fixture(scope="module")
def workers(
    backend: str,
    database_url: str,
    engine: AsyncEngine,
    broker_kind: str,
    broker_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerPool]:
    """One worker process on a fresh queue of the broker, PostgreSQL as the database; the
    test process sends to the same queue through `app.worker.broker` (configured for it)."""
    if backend != "postgresql":
        pytest.skip("worker processes run against PostgreSQL")
    queue = f"referral_test_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "DATABASE_POOL_SIZE": "4",
        "BROKER_URL": broker_url,
        "WORKER_QUEUE": queue,
        "REDIS_HEARTBEAT_TIMEOUT": str(HEARTBEAT_MS),
        # look for dead workers' messages on every Redis command (default: 0.1% of them)
        "REDIS_MAINTENANCE_CHANCE": "1000000",
        "APP_ENV": "test",
        "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "WARNING",
    }
    pool = WorkerPool(env, tmp_path_factory.mktemp(f"workers-{broker_kind}"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKER_QUEUE", queue)
        worker_broker.reset()
        worker_broker.configure(Settings(database_url=database_url, broker_url=broker_url, app_env="test", secret_key="x"))
        try:
            pool.start()
            yield pool
        finally:
            pool.stop_all()
            worker_broker.reset()
            _remove_queue(broker_kind, broker_url, queue)


@pytest.fixture
async def effects(db: AsyncEngine, owner_engine: AsyncEngine) -> Any:
    """The table the test jobs write to; dropped after the test (it is not in the models).
    Made by the tables' owner: the API's role may not create tables, and gets the usual grants."""
    async with owner_engine.begin() as connection:
        await connection.execute(text(test_jobs.CREATE_EFFECTS))
    yield
    async with owner_engine.begin() as connection:
        await connection.execute(text(test_jobs.DROP_EFFECTS))


# --- helpers -------------------------------------------------------------------------------


async def enqueue(engine: AsyncEngine, actor: str, *, dispatch: bool = True, **args: Any) -> uuid.UUID:
    """Enqueue a job in a transaction and commit it; with dispatch=False, do not send it:
    a crash between the commit and the send."""
    async with create_session_factory(engine)() as session:
        job = await outbox.enqueue(session, actor, **args)
        await session.commit()
        if dispatch:
            await outbox.dispatch_committed(session)
    assert job is not None
    return job.id


async def job_row(engine: AsyncEngine, job_id: uuid.UUID) -> OutboxJob:
    async with create_session_factory(engine)() as session:
        job = await session.scalar(select(OutboxJob).where(OutboxJob.id == job_id))
    assert job is not None
    return job


async def effect_count(engine: AsyncEngine, key: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(text(f"SELECT count FROM {test_jobs.EFFECTS_TABLE} WHERE key = :key"), {"key": key})
    return count or 0


async def wait_for(
    check: Callable[[], Awaitable[bool] | bool], *, timeout: float, what: str, pool: WorkerPool | None = None
) -> None:
    """Poll `check` (sync or async) until true; on timeout, fail with the workers' logs."""

    async def satisfied() -> bool:
        result = check()
        return bool(await result if inspect.isawaitable(result) else result)

    deadline = time.monotonic() + timeout
    while not await satisfied():
        if time.monotonic() > deadline:
            logs = pool.logs() if pool is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        await asyncio.sleep(0.05)


async def wait_for_status(
    engine: AsyncEngine, job_id: uuid.UUID, status: JobStatus, *, timeout: float, pool: WorkerPool | None = None
) -> OutboxJob:
    async def reached() -> bool:
        return (await job_row(engine, job_id)).status == status

    await wait_for(reached, timeout=timeout, what=f"job {job_id} {status.value}", pool=pool)
    return await job_row(engine, job_id)
