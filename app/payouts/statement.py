"""A customer's commission statement for a period: the answer to "where is my commission?".

Every commission reward granted in the period, with what happened to it: held (until when,
or by which fraud review), reversed or voided (and by which refund of its order), paid (by
which payout). Every payout requested in the period, with its holds. And per currency the
ledger's view: balances (held, available, set aside for payouts) at the start and the end,
and what moved in between (earned, voided, reversed, paid out, returned). The totals come
from the ledger entries, so they reconcile with `referral ledger verify`; `reconciles` says
that the movements lead from the opening to the closing balances.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.errors import DomainError, ErrorCode
from app.fraud.models import FraudReview, ReviewStatus
from app.payouts.models import Payout, PayoutItem
from app.referrals import customers
from app.referrals.models import REVERSING_TYPES, Action, Customer
from app.rewards.models import AccountType, LedgerAccount, LedgerEntry, LedgerTransaction, Reward, RewardKind, RewardStatus

MAX_DAYS = 366
MAX_REWARDS = 1000
MAX_PAYOUTS = 500
ACCOUNTS = (AccountType.HELD, AccountType.AVAILABLE, AccountType.PAYOUT_PENDING)


@dataclass(frozen=True)
class Balances:
    held: int = 0
    available: int = 0  # negative after a clawback
    payout_pending: int = 0

    @property
    def total(self) -> int:
        return self.held + self.available + self.payout_pending


@dataclass
class Totals:
    currency: str
    opening: Balances
    closing: Balances
    earned: int = 0  # granted
    voided: int = 0  # cancelled while held (refunds, fraud)
    reversed: int = 0  # clawed back after it was available
    paid_out: int = 0
    returned: int = 0  # payments that came back after they were marked paid
    other: int = 0  # any other movement (none for commission today): kept so the sums stay exact

    @property
    def reconciles(self) -> bool:
        moved = self.earned - self.voided - self.reversed - self.paid_out + self.returned + self.other
        return self.opening.total + moved == self.closing.total


@dataclass(frozen=True)
class Refund:
    action_id: uuid.UUID
    type: str
    order_id: str | None
    amount: int | None
    currency: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Movement:
    kind: str  # VOID, REVERSAL, ...
    amount: int
    at: datetime


@dataclass(frozen=True)
class PaidPart:
    payout_id: uuid.UUID
    reference: str
    status: str
    amount: int


@dataclass
class RewardLine:
    reward: Reward
    granted_at: datetime
    order_id: str | None
    held_until: datetime | None = None  # the hold period (refund window)
    review_id: uuid.UUID | None = None  # the open fraud review holding it
    reversals: list[Movement] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)  # of the order that earned it
    paid: list[PaidPart] = field(default_factory=list)

    @property
    def held_because(self) -> str | None:
        if self.reward.status != RewardStatus.HELD:
            return None
        if self.review_id is not None:
            return "FRAUD_REVIEW"
        return "HOLD_PERIOD"


@dataclass
class Statement:
    customer: Customer
    start: datetime
    end: datetime
    rewards: list[RewardLine]
    payouts: list[Payout]
    totals: list[Totals]
    truncated: bool


async def statement(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str, start: datetime, end: datetime
) -> Statement:
    start, end = validation.aware(start, "from"), validation.aware(end, "to")
    if end <= start:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to must be after from")
    if end - start > timedelta(days=MAX_DAYS):
        raise DomainError("to", ErrorCode.INVALID_INPUT, f"a statement covers at most {MAX_DAYS} days")
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    lines = await _reward_lines(session, customer, start, end)
    payouts = list(
        (
            await session.scalars(
                select(Payout)
                .where(
                    Payout.merchant_id == merchant_id,
                    Payout.customer_id == customer.id,
                    Payout.created_at >= start,
                    Payout.created_at < end,
                )
                .order_by(Payout.id)
                .limit(MAX_PAYOUTS)
            )
        ).all()
    )
    return Statement(
        customer=customer,
        start=start,
        end=end,
        rewards=lines[:MAX_REWARDS],
        payouts=payouts,
        totals=await _totals(session, customer, start, end),
        truncated=len(lines) > MAX_REWARDS,
    )


async def _reward_lines(session: AsyncSession, customer: Customer, start: datetime, end: datetime) -> list[RewardLine]:
    """Rewards whose grant the ledger booked in the period (so they add up to `earned`)."""
    rows = (
        await session.execute(
            select(Reward, LedgerTransaction.created_at, Action.order_id)
            .join(LedgerTransaction, (LedgerTransaction.reward_id == Reward.id) & (LedgerTransaction.kind == "GRANT"))
            .join(Action, Action.id == Reward.trigger_action_id)
            .where(
                Reward.customer_id == customer.id,
                Reward.merchant_id == customer.merchant_id,
                Reward.kind == RewardKind.COMMISSION,
                LedgerTransaction.created_at >= start,
                LedgerTransaction.created_at < end,
            )
            .order_by(Reward.id)
            .limit(MAX_REWARDS + 1)
        )
    ).all()
    lines = [RewardLine(reward=r, granted_at=at, order_id=order_id) for r, at, order_id in rows]
    if not lines:
        return lines
    ids = [line.reward.id for line in lines]
    movements: dict[uuid.UUID | None, list[Movement]] = defaultdict(list)
    for reward_id, kind, amount, at in (
        await session.execute(
            select(
                LedgerTransaction.reward_id, LedgerTransaction.kind, func.sum(LedgerEntry.amount), LedgerTransaction.created_at
            )
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerTransaction.reward_id.in_(ids),
                LedgerTransaction.kind.in_(["VOID", "REVERSAL"]),
                LedgerAccount.owner_type == "CUSTOMER",
            )
            .group_by(LedgerTransaction.id, LedgerTransaction.reward_id, LedgerTransaction.kind, LedgerTransaction.created_at)
            .order_by(LedgerTransaction.created_at)
        )
    ).all():
        movements[reward_id].append(Movement(kind=kind, amount=-amount, at=at))
    orders = {line.order_id for line in lines if line.order_id}
    refunds: dict[str | None, list[Refund]] = defaultdict(list)
    if orders:
        for action in (
            await session.scalars(
                select(Action)
                .where(Action.merchant_id == customer.merchant_id, Action.order_id.in_(orders), Action.type.in_(REVERSING_TYPES))
                .order_by(Action.occurred_at)
            )
        ).all():
            refunds[action.order_id].append(
                Refund(action.id, action.type, action.order_id, action.amount, action.currency, action.occurred_at)
            )
    reviews: dict[uuid.UUID | None, uuid.UUID] = dict(
        (
            await session.execute(
                select(FraudReview.referral_id, FraudReview.id).where(
                    FraudReview.referral_id.in_({line.reward.referral_id for line in lines}),
                    FraudReview.status == ReviewStatus.OPEN,
                )
            )
        ).all()
    )
    paid: dict[uuid.UUID, list[PaidPart]] = defaultdict(list)
    for reward_id, payout_id, reference, status, amount in (
        await session.execute(
            select(PayoutItem.reward_id, Payout.id, Payout.reference, Payout.status, PayoutItem.amount)
            .join(Payout, Payout.id == PayoutItem.payout_id)
            .where(PayoutItem.reward_id.in_(ids))
            .order_by(Payout.id)
        )
    ).all():
        paid[reward_id].append(PaidPart(payout_id, reference, status.value, amount))
    for line in lines:
        reward = line.reward
        line.reversals = movements[reward.id]
        line.refunds = refunds.get(line.order_id, []) if line.reversals else []
        line.paid = paid[reward.id]
        if reward.status == RewardStatus.HELD:
            line.held_until = reward.hold_until
            line.review_id = reviews.get(reward.referral_id) if reward.review_hold else None
    return lines


async def _totals(session: AsyncSession, customer: Customer, start: datetime, end: datetime) -> list[Totals]:
    accounts = {
        a.id: a
        for a in (
            await session.scalars(
                select(LedgerAccount).where(
                    LedgerAccount.merchant_id == customer.merchant_id,
                    LedgerAccount.owner_id == customer.id,
                    LedgerAccount.kind == RewardKind.COMMISSION,
                    LedgerAccount.account_type.in_(ACCOUNTS),
                )
            )
        ).all()
    }
    if not accounts:
        return []
    before: dict[tuple[str, str], int] = defaultdict(int)  # (unit, account type) -> sum before start
    moved: dict[tuple[str, str, str], int] = defaultdict(int)  # (unit, account type, transaction kind) -> sum in period
    for earlier, window in (
        (True, LedgerEntry.created_at < start),
        (False, (LedgerEntry.created_at >= start) & (LedgerEntry.created_at < end)),
    ):
        for account_id, kind, amount in (
            await session.execute(
                select(LedgerEntry.account_id, LedgerTransaction.kind, func.sum(LedgerEntry.amount))
                .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                .where(LedgerEntry.account_id.in_(list(accounts)), window)
                .group_by(LedgerEntry.account_id, LedgerTransaction.kind)
            )
        ).all():
            account = accounts[account_id]
            if earlier:
                before[(account.unit, account.account_type.value)] += amount
            else:
                moved[(account.unit, account.account_type.value, kind)] += amount
    totals = []
    for unit in sorted({a.unit for a in accounts.values()}):

        def balances(extra: dict[str, int], unit: str = unit) -> Balances:
            return Balances(
                held=before[(unit, "HELD")] + extra.get("HELD", 0),
                available=before[(unit, "AVAILABLE")] + extra.get("AVAILABLE", 0),
                payout_pending=before[(unit, "PAYOUT_PENDING")] + extra.get("PAYOUT_PENDING", 0),
            )

        in_period: dict[str, int] = defaultdict(int)
        by_kind: dict[str, int] = defaultdict(int)
        for (u, account_type, kind), amount in moved.items():
            if u == unit:
                in_period[account_type] += amount
                by_kind[kind] += amount
        known = {"GRANT", "VOID", "REVERSAL", "PAYOUT_PAID", "PAYOUT_REVERSAL", "RELEASE", "PAYOUT", "PAYOUT_RETURN"}
        totals.append(
            Totals(
                currency=unit,
                opening=balances({}),
                closing=balances(in_period),
                earned=by_kind["GRANT"],
                voided=-by_kind["VOID"],
                reversed=-by_kind["REVERSAL"],
                paid_out=-by_kind["PAYOUT_PAID"],
                returned=by_kind["PAYOUT_REVERSAL"],
                other=sum(a for k, a in by_kind.items() if k not in known)
                + by_kind["RELEASE"]
                + by_kind["PAYOUT"]
                + by_kind["PAYOUT_RETURN"],
            )
        )
    return totals
