"""GraphQL for a program's analytics (app.analytics): one `programAnalytics` object per program
and period, whose parts are computed only when asked for."""

from __future__ import annotations

import asyncio
import enum
import uuid
from datetime import date, datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.analytics import reports, rollup
from app.db import utcnow
from app.schema.permissions import SecretKeyOrAdmin
from app.schema.scalars import BigInt
from app.schema.transactions import query


@strawberry.enum(description="How a time series is bucketed.")
class Granularity(enum.Enum):
    DAY = "DAY"
    WEEK = "WEEK"  # weeks start on Monday


@strawberry.type(description="Funnel steps; rates are the share of the step before (null when it is zero).")
class FunnelSteps:
    channel: str | None = strawberry.field(
        description='The share channel ("whatsapp"); "" when none was reported; null for all channels together.'
    )
    clicks: int
    signups: int
    referred: int = strawberry.field(description="Customers acquired by referral (referrals created).")
    qualified: int = strawberry.field(description="Referrals whose referee made a first purchase.")
    rewarded: int = strawberry.field(description="Referrals that earned a first reward.")
    signup_rate: float | None
    referral_rate: float | None = strawberry.field(description="Referred customers per click.")
    qualification_rate: float | None = strawberry.field(description="Qualified per referred.")
    reward_rate: float | None = strawberry.field(description="Rewarded per qualified.")

    @classmethod
    def of(cls, s: reports.FunnelSteps) -> FunnelSteps:
        return cls(
            channel=s.channel,
            clicks=s.clicks,
            signups=s.signups,
            referred=s.referred,
            qualified=s.qualified,
            rewarded=s.rewarded,
            signup_rate=reports.rate(s.signups, s.clicks),
            referral_rate=reports.rate(s.referred, s.clicks),
            qualification_rate=reports.rate(s.qualified, s.referred),
            reward_rate=reports.rate(s.rewarded, s.qualified),
        )


@strawberry.type
class Funnel:
    total: FunnelSteps
    by_channel: list[FunnelSteps]


@strawberry.type(description="Referred purchases in one currency, net of the refunds booked in the period.")
class RevenueLine:
    currency: str
    purchases: int
    gross: BigInt
    refunds: int
    refunded: BigInt
    net: BigInt


@strawberry.type(description="Rewards of one kind and unit: booked, taken back (voided or clawed back) and the net cost.")
class RewardCostLine:
    kind: str
    unit: str
    granted: BigInt
    taken_back: BigInt
    net: BigInt


@strawberry.type
class CouponsLine:
    unit: str = strawberry.field(
        description="The currency of what was taken off (the order's, reported at redemption, or a "
        "fixed coupon's); PERCENT for percentage coupons redeemed without the order's amount."
    )
    count: int
    amount: BigInt


@strawberry.type
class CommissionLine:
    currency: str
    earned: BigInt = strawberry.field(description="In the period, net of what was taken back.")
    paid: BigInt = strawberry.field(description="Paid out in the period.")
    owed: BigInt = strawberry.field(description="At the period's end: earned over the program's life and not yet paid.")


@strawberry.type(description="Cost and return in one currency; never summed across currencies.")
class ReturnLine:
    currency: str
    net_revenue: BigInt
    cost: BigInt = strawberry.field(description="Credit and commission (net) and fixed-amount coupons redeemed.")
    acquired_customers: int
    cost_per_acquired_customer: BigInt | None
    roi: float | None = strawberry.field(description="(net revenue - cost) / cost.")


@strawberry.type
class MoneyReport:
    revenue: list[RevenueLine]
    reward_cost: list[RewardCostLine]
    coupons_redeemed: list[CouponsLine]
    commission: list[CommissionLine]
    returns: list[ReturnLine]


@strawberry.type
class AmountInCurrency:
    currency: str
    amount: BigInt


@strawberry.type
class Leader:
    rank: int
    previous_rank: int | None = strawberry.field(description="Rank in the period just before; null when unranked then.")
    rank_change: int | None = strawberry.field(description="Places gained (positive) or lost.")
    customer_external_id: str
    qualified: int
    referred: int
    revenue: list[AmountInCurrency]


