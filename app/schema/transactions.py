"""How a resolver runs its work against the database: `mutate` for writes (one committed
transaction, user errors returned in the payload after a rollback), `query` for reads (user
errors raised as a PublicError with their code). The commit itself is app.unit_of_work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import unit_of_work
from app.errors import DomainError
from app.schema.errors import PublicError, UserError

if TYPE_CHECKING:
    from app.schema.context import Context

P = TypeVar("P")


async def mutate(info: Info[Context, Any], payload: type[P], work: Callable[[AsyncSession], Awaitable[P]]) -> P:
    """Commit `work` (retrying transient conflicts); a DomainError rolls everything back and
    comes back as the payload's `userErrors`."""

    async def transaction(session: AsyncSession) -> P:
        try:
            return await unit_of_work.commit(session, work)
        except DomainError as error:
            return payload(user_errors=[UserError.from_domain(error)])  # type: ignore[call-arg]

    return await info.context.run(transaction)


async def query(info: Info[Context, Any], work: Callable[[AsyncSession], Awaitable[P]]) -> P:
    """Run a read; a user error in its arguments becomes a PublicError with its code."""
    try:
        return await info.context.run(work)
    except DomainError as error:
        field = f" ({error.field})" if error.field else ""
        raise PublicError(error.message + field, error.code.value) from None
