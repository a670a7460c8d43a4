"""Jobs used by the worker tests only. The test process imports this module to enqueue them;
the worker processes get them through `tests.worker.entry_for_tests`.

Each run of a job adds 1 to its key's row in `test_job_effects`, in the job's transaction: a
count of 1 after the job is DONE means its effects were committed exactly once, whatever the
deliveries, crashes and retries. `started_file` gets one line (the worker's process group) per
run of the handler, committed or not, so a test can see that a run began and where."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.worker.registry import job

EFFECTS_TABLE = "test_job_effects"
CREATE_EFFECTS = f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} (key VARCHAR(200) PRIMARY KEY, count INTEGER NOT NULL)"
DROP_EFFECTS = f"DROP TABLE IF EXISTS {EFFECTS_TABLE}"


async def _run(session: AsyncSession, key: str, sleep: str, started_file: str, fail_while: str) -> None:
    if started_file:
        with open(started_file, "a") as file:
            file.write(f"{os.getpgid(0)}\n")
    await session.execute(
        text(
            f"INSERT INTO {EFFECTS_TABLE} (key, count) VALUES (:key, 1) "
            f"ON CONFLICT (key) DO UPDATE SET count = {EFFECTS_TABLE}.count + 1"
        ),
        {"key": key},
    )
    if float(sleep):
        # Mid-transaction: the effect is written but not committed while the worker sleeps in
        # Python (not in the database, so a killed worker's connection drops at once).
        await asyncio.sleep(float(sleep))
    if fail_while and Path(fail_while).exists():
        raise RuntimeError(f"told to fail while {fail_while} exists")


@job("test.record", max_attempts=3, min_backoff_ms=100)
async def record(session: AsyncSession, key: str, sleep: str = "0", started_file: str = "") -> None:
    await _run(session, key, sleep, started_file, "")


@job("test.flaky", max_attempts=2, min_backoff_ms=100)
async def flaky(session: AsyncSession, key: str, fail_while: str) -> None:
    await _run(session, key, "0", "", fail_while)
