"""How the API reports problems.

- A caller's mistake in a mutation: `userErrors { field code message }` in the payload, after
  the transaction was rolled back (no partial writes).
- Authentication, permission and not-found on queries: a GraphQL error with
  `extensions.code` (`PublicError`).
- Anything else is a bug: masked as "Unexpected error." and logged with the request id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_transient, sqlstate
from app.errors import DomainError, ErrorCode
from app.worker import outbox

logger = logging.getLogger("app.graphql")

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode", description="Why an input was refused.")


@strawberry.type(description="A problem with the input of a mutation; nothing was written.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault (camelCase path), if any.")
    code: UserErrorCode
    message: str

    @classmethod
    def from_domain(cls, error: DomainError) -> "UserError":
        return cls(field=error.field, code=error.code, message=error.message)


class PublicError(GraphQLError):
    """An error whose message is safe to show; carries a stable `extensions.code`."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def not_found(what: str) -> PublicError:
    return PublicError(f"{what} not found", "NOT_FOUND")


def should_mask(error: GraphQLError) -> bool:
    """Only bugs are masked. Syntax, validation and variable errors describe the request: they
    have no path (every error of a resolving field has one), even when graphql-core keeps the
    scalar's ValueError behind them (a BigInt literal out of range)."""
    original = error.original_error
    if original is None or error.path is None:
        return False
    return not isinstance(original, GraphQLError)


P = TypeVar("P")


MAX_ATTEMPTS = 3


async def mutate(info: Any, payload: type[P], work: Callable[[AsyncSession], Awaitable[P]]) -> P:
    """The transaction boundary of a mutation: commit on success; roll back on a user error
    and return it in the payload. Services below never commit.

    A deadlock or serialisation failure between concurrent transactions rolls back and runs
    the mutation again (up to 3 times): every mutation is idempotent or a plain create, and
    the rolled-back attempt left nothing behind."""
    async def transaction(session: AsyncSession) -> P:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                result = await work(session)
                await session.commit()
                await outbox.dispatch_committed(session)
                return result
            except DomainError as error:
                await session.rollback()
                return payload(user_errors=[UserError.from_domain(error)])  # type: ignore[call-arg]
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

    return await info.context.run(transaction)


async def query(info: Any, work: Callable[[AsyncSession], Awaitable[P]]) -> P:
    """Run a read; a user error in its arguments becomes a PublicError with its code."""
    try:
        return await info.context.run(work)
    except DomainError as error:
        field = f" ({error.field})" if error.field else ""
        raise PublicError(error.message + field, error.code.value) from None
