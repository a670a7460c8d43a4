"""Worker benchmark: how fast ONE dramatiq worker process drains the outbox.

    .venv/bin/python bench/worker_bench.py                       # 2000 jobs, Redis, 8 threads
    .venv/bin/python bench/worker_bench.py --jobs 5000 --threads 16
    .venv/bin/python bench/worker_bench.py --broker amqp://guest:guest@127.0.0.1:5672/%2F

A fresh PostgreSQL database gets N `bench.noop` jobs, committed in the outbox and sent to the
broker (on a queue of its own) before any worker runs. Then one worker process starts
(`python -m dramatiq worker_bench --processes 1 --threads T`, this file as the worker's
module) and the clock runs until every job is DONE. A no-op job still costs the outbox's
work: claim the row (UPDATE ... RETURNING, commit), lock it (SELECT ... FOR UPDATE), run the
handler, mark it DONE (commit) -- two transactions per job.

Printed: jobs/s from the worker's start (boot included) and from its first finished job.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from app.worker.registry import job  # noqa: E402


@job("bench.noop", max_attempts=3)
async def noop(session: AsyncSession, n: str) -> None:
    """Nothing: the cost measured is the outbox's and dramatiq's."""


if __name__ != "__main__":
    # Imported by `python -m dramatiq worker_bench`: be the worker's module.
    from app.worker.entry import broker  # noqa: E402, F401


async def main() -> None:
    import asyncpg
    from sqlalchemy import func, select

    from app.config import Settings
    from app.db import create_engine, create_session_factory
    from app.migrations import upgrade
    from app.worker import broker as worker_broker
    from app.worker import outbox
    from app.worker.models import JobStatus, OutboxJob

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    name = f"referral_bench_{uuid.uuid4().hex[:10]}"
    queue = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.postgres_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = args.postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    engine = create_engine(database_url)
    worker = None
    os.environ["WORKER_QUEUE"] = queue
    try:
        await upgrade(engine)
        factory = create_session_factory(engine)
        worker_broker.configure(Settings(database_url=database_url, broker_url=args.broker))

        started = time.perf_counter()
        async with factory() as session:
            for n in range(args.jobs):
                await outbox.enqueue(session, "bench.noop", n=n)
            await session.commit()
            await outbox.dispatch_committed(session)  # one message per job, before any worker
        print(f"{args.jobs} jobs committed and sent in {time.perf_counter() - started:.1f} s")

        async def done() -> int:
            async with factory() as session:
                return (
                    await session.scalar(
                        select(func.count())
                        .select_from(OutboxJob)
                        .where(OutboxJob.actor == "bench.noop", OutboxJob.status == JobStatus.DONE.value)
                    )
                    or 0
                )

        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
            "DATABASE_URL": database_url,
            "BROKER_URL": args.broker,
            "WORKER_QUEUE": queue,
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "test",
            "SECRET_KEY": "bench",
        }
        command = [sys.executable, "-m", "dramatiq", "worker_bench", "--processes", "1", "--threads", str(args.threads)]
        t0 = time.perf_counter()
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = None
        count = 0
        while count < args.jobs:
            await asyncio.sleep(0.05)
            count = await done()
            if count and first is None:
                first = (time.perf_counter(), count)
            if worker.poll() is not None:
                sys.exit(f"the worker exited ({worker.returncode}) with {count}/{args.jobs} jobs done")
            if time.perf_counter() - t0 > 600:
                sys.exit(f"timed out with {count}/{args.jobs} jobs done")
        t1 = time.perf_counter()
        assert first is not None
        print(f"worker: 1 process, {args.threads} threads, broker {args.broker.split('://')[0]}, PostgreSQL")
        print(f"all {args.jobs} DONE {t1 - t0:.2f} s after the worker started: {args.jobs / (t1 - t0):.0f} jobs/s")
        steady = (args.jobs - first[1]) / (t1 - first[0]) if t1 > first[0] else float("nan")
        print(f"from its first finished job (boot excluded): {steady:.0f} jobs/s; boot {first[0] - t0:.2f} s")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        worker_broker.reset()
        await engine.dispose()
        if args.broker.startswith("redis"):
            import redis

            client = redis.Redis.from_url(args.broker)
            for key in client.scan_iter(match=f"dramatiq:*{queue}*"):
                client.delete(key)
        else:
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(args.broker))
            channel = connection.channel()
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(queue + suffix)
            connection.close()
        admin = await asyncpg.connect(args.postgres_admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
