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
JOB_MODULES = (
    "app.analytics.jobs",
    "app.rewards.jobs",
    "app.fraud.jobs",
    "app.webhooks.jobs",
    "app.payouts.jobs",
    "app.privacy.jobs",
    "app.campaigns.jobs",
    "app.partners.jobs",
)


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Handler  # async (session, **args); runs in the job's transaction, never commits
    max_attempts: int
    every: timedelta | None  # scheduled: the worker's scheduler enqueues it this often
    min_backoff_ms: int | None = None  # first retry delay (doubling after); None: the broker default
    own_transactions: bool = False  # handler(factory, **args) manages its own transactions


HANDLERS: dict[str, JobSpec] = {}


def job(
    name: str,
    *,
    max_attempts: int = 8,
    every: timedelta | None = None,
    min_backoff_ms: int | None = None,
    own_transactions: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a job. It takes ids, must be idempotent, and gets its own session.

    By default the handler runs inside the job's transaction (`handler(session, **args)`),
    which commits its effects together with the job's DONE: exactly once in effect. A job that
    waits on the network (a webhook) should not hold a transaction meanwhile: with
    `own_transactions=True` it gets the session factory (`handler(factory, **args)`), commits
    its own short transactions and must be idempotent across a crash before DONE."""
    if "." not in name:
        raise ValueError("job names are '<domain>.<event>'")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = JobSpec(
            name=name,
            handler=handler,
            max_attempts=max_attempts,
            every=every,
            min_backoff_ms=min_backoff_ms,
            own_transactions=own_transactions,
        )
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
