"""How the API reports problems.

- A caller's mistake in a mutation: `userErrors { field code message }` in the payload, after
  the transaction was rolled back (no partial writes).
- Authentication, permission and not-found on queries: a GraphQL error with
  `extensions.code` (`PublicError`).
- Anything else is a bug: masked as "Unexpected error." and logged with the request id.
"""

from __future__ import annotations

from typing import TypeAlias

import strawberry
from graphql import GraphQLError

from app.errors import DomainError, ErrorCode

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
UserErrorCode: TypeAlias = ErrorCode
strawberry.enum(UserErrorCode, name="UserErrorCode", description="Why an input was refused.")


@strawberry.type(description="A problem with the input of a mutation; nothing was written.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault (camelCase path), if any.")
    code: UserErrorCode
    message: str

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message)


class PublicError(GraphQLError):
    """An error whose message is safe to show; carries a stable `extensions.code`."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})
        self.code = code


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
