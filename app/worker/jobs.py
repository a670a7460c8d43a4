"""The registry of job handlers. A domain declares its jobs with `@job("<domain>.<event>")`;
the worker turns each into a dramatiq actor of that name."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Handler = Callable[..., Awaitable[Any]]

# Modules that declare jobs; imported before the actors are made.
JOB_MODULES = ("app.rewards.jobs", "app.webhooks.jobs")


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Handler  # async (session, **args); runs in the job's transaction, never commits
    max_attempts: int
    every: timedelta | None  # scheduled: the worker's scheduler enqueues it this often


HANDLERS: dict[str, JobSpec] = {}


def job(name: str, *, max_attempts: int = 8, every: timedelta | None = None) -> Callable[[Handler], Handler]:
    """Declare a job. It takes ids, must be idempotent, and gets its own session."""
    if "." not in name:
        raise ValueError("job names are '<domain>.<event>'")

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = JobSpec(name=name, handler=handler, max_attempts=max_attempts, every=every)
        return handler

    return register


def load_jobs() -> dict[str, JobSpec]:
    for module in JOB_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    return HANDLERS


async def call(spec: JobSpec, session: AsyncSession, args: dict[str, Any]) -> Any:
    return await spec.handler(session, **args)
