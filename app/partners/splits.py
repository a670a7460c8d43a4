"""Commission splits: how one sale's commission is shared among the affiliate and co-producers.

A split names the affiliate's share and fixed parties' shares in basis points of the order
amount; what is left stays with the merchant. Per program, or per product SKU (the action's
`metadata.sku`), versioned: a change supersedes the current version, history stays, and each
sale records the version it was paid under.

Rounding (`allocate`): each party is owed `amount * share_bps / 10_000`, usually a fraction of
a cent. Every party gets the whole cents of its exact share (rounded down); the cents the
floors left over together (less than one per party) go by largest remainder: one extra cent
each to the parties with the largest fractional parts, ties by the party's order in the split,
but only as many as make the total the floor of the exact total (`amount * sum(bps) // 10_000`).
The fraction below a cent of the total stays with the merchant. So the parties' cents add up
exactly to the total paid: no cent is lost or created.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.partners.models import CommissionSplit
from app.partners.service import affiliate_program
from app.referrals.models import Customer
from app.rewards.rules import MAX_BPS

MAX_PARTIES = 20
_SKU_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}"


@dataclass(frozen=True)
class SplitParty:
    customer_external_id: str
    share_bps: int


@dataclass(frozen=True)
class PartyShare:
    """A party's place and share in one sale: `key` is the customer id."""

    key: uuid.UUID
    share_bps: int


def allocate(amount: int, shares: list[PartyShare]) -> list[int]:
    """Each party's cents of `amount` (see the module's docstring for the remainder rule)."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    exact = [amount * s.share_bps for s in shares]  # in 1/10_000 of a cent
    floors = [e // MAX_BPS for e in exact]
    total = sum(exact) // MAX_BPS
    left = total - sum(floors)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] % MAX_BPS), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return floors


def reversal_target(granted: int, refunded_of_order: int, order_amount: int) -> int:
    """How much of a party's `granted` cents the refunds of `refunded_of_order` (cumulative)
    take back: the floor of its proportion, so partial refunds never reverse more than was
    granted, and the full refund reverses exactly all of it."""
    if order_amount <= 0:
        return granted
    return granted * min(refunded_of_order, order_amount) // order_amount


def sku_key(sku: str | None) -> str:
    if sku is None:
        return ""
    sku = sku.strip()
    if not re.fullmatch(_SKU_PATTERN, sku):
        raise DomainError("sku", ErrorCode.INVALID_INPUT, "a SKU is 1-100 letters, digits or . _ : / -")
    return sku


async def set_split(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    sku: str | None,
    affiliate_bps: int | None,
    parties: list[SplitParty],
) -> CommissionSplit:
    """A new version of the program's (or SKU's) split; the current one is superseded."""
    key = sku_key(sku)
    affiliate_bps = validation.int_range(affiliate_bps, "affiliateBps", 1, MAX_BPS)
    if len(parties) > MAX_PARTIES:
        raise DomainError("parties", ErrorCode.TOO_MANY, f"at most {MAX_PARTIES} co-producers")
    program = await affiliate_program(session, merchant_id=merchant_id, program_id=program_id)
    seen: set[str] = set()
    for index, party in enumerate(parties):
        field = f"parties.{index}"
        validation.int_range(party.share_bps, f"{field}.shareBps", 1, MAX_BPS)
        if party.share_bps is None:
            raise DomainError(f"{field}.shareBps", ErrorCode.REQUIRED, "each party needs a share above 0")
        external_id = validation.required_text(party.customer_external_id, f"{field}.customerExternalId", 255, strip=False)
        if external_id in seen:
            raise DomainError(f"{field}.customerExternalId", ErrorCode.INVALID_INPUT, "a party appears once in a split")
        seen.add(external_id)
    total = (affiliate_bps or 0) + sum(p.share_bps for p in parties)
    if total > MAX_BPS:
        raise DomainError("parties", ErrorCode.INVALID_AMOUNT, f"the shares add up to {total} basis points, more than 100 %")
    found = (
        {
            c.external_id: c
            for c in (
                await session.scalars(select(Customer).where(Customer.merchant_id == merchant_id, Customer.external_id.in_(seen)))
            ).all()
        }
        if seen
        else {}
    )
    for index, party in enumerate(parties):
        if party.customer_external_id not in found:
            raise DomainError(f"parties.{index}.customerExternalId", ErrorCode.NOT_FOUND, "no such customer")
    current = await session.scalar(
        select(CommissionSplit)
        .where(
            CommissionSplit.merchant_id == merchant_id,
            CommissionSplit.program_id == program.id,
            CommissionSplit.sku_key == key,
            CommissionSplit.superseded_at.is_(None),
        )
        .with_for_update()
    )
    now = utcnow()
    if current is not None:
        current.superseded_at = now
        await session.flush()
    split = CommissionSplit(
        merchant_id=merchant_id,
        program_id=program.id,
        sku_key=key,
        version=(current.version + 1) if current else 1,
        affiliate_bps=affiliate_bps,
        created_at=now,
        parties=[{"customer_id": str(found[p.customer_external_id].id), "share_bps": p.share_bps} for p in parties],
    )
    session.add(split)
    await session.flush()
    return split


async def split_history(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, sku: str | None
) -> list[CommissionSplit]:
    await affiliate_program(session, merchant_id=merchant_id, program_id=program_id)
    return list(
        (
            await session.scalars(
                select(CommissionSplit)
                .where(
                    CommissionSplit.merchant_id == merchant_id,
                    CommissionSplit.program_id == program_id,
                    CommissionSplit.sku_key == sku_key(sku),
                )
                .order_by(CommissionSplit.version)
            )
        ).all()
    )


async def split_in_force(session: AsyncSession, *, program_id: uuid.UUID, sku: str | None) -> CommissionSplit | None:
    """The SKU's current split if it has one, else the program's."""
    keys = [""] if not sku else [sku[:100], ""]
    rows = (
        await session.scalars(
            select(CommissionSplit).where(
                CommissionSplit.program_id == program_id,
                CommissionSplit.sku_key.in_(keys),
                CommissionSplit.superseded_at.is_(None),
            )
        )
    ).all()
    by_key = {row.sku_key: row for row in rows}
    return next((by_key[k] for k in keys if k in by_key), None)
