"""Reading rewards, balances and ledger entries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import merchant_rows
from app.pagination import Page, paginate
from app.referrals.models import REVERSING_TYPES, Action
from app.rewards.lifecycle import RefundOutcome
from app.rewards.models import AccountType, Coupon, LedgerAccount, LedgerEntry, Reward, RewardKind, RewardStatus
from app.tenancy import scoped


async def rewards_granted_by(session: AsyncSession, *, action: Action) -> list[Reward]:
    query = scoped(select(Reward).where(Reward.trigger_action_id == action.id), action.merchant_id).order_by(Reward.id)
    return list((await session.scalars(query)).all())


async def refund_outcome_of(session: AsyncSession, *, action: Action) -> RefundOutcome | None:
    """For a replayed refund: whether the order was known, and the rewards it took back."""
    if action.type not in REVERSING_TYPES or action.refund_order_found is None:
        return None
    if not action.refund_order_found:
        return RefundOutcome(order_found=False)
    purchase_ids = scoped(
        select(Action.id).where(Action.order_id == action.order_id, Action.type.not_in(REVERSING_TYPES)), action.merchant_id
    )
    rewards = await session.scalars(
        scoped(
            select(Reward).where(
                Reward.trigger_action_id.in_(purchase_ids),
                or_(Reward.reversed_amount > 0, Reward.status.in_([RewardStatus.VOIDED, RewardStatus.REVERSED])),
            ),
            action.merchant_id,
        ).order_by(Reward.id)
    )
    return RefundOutcome(order_found=True, rewards=list(rewards.all()))


async def get_reward(session: AsyncSession, *, merchant_id: uuid.UUID, reward_id: uuid.UUID) -> Reward | None:
    return await session.scalar(scoped(select(Reward).where(Reward.id == reward_id), merchant_id))


async def list_rewards(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID | None = None,
    status: RewardStatus | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Reward]:
    query = scoped(select(Reward), merchant_id)
    if customer_id is not None:
        query = query.where(Reward.customer_id == customer_id)
    if status is not None:
        query = query.where(Reward.status == status)
    return await paginate(session, query, Reward.id, first=first, after=after)


@dataclass(frozen=True)
class Balance:
    kind: RewardKind
    unit: str
    available: int  # may be negative after a clawback: it nets against future earnings
    held: int


async def balances(session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID) -> list[Balance]:
    accounts = (
        await session.scalars(scoped(select(LedgerAccount).where(LedgerAccount.owner_id == customer_id), merchant_id))
    ).all()
    found: dict[tuple[str, str], dict[AccountType, int]] = {}
    for account in accounts:
        found.setdefault((account.kind.value, account.unit), {})[account.account_type] = account.balance
    return [
        Balance(
            kind=RewardKind(kind),
            unit=unit,
            available=values.get(AccountType.AVAILABLE, 0),
            held=values.get(AccountType.HELD, 0),
        )
        for (kind, unit), values in sorted(found.items())
    ]


async def list_ledger_entries(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID, first: int | None, after: str | None
) -> Page[LedgerEntry]:
    query = scoped(
        select(LedgerEntry)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.owner_id == customer_id),
        merchant_id,
    )
    return await paginate(session, query, LedgerEntry.id, first=first, after=after)


async def get_rewards_by_referral_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, referral_ids: Sequence[uuid.UUID]
) -> list[Reward]:
    return await merchant_rows(session, Reward, merchant_id, Reward.referral_id, referral_ids)


async def get_coupons_by_reward_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, reward_ids: Sequence[uuid.UUID]
) -> list[Coupon]:
    return await merchant_rows(session, Coupon, merchant_id, Coupon.reward_id, reward_ids)


async def get_accounts_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[LedgerAccount]:
    return await merchant_rows(session, LedgerAccount, merchant_id, LedgerAccount.id, ids)


@dataclass(frozen=True)
class RewardTotal:
    """What a customer got of one kind and unit in a program: `earned` reached them (available,
    spent, paid or since expired; less what was clawed back), `pending` is still held."""

    kind: RewardKind
    unit: str
    count: int
    earned: int
    pending: int


_EARNED = (RewardStatus.AVAILABLE, RewardStatus.REDEEMED, RewardStatus.PAID, RewardStatus.EXPIRED)


async def reward_totals(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID, program_id: uuid.UUID
) -> list[RewardTotal]:
    """The customer's rewards in the program, summed per kind and unit (one grouped query)."""
    rows = await session.execute(
        scoped(
            select(Reward.kind, Reward.unit, Reward.status, func.count(), func.sum(Reward.amount - Reward.reversed_amount)).where(
                Reward.customer_id == customer_id,
                Reward.program_id == program_id,
                Reward.status.in_([*_EARNED, RewardStatus.HELD]),
            ),
            merchant_id,
        ).group_by(Reward.kind, Reward.unit, Reward.status)
    )
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for kind, unit, status, count, amount in rows.all():
        total = totals.setdefault((kind.value, unit), {"count": 0, "earned": 0, "pending": 0})
        total["count"] += count
        total["pending" if status == RewardStatus.HELD else "earned"] += int(amount or 0)
    return [RewardTotal(kind=RewardKind(kind), unit=unit, **values) for (kind, unit), values in sorted(totals.items())]


async def leaked_amounts(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> list[tuple[str, int]]:
    """What fraud flags that came after the money moved could not take back, per unit: the
    program's `leakedAmount` (`Reward.leaked_amount`, set by app.rewards.lifecycle's clawbacks)."""
    rows = await session.execute(
        scoped(
            select(Reward.unit, func.sum(Reward.leaked_amount)).where(Reward.program_id == program_id, Reward.leaked_amount > 0),
            merchant_id,
        )
        .group_by(Reward.unit)
        .order_by(Reward.unit)
    )
    return [(unit, int(total)) for unit, total in rows]


def leaked_by_unit(rewards: Sequence[Reward]) -> list[tuple[str, int]]:
    """The same for the rewards of one referral, already loaded."""
    totals: dict[str, int] = {}
    for reward in rewards:
        if reward.leaked_amount:
            totals[reward.unit] = totals.get(reward.unit, 0) + reward.leaked_amount
    return sorted(totals.items())