@strawberry.type
class Referrers:
    leaderboard: list[Leader]
    code_holders: int = strawberry.field(description="Customers with a code by the period's end.")
    active_referrers: int = strawberry.field(description="Customers who referred someone in the period.")
    share_referring: float | None
    invites: int = strawberry.field(description="Link visits in the period.")
    invites_per_customer: float | None
    invite_conversion: float | None = strawberry.field(description="Referred customers per visit.")
    k_factor: float | None = strawberry.field(description="Invites per customer x conversion of invites.")


@strawberry.type
class Cohort:
    week: date = strawberry.field(description="The Monday of the week the customers arrived by referral.")
    customers: int
    referring_within_4_weeks: int
    referring_within_8_weeks: int
    referring_within_12_weeks: int


@strawberry.type
class KindAmount:
    kind: str
    unit: str
    amount: BigInt


@strawberry.type
class ReviewQueue:
    open: int
    oldest_opened_at: datetime | None
    oldest_age_hours: float | None
    median_age_hours: float | None


@strawberry.type
class FraudReport:
    allowed: int = strawberry.field(description="Referrals of the period no check held.")
    reviewed: int
    blocked: int
    allowed_share: float | None
    reviewed_share: float | None
    blocked_share: float | None
    held: list[KindAmount] = strawberry.field(description="Now: rewards held by an open review.")
    clawed_back: list[KindAmount] = strawberry.field(description="In the period: voided or reversed.")
    leaked: list[KindAmount] = strawberry.field(description="Now: clawbacks not yet earned back (negative balances).")
    review_queue: ReviewQueue


@strawberry.type
class SeriesPoint:
    start: date
    measure: str
    dimension: str = strawberry.field(description="Channel (funnel), reward kind (cost), outcome (fraud), or empty.")
    unit: str = strawberry.field(description="Currency, POINTS or PERCENT for amounts; empty for counts.")
    count: int
    amount: BigInt


