"""What the GraphQL type modules share: global ids and amounts."""

from __future__ import annotations

import uuid

import strawberry

from app.schema.scalars import BigInt


def gid(value: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(str(value))


@strawberry.type
class Money:
    amount: BigInt = strawberry.field(description="In minor units (cents).")
    currency: str = strawberry.field(description="ISO 4217 code.")


@strawberry.type(description="Rewards in one unit, summed: minor units of a currency, POINTS, or PERCENT (basis points).")
class UnitAmount:
    unit: str
    amount: BigInt
