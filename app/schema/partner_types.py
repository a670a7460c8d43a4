"""GraphQL types of affiliate programs: partners, groups, splits, sales, reports, statements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import strawberry

from app.partners import models, reports
from app.partners import service as partner_service
from app.schema.common import Money, gid
from app.schema.errors import UserError
from app.schema.scalars import BigInt

PartnerStatus: TypeAlias = models.PartnerStatus
strawberry.enum(PartnerStatus, name="PartnerStatus")
PartnerDecision: TypeAlias = partner_service.Decision
strawberry.enum(PartnerDecision, name="PartnerDecision")
SaleStatus: TypeAlias = models.SaleStatus
strawberry.enum(SaleStatus, name="PartnerSaleStatus")
NotEarnedReason: TypeAlias = models.NotEarnedReason
strawberry.enum(NotEarnedReason, name="PartnerSaleNotEarnedReason")
ShareRole: TypeAlias = models.ShareRole
strawberry.enum(ShareRole, name="PartnerShareRole")
ReportGroupBy: TypeAlias = reports.GroupBy
strawberry.enum(ReportGroupBy, name="PartnerReportGroupBy")

ExternalIds = dict[uuid.UUID, str]  # customer id -> the merchant's external id


def money_list(amounts: dict[str, int]) -> list[Money]:
    return [Money(amount=amount, currency=currency) for currency, amount in sorted(amounts.items())]


@strawberry.type(description="A status change of a partner: who, when, why.")
class PartnerStatusChange:
    from_status: PartnerStatus | None
    to_status: PartnerStatus
    actor: str = strawberry.field(description='"key:<id>", "admin:<id>", or "partner" (their signed session).')
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, m: models.PartnerStatusChange) -> PartnerStatusChange:
        return cls(
            from_status=models.PartnerStatus(m.from_status) if m.from_status else None,
            to_status=models.PartnerStatus(m.to_status),
            actor=m.actor,
            reason=m.reason,
            at=m.created_at,
        )


@strawberry.type(description="A partner group (tier); its rate overrides the program's default commission for its members.")
class PartnerGroup:
    id: strawberry.ID
    program_id: strawberry.ID
    name: str
    commission_bps: int | None

    @classmethod
    def of(cls, m: models.PartnerGroup) -> PartnerGroup:
        return cls(id=gid(m.id), program_id=gid(m.program_id), name=m.name, commission_bps=m.commission_bps)


@strawberry.type(description="A customer enrolled in an affiliate program. Only an ACTIVE partner's sales earn commission.")
class Partner:
    id: strawberry.ID
    program_id: strawberry.ID
    customer_external_id: str
    status: PartnerStatus
    group_id: strawberry.ID | None
    invited: bool
    application_note: str | None
    applied_at: datetime
    decided_at: datetime | None
    history: list[PartnerStatusChange]

    @classmethod
    def of(cls, m: models.Partner, external_ids: ExternalIds, history: list[models.PartnerStatusChange]) -> Partner:
        return cls(
            id=gid(m.id),
            program_id=gid(m.program_id),
            customer_external_id=external_ids.get(m.customer_id, ""),
            status=models.PartnerStatus(m.status),
            group_id=gid(m.group_id) if m.group_id else None,
            invited=m.invited,
            application_note=m.application_note,
            applied_at=m.applied_at,
            decided_at=m.decided_at,
            history=[PartnerStatusChange.of(h) for h in history if h.partner_id == m.id],
        )


@strawberry.type
class SplitParty:
    customer_external_id: str
    share_bps: int


@strawberry.type(description="One version of a commission split, in basis points of the order amount.")
class CommissionSplit:
    id: strawberry.ID = strawberry.field(description="This version's id (sales record it).")
    program_id: strawberry.ID
    sku: str | None
    version: int
    affiliate_bps: int | None = strawberry.field(description="null: the partner's group rate or the program's commission rule.")
    parties: list[SplitParty]
    created_at: datetime
    superseded_at: datetime | None

    @classmethod
    def of(cls, m: models.CommissionSplit, external_ids: ExternalIds) -> CommissionSplit:
        return cls(
            id=gid(m.id),
            program_id=gid(m.program_id),
            sku=m.sku_key or None,
            version=m.version,
            affiliate_bps=m.affiliate_bps,
            created_at=m.created_at,
            superseded_at=m.superseded_at,
            parties=[
                SplitParty(customer_external_id=external_ids.get(uuid.UUID(p["customer_id"]), ""), share_bps=p["share_bps"])
                for p in m.parties
            ],
        )


@strawberry.type(description="One party's part of a sale's commission.")
class PartnerSaleShare:
    customer_external_id: str
    role: ShareRole
    share_bps: int
    amount: BigInt = strawberry.field(description="Granted, minor units of `unit`.")
    reversed_amount: BigInt = strawberry.field(description="Taken back by refunds so far.")
    net_amount: BigInt
    unit: str

    @classmethod
    def of(cls, m: models.PartnerSaleShare, external_ids: ExternalIds) -> PartnerSaleShare:
        return cls(
            customer_external_id=external_ids.get(m.customer_id, ""),
            role=models.ShareRole(m.role),
            share_bps=m.share_bps,
            amount=m.amount,
            reversed_amount=m.reversed_amount,
            net_amount=m.amount - m.reversed_amount,
            unit=m.unit,
        )


@strawberry.type(description="A purchase in an affiliate program and what it paid each party.")
class PartnerSale:
    id: strawberry.ID
    action_id: strawberry.ID
    order_id: str | None
    affiliate_external_id: str
    sub_id: str | None
    amount: Money | None
    refunded_amount: BigInt
    status: SaleStatus
    not_earned_reason: NotEarnedReason | None = strawberry.field(description="Why a NOT_EARNED sale paid nothing.")
    split_version_id: strawberry.ID | None
    affiliate_bps: int
    commission: BigInt = strawberry.field(description="All parties together, as granted (before refunds).")
    occurred_at: datetime
    shares: list[PartnerSaleShare]

    @classmethod
    def of(cls, m: models.PartnerSale, shares: list[models.PartnerSaleShare], external_ids: ExternalIds) -> PartnerSale:
        return cls(
            id=gid(m.id),
            action_id=gid(m.action_id),
            order_id=m.order_id,
            affiliate_external_id=external_ids.get(m.affiliate_id, ""),
            sub_id=m.sub_id,
            amount=Money(amount=m.amount, currency=m.currency) if m.currency else None,
            refunded_amount=m.refunded_amount,
            status=models.SaleStatus(m.status),
            not_earned_reason=models.NotEarnedReason(m.reason) if m.reason else None,
            split_version_id=gid(m.split_version_id) if m.split_version_id else None,
            affiliate_bps=m.affiliate_bps,
            commission=m.commission,
            occurred_at=m.occurred_at,
            shares=[PartnerSaleShare.of(s, external_ids) for s in shares],
        )


@strawberry.type(description="Clicks, conversions and money of one partner (or one of their links or sub-ids) in the period.")
class PartnerReportRow:
    partner_external_id: str
    link_code: str | None = strawberry.field(description="LINK rows: the partner's code.")
    sub_id: str | None = strawberry.field(description="SUB_ID rows: the tag (null: clicks and sales without one).")
    clicks: int
    conversions: int
    conversion_rate: float | None = strawberry.field(description="conversions / clicks; null without clicks.")
    revenue: list[Money] = strawberry.field(description="Order amounts net of refunds.")
    commission_earned: list[Money] = strawberry.field(description="The partner's own share, net of reversals.")
    commission_held: list[Money]
    commission_paid: list[Money]

    @classmethod
    def of(cls, row: reports.ReportRow, external_ids: ExternalIds, codes: dict[uuid.UUID, str]) -> PartnerReportRow:
        return cls(
            partner_external_id=external_ids.get(row.affiliate_id, ""),
            link_code=codes.get(row.code_id) if row.code_id else None,
            sub_id=row.sub_id,
            clicks=row.clicks,
            conversions=row.conversions,
            conversion_rate=row.conversion_rate,
            revenue=money_list(row.revenue),
            commission_earned=money_list(row.commission_earned),
            commission_held=money_list(row.commission_held),
            commission_paid=money_list(row.commission_paid),
        )


@strawberry.type(description="A party's own earnings from the program's sales: as affiliate or co-producer.")
class PartnerStatement:
    customer_external_id: str
    lines: list[PartnerSale] = strawberry.field(description="Each sale with this party's share only.")
    totals: list[Money] = strawberry.field(description="Net of reversals.")


@strawberry.type
class PartnerPayload:
    partner: Partner | None = None
    link_code: str | None = strawberry.field(default=None, description="The partner's tracking code (applyAsPartner).")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PartnerGroupPayload:
    group: PartnerGroup | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CommissionSplitPayload:
    split: CommissionSplit | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
