"""What sending one committed job to the broker costs the API process (`app.worker.outbox.send`).

Three ways, N messages each, one after another on one event loop, against the Redis of
BROKER_URL (default redis://127.0.0.1:6379/13, flushed afterwards): the synchronous client in
a thread per message (`asyncio.to_thread`, how the API sent before e601609), the same call on
the loop (blocking it: for comparison only), and the asyncio client on the loop
(`LoopSendingRedisBroker.enqueue_from_loop`, how the API sends now). It prints the process's
CPU (user + system, the thread's included) and Redis's own CPU per message.

    .venv/bin/python bench/broker_send.py [--messages 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BROKER_URL", "redis://127.0.0.1:6379/13")

from app.fraud.identifiers import RESCREEN_JOB  # noqa: E402
from app.worker import broker  # noqa: E402


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    client = redis.Redis.from_url(os.environ["BROKER_URL"])
    broker.configure()
    actor = broker.actor_for(RESCREEN_JOB)
    assert isinstance(actor.broker, broker.LoopSendingRedisBroker), "BROKER_URL must be redis://"

    async def in_a_thread() -> None:
        await asyncio.to_thread(actor.send_with_options, args=("x",), delay=None)

    async def blocking_the_loop() -> None:
        actor.send_with_options(args=("x",), delay=None)

    async def from_the_loop() -> None:
        await broker.send(actor, "x", None)

    ways = {"thread per message": in_a_thread, "on the loop, blocking": blocking_the_loop, "asyncio client": from_the_loop}
    try:
        for _ in range(args.rounds):
            for name, way in ways.items():
                cpu, server, wall = process_cpu(), redis_cpu(client), time.perf_counter()
                for _ in range(args.messages):
                    await way()
                n = args.messages
                print(
                    f"{name:>22}: {1e6 * (process_cpu() - cpu) / n:4.0f} us of the process's CPU per message, "
                    f"Redis {1e6 * (redis_cpu(client) - server) / n:3.0f} us, wall {1e6 * (time.perf_counter() - wall) / n:4.0f} us"
                )
    finally:
        await broker.close_loop_clients()
        client.flushdb()


if __name__ == "__main__":
    asyncio.run(main())
