"""Partner reports, read live from clicks and sales: per partner, per link or per sub-id.

Clicks count by the click's time, conversions and money by the sale's (`occurred_at`), over a
half-open period [start, end). Revenue is the order amounts net of refunds; commission is the
affiliate's own share, read from the reward that pays it (app.partners.sales): earned net of
refunds and fraud decisions, the part still HELD, and the part payouts have PAID (co-producers
see their shares in `statement`). Every query
names the merchant and the program; a partner's own view adds their customer id.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.errors import DomainError, ErrorCode
from app.partners.models import PartnerSale, PartnerSaleShare, SaleStatus
from app.payouts.models import Payout, PayoutItem, PayoutStatus
from app.referrals import programs
from app.referrals.models import Click, ReferralCode
from app.rewards.models import Reward, RewardStatus

MAX_ROWS = 1000


class GroupBy(enum.Enum):
    PARTNER = "PARTNER"
    LINK = "LINK"  # the partner's code
    SUB_ID = "SUB_ID"  # the partner's tag on the link


@dataclass
class ReportRow:
    affiliate_id: uuid.UUID
    code_id: uuid.UUID | None = None  # LINK rows
    sub_id: str | None = None  # SUB_ID rows ('' and None: clicks without one are None)
    clicks: int = 0
    conversions: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units, net of refunds
    commission_earned: dict[str, int] = field(default_factory=dict)  # net of reversals
    commission_held: dict[str, int] = field(default_factory=dict)
    commission_paid: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        return round(self.conversions / self.clicks, 4) if self.clicks else None


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    start, end = validation.aware(start, "from"), validation.aware(end, "to")
    if start is None or end is None:
        raise DomainError("from" if start is None else "to", ErrorCode.REQUIRED, "the period needs from and to")
    if end <= start:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to is after from")
    return start, end


async def partner_report(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    group_by: GroupBy,
    affiliate_id: uuid.UUID | None = None,
) -> list[ReportRow]:
    start, end = _period(start, end)
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)

    def key_columns(code_column: Any, sub_column: Any) -> list[Any]:
        return {GroupBy.PARTNER: [], GroupBy.LINK: [code_column], GroupBy.SUB_ID: [sub_column]}[group_by]

    rows: dict[tuple[Any, ...], ReportRow] = {}

    def row_for(affiliate: uuid.UUID, extra: tuple[Any, ...]) -> ReportRow:
        key = (affiliate, *extra)
        if key not in rows:
            rows[key] = ReportRow(
                affiliate_id=affiliate,
                code_id=extra[0] if group_by is GroupBy.LINK else None,
                sub_id=extra[0] if group_by is GroupBy.SUB_ID else None,
            )
        return rows[key]

    click_keys = key_columns(Click.code_id, Click.sub_id)
    clicks = (
        select(ReferralCode.customer_id, *click_keys, func.count(Click.id))
        .join(ReferralCode, ReferralCode.id == Click.code_id)
        .where(
            Click.merchant_id == merchant_id,
            Click.program_id == program_id,
            Click.created_at >= start,
            Click.created_at < end,
        )
        .group_by(ReferralCode.customer_id, *click_keys)
    )
    if affiliate_id is not None:
        clicks = clicks.where(ReferralCode.customer_id == affiliate_id)
    for affiliate, *extra, count in (await session.execute(clicks)).all():
        row_for(affiliate, tuple(extra)).clicks += count

    sale_keys = key_columns(PartnerSale.code_id, PartnerSale.sub_id)
    in_period = (
        PartnerSale.merchant_id == merchant_id,
        PartnerSale.program_id == program_id,
        PartnerSale.occurred_at >= start,
        PartnerSale.occurred_at < end,
    )
    mine = (PartnerSale.affiliate_id == affiliate_id,) if affiliate_id is not None else ()
    sales = (
        select(
            PartnerSale.affiliate_id,
            *sale_keys,
            PartnerSale.currency,
            func.count(PartnerSale.id),
            money.total(PartnerSale.amount - PartnerSale.refunded_amount),
        )
        .where(*in_period, *mine)
        .group_by(PartnerSale.affiliate_id, *sale_keys, PartnerSale.currency)
    )
    for affiliate, *extra, currency, count, revenue in (await session.execute(sales)).all():
        row = row_for(affiliate, tuple(extra))
        row.conversions += count
        if currency is not None:
            row.revenue[currency] = row.revenue.get(currency, 0) + revenue

    # The affiliate's own shares, as the rewards that pay them say: earned net of refunds and
    # fraud decisions, still held, and paid out (payout items of PAID payouts).
    own_shares = (
        *in_period,
        *mine,
        PartnerSale.status == SaleStatus.EARNED,
        PartnerSaleShare.customer_id == PartnerSale.affiliate_id,
    )
    net = Reward.amount - Reward.reversed_amount
    commission = (
        select(
            PartnerSale.affiliate_id,
            *sale_keys,
            PartnerSaleShare.unit,
            money.total(net),
            money.total(case((Reward.status == RewardStatus.HELD, net), else_=0)),
        )
        .join(PartnerSaleShare, PartnerSaleShare.sale_id == PartnerSale.id)
        .outerjoin(Reward, Reward.id == PartnerSaleShare.reward_id)
        .where(*own_shares)
        .group_by(PartnerSale.affiliate_id, *sale_keys, PartnerSaleShare.unit)
    )
    for affiliate, *extra, unit, earned, held in (await session.execute(commission)).all():
        row = row_for(affiliate, tuple(extra))
        row.commission_earned[unit] = row.commission_earned.get(unit, 0) + earned
        row.commission_held[unit] = row.commission_held.get(unit, 0) + held
        row.commission_paid.setdefault(unit, 0)
    paid = (
        select(PartnerSale.affiliate_id, *sale_keys, PartnerSaleShare.unit, money.total(PayoutItem.amount))
        .join(PartnerSaleShare, PartnerSaleShare.sale_id == PartnerSale.id)
        .join(PayoutItem, PayoutItem.reward_id == PartnerSaleShare.reward_id)
        .join(Payout, Payout.id == PayoutItem.payout_id)
        .where(
            *own_shares,
            PayoutItem.merchant_id == merchant_id,
            Payout.status == PayoutStatus.PAID,
        )
        .group_by(PartnerSale.affiliate_id, *sale_keys, PartnerSaleShare.unit)
    )
    for affiliate, *extra, unit, amount in (await session.execute(paid)).all():
        row = row_for(affiliate, tuple(extra))
        row.commission_paid[unit] = row.commission_paid.get(unit, 0) + amount
    return sorted(rows.values(), key=lambda r: (str(r.affiliate_id), str(r.code_id or ""), r.sub_id or ""))[:MAX_ROWS]


@dataclass(frozen=True)
class StatementLine:
    sale: PartnerSale
    share: PartnerSaleShare


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    totals: dict[str, int]  # unit -> net of reversals


async def statement(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    program_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
) -> Statement:
    """One party's own shares (as affiliate or co-producer) of the program's sales in the period."""
    start, end = _period(start, end)
    found = (
        await session.execute(
            select(PartnerSale, PartnerSaleShare)
            .join(PartnerSaleShare, PartnerSaleShare.sale_id == PartnerSale.id)
            .where(
                PartnerSale.merchant_id == merchant_id,
                PartnerSale.program_id == program_id,
                PartnerSaleShare.customer_id == customer_id,
                PartnerSale.occurred_at >= start,
                PartnerSale.occurred_at < end,
            )
            .order_by(PartnerSale.occurred_at, PartnerSale.id)
            .limit(MAX_ROWS)
        )
    ).all()
    totals: dict[str, int] = defaultdict(int)
    for _sale, share in found:
        totals[share.unit] += share.amount - share.reversed_amount
    return Statement(lines=[StatementLine(sale, share) for sale, share in found], totals=dict(totals))


async def sales(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    order_id: str | None = None,
) -> list[tuple[PartnerSale, list[PartnerSaleShare]]]:
    """The merchant's view: each sale with every party's share (two statements)."""
    start, end = _period(start, end)
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = select(PartnerSale).where(
        PartnerSale.merchant_id == merchant_id,
        PartnerSale.program_id == program_id,
        PartnerSale.occurred_at >= start,
        PartnerSale.occurred_at < end,
    )
    if order_id is not None:
        query = query.where(PartnerSale.order_id == validation.text(order_id, "orderId", 255))
    found = list((await session.scalars(query.order_by(PartnerSale.occurred_at, PartnerSale.id).limit(MAX_ROWS))).all())
    shares: dict[uuid.UUID, list[PartnerSaleShare]] = defaultdict(list)
    if found:
        for share in (
            await session.scalars(
                select(PartnerSaleShare)
                .where(PartnerSaleShare.merchant_id == merchant_id, PartnerSaleShare.sale_id.in_([s.id for s in found]))
                .order_by(PartnerSaleShare.position)
            )
        ).all():
            shares[share.sale_id].append(share)
    return [(sale, shares[sale.id]) for sale in found]
