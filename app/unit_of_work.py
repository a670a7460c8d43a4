"""The transaction boundary of a write: run the work, commit, hand the committed outbox jobs
to the broker, and run it again after a transient conflict. Services below never commit.

A deadlock or serialisation failure between concurrent transactions rolls back and runs the
work again (up to MAX_ATTEMPTS times): every write is idempotent or a plain create, and the
rolled-back attempt left nothing behind. Any other exception (a DomainError included) rolls
back and propagates: nothing of a refused write is kept.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_transient, sqlstate
from app.worker import outbox

logger = logging.getLogger("app.transactions")

T = TypeVar("T")

MAX_ATTEMPTS = 3


async def commit(session: AsyncSession, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in `session` and commit it, retrying transient conflicts."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = await work(session)
            await session.commit()
            await outbox.dispatch_committed(session)
            return result
        except DBAPIError as error:
            await session.rollback()
            if attempt == MAX_ATTEMPTS or not is_transient(error):
                raise
            logger.warning("transaction conflict, retrying", extra={"attempt": attempt, "sqlstate": sqlstate(error)})
            await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
        except BaseException:
            await session.rollback()
            raise
    raise AssertionError("unreachable")