@strawberry.type(description="A program's numbers for a period of days in the merchant's time zone (both days included).")
class ProgramAnalytics:
    program_id: strawberry.ID
    from_: date = strawberry.field(name="from")
    to: date
    time_zone: str
    rolled_up_at: datetime | None = strawberry.field(description="Rollups include what was recorded before this.")
    _period: strawberry.Private[reports.Period]
    _merchant_id: strawberry.Private[uuid.UUID]
    _totals: strawberry.Private[dict]

    async def _sums(self, info: Info) -> reports.Totals:
        """The rollups' totals, read once however many fields need them."""
        if "task" not in self._totals:
            self._totals["task"] = asyncio.ensure_future(
                info.context.run(lambda s: reports.totals(s, merchant_id=self._merchant_id, period=self._period))
            )
        return await self._totals["task"]

    @strawberry.field
    async def funnel(self, info: Info) -> Funnel:
        total, channels = reports.funnel(await self._sums(info))
        return Funnel(total=FunnelSteps.of(total), by_channel=[FunnelSteps.of(c) for c in channels])

    @strawberry.field
    async def money(self, info: Info) -> MoneyReport:
        m = reports.money_of(await self._sums(info))
        return MoneyReport(
            revenue=[RevenueLine(**vars(r)) for r in m.revenue],
            reward_cost=[RewardCostLine(**vars(c)) for c in m.reward_cost],
            coupons_redeemed=[CouponsLine(**vars(c)) for c in m.coupons],
            commission=[CommissionLine(**vars(c)) for c in m.commission],
            returns=[
                ReturnLine(
                    currency=r.currency,
                    net_revenue=r.net_revenue,
                    cost=r.cost,
                    acquired_customers=r.acquired,
                    cost_per_acquired_customer=r.cost_per_acquired_customer,
                    roi=r.roi,
                )
                for r in m.returns
            ],
        )

    @strawberry.field
    async def referrers(self, info: Info, first: int = 10) -> Referrers:
        t = await self._sums(info)

        leaders, active = await query(
            info, lambda s: reports.leaderboard(s, merchant_id=self._merchant_id, period=self._period, first=first)
        )
        v = reports.virality(t, active)
        return Referrers(
            leaderboard=[
                Leader(
                    rank=x.rank,
                    previous_rank=x.previous_rank,
                    rank_change=x.previous_rank - x.rank if x.previous_rank is not None else None,
                    customer_external_id=x.external_id,
                    qualified=x.qualified,
                    referred=x.referred,
                    revenue=[AmountInCurrency(currency=c, amount=a) for c, a in x.revenue.items()],
                )
                for x in leaders
            ],
            code_holders=v.code_holders,
            active_referrers=v.active_referrers,
            share_referring=v.share_referring,
            invites=v.invites,
            invites_per_customer=v.invites_per_customer,
            invite_conversion=v.invite_conversion,
            k_factor=v.k_factor,
        )

    @strawberry.field(
        description="Median days from a customer's arrival by referral to their own first referral "
        "(customers whose first referral fell in the period)."
    )
    async def viral_cycle_time_days(self, info: Info) -> float | None:
        return await query(info, lambda s: reports.viral_cycle_days(s, merchant_id=self._merchant_id, period=self._period))

    @strawberry.field(description="Customers acquired by referral per week, and how many referred someone within 4/8/12 weeks.")
    async def cohorts(self, info: Info) -> list[Cohort]:
        found = await query(info, lambda s: reports.cohorts(s, merchant_id=self._merchant_id, period=self._period))
        return [
            Cohort(
                week=c.week,
                customers=c.customers,
                referring_within_4_weeks=c.referring[4],
                referring_within_8_weeks=c.referring[8],
                referring_within_12_weeks=c.referring[12],
            )
            for c in found
        ]

    @strawberry.field
    async def fraud(self, info: Info) -> FraudReport:
        t = await self._sums(info)
        f = await query(info, lambda s: reports.fraud(s, merchant_id=self._merchant_id, period=self._period, t=t, now=utcnow()))
        judged = f.allowed + f.reviewed + f.blocked
        amounts = lambda items: [KindAmount(kind=i.kind, unit=i.unit, amount=i.amount) for i in items]  # noqa: E731
        return FraudReport(
            allowed=f.allowed,
            reviewed=f.reviewed,
            blocked=f.blocked,
            allowed_share=reports.rate(f.allowed, judged),
            reviewed_share=reports.rate(f.reviewed, judged),
            blocked_share=reports.rate(f.blocked, judged),
            held=amounts(f.held),
            clawed_back=amounts(f.clawed_back),
            leaked=amounts(f.leaked),
            review_queue=ReviewQueue(
                open=f.queue.open,
                oldest_opened_at=f.queue.oldest_opened_at,
                oldest_age_hours=f.queue.oldest_age_hours,
                median_age_hours=f.queue.median_age_hours,
            ),
        )

    @strawberry.field(
        description="Each measure by day or week (every bucket present, zeros included). Measures: "
        + ", ".join(rollup.ALL_MEASURES)
        + "."
    )
    async def series(
        self, info: Info, granularity: Granularity = Granularity.DAY, measures: list[str] | None = None
    ) -> list[SeriesPoint]:
        points = await query(
            info,
            lambda s: reports.series(
                s,
                merchant_id=self._merchant_id,
                period=self._period,
                weekly=granularity is Granularity.WEEK,
                measures=reports.measures_of(measures),
            ),
        )
        return [SeriesPoint(**vars(p)) for p in points]


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        permission_classes=[SecretKeyOrAdmin],
        description="A program's funnel, money, referrers, cohorts and fraud for the days from..to (inclusive) in the "
        "merchant's time zone, at most 366 days.",
    )
    async def program_analytics(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> ProgramAnalytics:
        merchant_id = info.context.merchant_id

        async def work(session: AsyncSession) -> tuple[reports.Period, datetime | None]:
            period = await reports.period_of(
                session,
                merchant_id=merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                first=from_,
                last=to,
            )
            return period, await reports.rolled_up_at(session, merchant_id=merchant_id)

        period, at = await query(info, work)
        return ProgramAnalytics(
            program_id=program_id,
            from_=period.first,
            to=period.last,
            time_zone=period.zone.key,
            rolled_up_at=at,
            _period=period,
            _merchant_id=merchant_id,
            _totals={},
        )
