"""`referral ledger verify` with payouts: the rewards ledger's invariants, and that money set
aside for payouts is exactly what the payouts in flight hold."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.payouts.models import Payout, PayoutItem, PayoutStatus
from app.rewards import ledger
from app.rewards.ledger import Discrepancy
from app.rewards.models import AccountType, LedgerAccount


async def verify(session: AsyncSession, *, merchant_id: uuid.UUID | None = None) -> list[Discrepancy]:
    problems = await ledger.verify(session, merchant_id=merchant_id)
    scope = [] if merchant_id is None else [LedgerAccount.merchant_id == merchant_id]
    pending = {
        (owner_id, unit): balance
        for owner_id, unit, balance in (
            await session.execute(
                select(LedgerAccount.owner_id, LedgerAccount.unit, LedgerAccount.balance).where(
                    LedgerAccount.account_type == AccountType.PAYOUT_PENDING, *scope
                )
            )
        ).all()
    }
    payout_scope = [] if merchant_id is None else [Payout.merchant_id == merchant_id]
    in_flight = {
        (customer_id, currency): total
        for customer_id, currency, total in (
            await session.execute(
                select(Payout.customer_id, Payout.currency, func.sum(Payout.amount))
                .where(Payout.status.in_([s for s in PayoutStatus if s.holds_funds]), *payout_scope)
                .group_by(Payout.customer_id, Payout.currency)
            )
        ).all()
    }
    for key in sorted(set(pending) | set(in_flight), key=str):
        if pending.get(key, 0) != in_flight.get(key, 0):
            problems.append(
                Discrepancy(
                    "payouts pending",
                    f"customer {key[0]} {key[1]}: set aside {pending.get(key, 0)}, payouts in flight {in_flight.get(key, 0)}",
                )
            )
    items = select(PayoutItem.payout_id, func.sum(PayoutItem.amount).label("total")).group_by(PayoutItem.payout_id).subquery()
    for payout_id, amount, total in (
        await session.execute(
            select(Payout.id, Payout.amount, func.coalesce(items.c.total, 0))
            .outerjoin(items, items.c.payout_id == Payout.id)
            .where(Payout.amount != func.coalesce(items.c.total, 0), *payout_scope)
        )
    ).all():
        problems.append(Discrepancy("payout items", f"payout {payout_id}: amount {amount}, its lots {total}"))
    return problems
