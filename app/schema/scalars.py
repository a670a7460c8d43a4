"""Custom scalars. GraphQL's Int is 32-bit; money in minor units needs more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NewType, TypeAlias

import strawberry
from strawberry.types.scalar import ScalarDefinition

if TYPE_CHECKING:  # to the type checker a BigInt is the int it carries; to strawberry, its own scalar
    BigInt: TypeAlias = int
    JSON: TypeAlias = Any  # any JSON value (strawberry.scalars.JSON at run time)
else:
    from strawberry.scalars import JSON

    BigInt = NewType("BigInt", int)

__all__ = ["JSON", "SCALAR_MAP", "BigInt"]
_BIGINT_LIMIT = 2**53 - 1  # exact in JavaScript numbers


def _parse_bigint(value: Any) -> int:
    """graphql-core reports a ValueError here as the request's error, with the value's location
    (a literal at validation, a variable before execution)."""
    if isinstance(value, bool):
        raise ValueError("BigInt cannot be a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and len(value) <= 40 and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise ValueError("BigInt must be a whole number")
    if abs(number) > _BIGINT_LIMIT:
        raise ValueError("BigInt is out of range")
    return number


SCALAR_MAP: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A whole number up to 2^53-1, e.g. an amount in minor units (cents).",
        serialize=int,
        parse_value=_parse_bigint,
    )
}
