"""Sending a committed job from the API's event loop (app.worker.broker.send) when Redis does
not answer: the request gets its answer, the job stays pending for the relay."""

from __future__ import annotations

import asyncio
import logging
import time

import dramatiq
import pytest
import redis.exceptions

from app.worker import broker as worker_broker
from app.worker import outbox
from app.worker.models import OutboxJob


@pytest.fixture
async def silent_redis():
    """A TCP server that accepts connections and never answers (a Redis that hangs)."""
    held = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(-1)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    for writer in held:
        writer.close()
    server.close()


async def test_a_send_to_a_redis_that_hangs_gives_up_and_leaves_the_job_to_the_relay(silent_redis, monkeypatch, caplog):
    monkeypatch.setattr(worker_broker, "SEND_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(worker_broker.LoopSendingRedisBroker, "_max_unpack_size_val", 4000)  # no blocking first call
    broker = worker_broker.LoopSendingRedisBroker(url=silent_redis)
    actor = dramatiq.actor(actor_name="test.never_sent", broker=broker)(lambda job_id: None)

    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):  # a hang fails here as asyncio's TimeoutError
        await asyncio.wait_for(worker_broker.send(actor, "some-job", None), 10)
    assert time.monotonic() - started < 3

    monkeypatch.setattr(worker_broker, "actor_for", lambda name: actor)
    job = OutboxJob(id=None, actor="test.never_sent", not_before=None)
    with caplog.at_level(logging.WARNING, logger="app.worker"):
        await outbox.send(job)  # logs, never raises: the request that committed the job is answered
    assert "the relay will" in caplog.text
    await broker.close_on_loop()
