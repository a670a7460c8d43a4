"""The dramatiq broker and its actors, configured once per process from BROKER_URL.

- `redis://...`: RedisBroker (the production default). A worker that dies holding messages
  has them requeued by the others after `REDIS_HEARTBEAT_TIMEOUT` ms.
- `amqp://...`: RabbitmqBroker with publisher confirms (a send returns once RabbitMQ has it).
- `stub://` (default): dramatiq's in-memory StubBroker, drained by in-process worker threads
  (`make run`); the outbox relay re-sends whatever a restart lost.
"""

from __future__ import annotations

import logging
import os
import threading

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, Middleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.worker import jobs, outbox

logger = logging.getLogger("app.worker")
QUEUE = "default"
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 5 * 60_000

_broker: Broker | None = None
_actors: dict[str, Actor] = {}
_factory: async_sessionmaker[AsyncSession] | None = None
_lock = threading.Lock()


def make_broker(url: str) -> Broker:
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        heartbeat = int(os.environ.get("REDIS_HEARTBEAT_TIMEOUT", "60000"))
        broker: Broker = RedisBroker(url=url, heartbeat_timeout=heartbeat, dead_message_ttl=7 * 86_400_000)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith("stub://"):
        broker = StubBroker()
    else:
        raise ValueError(f"unsupported BROKER_URL {url!r}: use redis://, amqp:// or stub://")
    broker.add_middleware(AsyncIO())
    return broker


def configure(settings: Settings | None = None) -> Broker:
    """The process's broker, with one actor per registered job ("<domain>.<event>")."""
    global _broker
    with _lock:
        if _broker is None:
            settings = settings or get_settings()
            broker = make_broker(settings.broker_url)
            dramatiq.set_broker(broker)
            for spec in jobs.load_jobs().values():
                _actors[spec.name] = _make_actor(broker, spec)
            _broker = broker
    return _broker


def _make_actor(broker: Broker, spec: jobs.JobSpec) -> Actor:
    async def run(job_id: str) -> None:
        await outbox.run_job(session_factory(), job_id)

    run.__name__ = spec.name.replace(".", "_")
    return dramatiq.actor(
        run,
        actor_name=spec.name,
        queue_name=QUEUE,
        broker=broker,
        max_retries=spec.max_attempts - 1,
        min_backoff=MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
    )


def actor_for(name: str) -> Actor:
    configure()
    return _actors[name]


def session_factory() -> async_sessionmaker[AsyncSession]:
    """The worker's own database sessions (created in the worker's event loop)."""
    global _factory
    if _factory is None:
        settings = get_settings()
        _factory = create_session_factory(create_engine(settings.database_url, settings.database_pool_size))
    return _factory


class Scheduler(Middleware):
    """Runs in every worker process: every `interval` seconds it enqueues the scheduled jobs
    that are due (once per period across all workers, by run key) and relays stuck jobs."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        while not self._stop.is_set():
            try:
                loop_thread = get_event_loop_thread()
                if loop_thread is not None:
                    loop_thread.run_coroutine(tick())
            except Exception:
                logger.exception("scheduler tick failed")
            self._stop.wait(self.interval)


async def tick() -> None:
    async with session_factory()() as session:
        await outbox.schedule_due(session)
        await outbox.relay(session)
        await outbox.prune(session)


def start_embedded_worker(settings: Settings, threads: int = 2) -> dramatiq.Worker:
    """`make run`: dramatiq worker threads inside the API process, fed by the outbox."""
    broker = configure(settings)
    broker.add_middleware(Scheduler(interval=5.0))
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker

