"""The dramatiq broker and its actors, configured once per process from BROKER_URL.

- `redis://...`: RedisBroker (the production default). A worker that dies holding messages
  has them requeued by the others after `REDIS_HEARTBEAT_TIMEOUT` ms. The API sends from its
  event loop, without a thread (`LoopSendingRedisBroker`).
- `amqp://...`: RabbitmqBroker with publisher confirms (a send returns once RabbitMQ has it).
- `stub://` (default): dramatiq's in-memory StubBroker, drained by in-process worker threads
  (`make run`); at boot the embedded worker relays every pending job, which a restart lost.

Environment knobs read here: WORKER_QUEUE (the dramatiq queue, default "default": separate
deployments sharing one broker), REDIS_HEARTBEAT_TIMEOUT (ms) and REDIS_MAINTENANCE_CHANCE
(per million commands: how often a Redis worker looks for dead workers' messages to requeue).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from datetime import timedelta
from typing import Any
from uuid import uuid4

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker, _scripts
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.middleware import AsyncIO, Middleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.worker import outbox, registry

logger = logging.getLogger("app.worker")
DEFAULT_QUEUE = "default"
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 5 * 60_000

_broker: Broker | None = None
_actors: dict[str, Actor] = {}
_factory: async_sessionmaker[AsyncSession] | None = None
_settings: Settings | None = None
_lock = threading.Lock()


def make_broker(url: str) -> Broker:
    if url.startswith(("redis://", "rediss://")):
        heartbeat = int(os.environ.get("REDIS_HEARTBEAT_TIMEOUT", "60000"))
        maintenance = int(os.environ.get("REDIS_MAINTENANCE_CHANCE", "1000"))
        broker: Broker = LoopSendingRedisBroker(
            url=url, heartbeat_timeout=heartbeat, maintenance_chance=maintenance, dead_message_ttl=7 * 86_400_000
        )
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith("stub://"):
        broker = StubBroker()
    else:
        raise ValueError(f"unsupported BROKER_URL {url!r}: use redis://, amqp:// or stub://")
    broker.add_middleware(AsyncIO())
    return broker


# A Redis that stops answering fails a send from the loop after this long instead of holding
# the request: the job stays pending, and the relay sends it again.
SEND_TIMEOUT_SECONDS = 5.0


class LoopSendingRedisBroker(RedisBroker):
    """dramatiq's RedisBroker, which can also send a message from an event loop: the same
    dispatch script with the same arguments, run by redis-py's asyncio client on that loop.

    The API sends every committed job after its transaction (`outbox.send`). Through the
    synchronous client that took a thread per message (`asyncio.to_thread`), whose hand-offs
    cost twice the send itself: 190-270 us of the process's CPU per message against 100 us on
    the loop (bench/README.md), a few percent of a referred purchase. `enqueue_from_loop` is
    `RedisBroker.enqueue` and its `_dispatch("enqueue")` (dramatiq 2.2, pinned in the lock
    files) with the script awaited; tests/worker/test_processes.py has real dramatiq workers
    run what it sends, at once and delayed. Workers consume through dramatiq's own code."""

    def __init__(self, *, url: str, **options: Any) -> None:
        super().__init__(url=url, **options)
        self._url = url
        # One asyncio client per event loop (a client's connections belong to the loop that made them).
        self._on_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    async def enqueue_from_loop(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> None:
        if type(self)._max_unpack_size_val is None:  # once per process: a blocking call to Redis
            await asyncio.to_thread(self._max_unpack_size)
        queue_name = message.queue_name
        message = message.copy(options={"redis_message_id": str(uuid4())})
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
        self.emit_before("enqueue", message, delay)
        arguments = [
            "enqueue",
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            self._should_do_maintenance("enqueue"),
            self._max_unpack_size(),
            message.options["redis_message_id"],
            message.encode(),
        ]
        await self._dispatch_script_on(asyncio.get_running_loop())(keys=[self.namespace], args=arguments)
        self.emit_after("enqueue", message, delay)

    def _dispatch_script_on(self, loop: asyncio.AbstractEventLoop) -> Any:
        script = self._on_loops.get(loop)
        if script is None:
            import redis.asyncio

            timeout = SEND_TIMEOUT_SECONDS
            client = redis.asyncio.Redis.from_url(self._url, socket_timeout=timeout, socket_connect_timeout=timeout)
            script = client.register_script(_scripts["dispatch"])
            self._on_loops[loop] = script
        return script

    async def close_on_loop(self) -> None:
        """Close this loop's client (the API's shutdown)."""
        script = self._on_loops.pop(asyncio.get_running_loop(), None)
        if script is not None:
            await script.registered_client.aclose()


async def send(actor: Actor, job_id: str, delay_ms: int | None) -> None:
    """Send a job's message from the event loop: on Redis without a thread, in memory
    (`stub://`) at once (a put on an unbounded queue), on RabbitMQ in a thread (pika blocks
    until the broker confirms)."""
    broker = actor.broker
    if isinstance(broker, LoopSendingRedisBroker):
        await broker.enqueue_from_loop(actor.message_with_options(args=(job_id,)), delay=delay_ms)
    elif isinstance(broker, StubBroker):
        actor.send_with_options(args=(job_id,), delay=delay_ms)
    else:
        await asyncio.to_thread(actor.send_with_options, args=(job_id,), delay=delay_ms)


async def close_loop_clients() -> None:
    """The API's shutdown: close what `send` opened on this event loop."""
    if isinstance(_broker, LoopSendingRedisBroker):
        await _broker.close_on_loop()


def queue_name() -> str:
    return os.environ.get("WORKER_QUEUE", DEFAULT_QUEUE)


def configure(settings: Settings | None = None) -> Broker:
    """The process's broker, with one actor per registered job ("<domain>.<event>"). The
    settings of the first call (by default, the environment's) also give the worker's
    database (`session_factory`)."""
    global _broker, _settings
    with _lock:
        if _broker is None:
            settings = settings or get_settings()
            broker = make_broker(settings.broker_url)
            dramatiq.set_broker(broker)
            for spec in registry.load_jobs().values():
                _actors[spec.name] = _make_actor(broker, spec)
            _settings = settings
            _broker = broker
    return _broker


def reset() -> None:
    """Forget this process's broker, actors and worker sessions, so that the next `configure`
    starts afresh (an embedded worker stopped with its app; tests switching brokers)."""
    global _broker, _factory, _settings
    with _lock:
        if _broker is not None:
            try:
                _broker.close()
            except Exception:
                logger.warning("could not close the broker", exc_info=True)
        _broker = None
        _actors.clear()
        _factory = None
        _settings = None


def _make_actor(broker: Broker, spec: registry.JobSpec) -> Actor:
    async def run(job_id: str) -> None:
        await outbox.run_job(session_factory(), job_id)

    run.__name__ = spec.name.replace(".", "_")
    return dramatiq.actor(
        actor_name=spec.name,
        queue_name=queue_name(),
        broker=broker,
        max_retries=spec.max_attempts - 1,
        min_backoff=spec.min_backoff_ms or MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
    )(run)


def actor_for(name: str) -> Actor:
    configure()
    return _actors[name]


def session_factory() -> async_sessionmaker[AsyncSession]:
    """The worker's own database sessions (created in the worker's event loop)."""
    global _factory
    if _factory is None:
        settings = _settings or get_settings()  # the configured settings: an embedded worker's are the app's
        _factory = create_session_factory(
            create_engine(settings.database_url, settings.database_pool_size), reason="worker jobs and scheduler"
        )
    return _factory


async def _dispose_session_factory() -> None:
    global _factory
    factory, _factory = _factory, None
    if factory is not None and factory.kw.get("bind") is not None:
        await factory.kw["bind"].dispose()


class Scheduler(Middleware):
    """Runs in every worker process: every `interval` seconds it enqueues the scheduled jobs
    that are due (once per period across all workers, by run key) and relays stuck jobs.
    With `relay_all_at_boot` (the in-memory broker, empty after a restart) its first tick
    relays every pending job at once instead of those pending for `outbox.RELAY_AFTER`.

    It also closes the worker's database connections at shutdown, in the worker's event loop
    (added after the AsyncIO middleware, its after_worker_shutdown runs before that loop stops)."""

    def __init__(self, interval: float = 10.0, *, relay_all_at_boot: bool = False) -> None:
        self.interval = interval
        self.relay_all_at_boot = relay_all_at_boot
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            try:
                loop_thread.run_coroutine(_dispose_session_factory())
            except Exception:
                logger.warning("could not close the worker's database connections", exc_info=True)

    def _loop(self) -> None:
        relay_after = timedelta(0) if self.relay_all_at_boot else outbox.RELAY_AFTER
        while not self._stop.is_set():
            try:
                loop_thread = get_event_loop_thread()
                if loop_thread is not None:
                    loop_thread.run_coroutine(tick(relay_after=relay_after))
                    relay_after = outbox.RELAY_AFTER
            except Exception:
                logger.exception("scheduler tick failed")
            self._stop.wait(self.interval)


async def tick(*, relay_after: timedelta = outbox.RELAY_AFTER) -> None:
    async with session_factory()() as session:
        await outbox.schedule_due(session)
        await outbox.relay(session, older_than=relay_after)
        await outbox.prune(session)


def start_embedded_worker(settings: Settings, threads: int = 2) -> dramatiq.Worker:
    """`make run`: dramatiq worker threads inside the API process, fed by the outbox. The
    broker is made afresh from these settings (not whatever an earlier caller configured)."""
    reset()
    broker = configure(settings)
    in_memory = settings.broker_url.startswith("stub://")
    broker.add_middleware(Scheduler(interval=5.0, relay_all_at_boot=in_memory))
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


def stop_embedded_worker(worker: dramatiq.Worker) -> None:
    """Stop the worker threads (finishing their current jobs) and forget the broker: a
    message still in the in-memory broker is relayed by the next start."""
    worker.stop()
    reset()
