"""GraphQL types of the rewards domain: rules, rewards, coupons, balances, ledger entries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.rewards import kinds, models
from app.rewards import queries as reward_queries
from app.rewards import rules as rule_service
from app.schema.common import gid
from app.schema.referral_types import Customer, Referral
from app.schema.scalars import BigInt
from app.schema.transactions import query

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
RewardKind: TypeAlias = models.RewardKind
strawberry.enum(RewardKind, name="RewardKind", description=kinds.GRAPHQL_DESCRIPTION)
Recipient: TypeAlias = models.Recipient
strawberry.enum(Recipient, name="RewardRecipient")
RewardStatus: TypeAlias = models.RewardStatus
strawberry.enum(RewardStatus, name="RewardStatus")
CouponStatus: TypeAlias = models.CouponStatus
strawberry.enum(CouponStatus, name="CouponStatus")


@strawberry.type
class MetadataFilter:
    key: str
    op: str = strawberry.field(description="IN or NOT_IN")
    values: list[str]


@strawberry.type(description="When a rule pays. Unset conditions do not apply.")
class RewardConditions:
    min_action_amount: BigInt | None
    min_action_currency: str | None
    first_action_only: bool
    within_days_of_referral: int | None
    metadata_filters: list[MetadataFilter]
    milestone: int | None = strawberry.field(description="The referrer's Nth qualified referral.")
    cap_per_referrer_monthly: int | None
    cap_per_referrer_lifetime: int | None
    program_monthly_budget: BigInt | None
    hold_days: int
    expires_in_days: int | None


@strawberry.type(description="A COMMISSION rate for a date range (both days included) in `timeZone`.")
class CommissionSeason:
    starts_on: date
    ends_on: date
    percent_bps: int
    time_zone: str


@strawberry.type(description="One version of a reward rule.")
class RewardRule:
    id: strawberry.ID = strawberry.field(description="This version's id (rewards point at it).")
    rule_id: strawberry.ID = strawberry.field(description="The rule's id across versions.")
    version: int
    name: str
    enabled: bool
    trigger: str
    recipient: Recipient
    kind: RewardKind
    amount: BigInt | None
    currency: str | None
    percent_bps: int | None
    coupon_pool_id: strawberry.ID | None
    coupon_min_order_amount: BigInt | None
    recurring_months: int | None
    conditions: RewardConditions
    seasons: list[CommissionSeason]
    created_at: datetime
    superseded_at: datetime | None

    @classmethod
    def from_model(cls, m: models.RewardRule) -> RewardRule:
        spec = rule_service.spec_of(m)
        return cls(
            id=gid(m.id),
            rule_id=gid(m.rule_id),
            version=m.version,
            name=m.name,
            enabled=m.enabled,
            trigger=m.trigger,
            recipient=models.Recipient(m.recipient),
            kind=models.RewardKind(m.kind),
            amount=spec.amount,
            currency=spec.currency,
            percent_bps=spec.percent_bps,
            coupon_pool_id=strawberry.ID(spec.coupon_pool_id) if spec.coupon_pool_id else None,
            coupon_min_order_amount=spec.coupon_min_order_amount,
            recurring_months=spec.recurring_months,
            conditions=RewardConditions(
                min_action_amount=spec.min_action_amount,
                min_action_currency=spec.min_action_currency,
                first_action_only=spec.first_action_only,
                within_days_of_referral=spec.within_days_of_referral,
                metadata_filters=[MetadataFilter(key=f.key, op=f.op, values=list(f.values)) for f in spec.metadata_filters],
                milestone=spec.milestone,
                cap_per_referrer_monthly=spec.cap_per_referrer_monthly,
                cap_per_referrer_lifetime=spec.cap_per_referrer_lifetime,
                program_monthly_budget=spec.program_monthly_budget,
                hold_days=spec.hold_days,
                expires_in_days=spec.expires_in_days,
            ),
            seasons=[
                CommissionSeason(
                    starts_on=x.starts_on, ends_on=x.ends_on, percent_bps=x.percent_bps, time_zone=spec.season_time_zone or "UTC"
                )
                for x in spec.seasons
            ],
            created_at=m.created_at,
            superseded_at=m.superseded_at,
        )

    @strawberry.field(description="Every version of this rule, oldest first.")
    async def history(self, info: Info) -> list[RewardRule]:
        async def work(session: AsyncSession) -> list[RewardRule]:
            rows = await rule_service.rule_history(session, merchant_id=info.context.merchant_id, rule_id=uuid.UUID(self.rule_id))
            return [RewardRule.from_model(r) for r in rows]

        return await query(info, work)


@strawberry.type
class Coupon:
    code: str
    status: CouponStatus
    percent_off_bps: int | None
    amount_off: BigInt | None
    currency: str | None
    min_order_amount: BigInt | None
    expires_at: datetime | None
    redeemed_order_id: str | None
    redeemed_at: datetime | None

    @classmethod
    def from_model(cls, m: models.Coupon) -> Coupon:
        return cls(
            code=m.code,
            status=models.CouponStatus(m.status),
            percent_off_bps=m.percent_off_bps,
            amount_off=m.amount_off,
            currency=m.currency,
            min_order_amount=m.min_order_amount,
            expires_at=m.expires_at,
            redeemed_order_id=m.redeemed_order_id,
            redeemed_at=m.redeemed_at,
        )


@strawberry.type
class Reward:
    id: strawberry.ID
    kind: RewardKind
    recipient: Recipient
    status: RewardStatus
    amount: BigInt = strawberry.field(description="Minor units, points, or basis points for a percent-off coupon.")
    unit: str = strawberry.field(description="ISO 4217 currency, POINTS, or PERCENT.")
    remaining: BigInt = strawberry.field(description="Credit or points not yet spent, expired or reversed.")
    reversed_amount: BigInt
    milestone: int | None
    hold_until: datetime | None
    under_review: bool = strawberry.field(description="Held by an open fraud review.")
    awaiting_clearance: bool = strawberry.field(
        description="Held until its referral is cleared (screened ALLOW after the evidence the program requires)."
    )
    leaked_amount: BigInt = strawberry.field(
        description="Spent or paid before a fraud flag took the reward back, and not recovered."
    )
    awaiting_coupon: bool = strawberry.field(description="The coupon pool was empty; a code follows when codes are added.")
    expires_at: datetime | None
    available_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    created_at: datetime
    source: str = strawberry.field(
        description="RULE, CAMPAIGN (a campaign or contest bonus), LEAD (a business referral's fee) or PARTNER_SALE (a share of an affiliate sale's commission)."
    )
    customer_id: strawberry.Private[uuid.UUID]
    referral_id: strawberry.Private[uuid.UUID | None]
    rule_version_id: strawberry.Private[uuid.UUID | None]
    trigger_action_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: models.Reward) -> Reward:
        return cls(
            id=gid(m.id),
            kind=models.RewardKind(m.kind),
            recipient=models.Recipient(m.recipient),
            status=models.RewardStatus(m.status),
            amount=m.amount,
            unit=m.unit,
            remaining=m.remaining,
            reversed_amount=m.reversed_amount,
            milestone=m.milestone,
            hold_until=m.hold_until,
            under_review=m.review_hold,
            awaiting_clearance=m.clearance_hold,
            leaked_amount=m.leaked_amount,
            awaiting_coupon=m.awaiting_coupon,
            expires_at=m.expires_at,
            available_at=m.available_at,
            ended_at=m.ended_at,
            end_reason=m.end_reason,
            created_at=m.created_at,
            source=m.source,
            customer_id=m.customer_id,
            referral_id=m.referral_id,
            rule_version_id=m.rule_version_id,
            trigger_action_id=m.trigger_action_id,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.get_loaders().customer.load(self.customer_id))

    @strawberry.field
    async def referral(self, info: Info) -> Referral | None:
        if self.referral_id is None:  # a lead fee or a campaign bonus
            return None
        return Referral.from_model(await info.context.get_loaders().referral.load(self.referral_id))

    @strawberry.field(description="The rule version the reward was granted under (none for campaigns and leads).")
    async def rule(self, info: Info) -> RewardRule | None:
        if self.rule_version_id is None:
            return None
        return RewardRule.from_model(await info.context.get_loaders().rule_version.load(self.rule_version_id))

    @strawberry.field
    async def coupon(self, info: Info) -> Coupon | None:
        rows = await info.context.get_loaders().coupons_by_reward.load(uuid.UUID(self.id))
        return Coupon.from_model(rows[0]) if rows else None


@strawberry.type
class Balance:
    kind: RewardKind
    unit: str
    available: BigInt = strawberry.field(description="Spendable; negative after a clawback, netted against future earnings.")
    held: BigInt = strawberry.field(description="Granted, waiting for the hold to pass.")

    @classmethod
    def from_domain(cls, b: reward_queries.Balance) -> Balance:
        return cls(kind=b.kind, unit=b.unit, available=b.available, held=b.held)


@strawberry.type
class LedgerEntry:
    id: strawberry.ID
    amount: BigInt = strawberry.field(description="Signed: positive adds to the account.")
    unit: str
    account_type: str
    transaction_id: strawberry.ID
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.LedgerEntry, account_type: str) -> LedgerEntry:
        return cls(
            id=gid(m.id),
            amount=m.amount,
            unit=m.unit,
            account_type=account_type,
            transaction_id=gid(m.transaction_id),
            created_at=m.created_at,
        )
