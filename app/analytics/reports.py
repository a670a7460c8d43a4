"""A program's reports for a period of local days (the merchant's time zone): funnel, money,
referrers, cohorts and fraud. Totals and time series come from the daily rollups (a period's
overview sums a few thousand small rows, whatever the raw tables hold), the leaderboard, its
rank changes and the active referrers from the stored leaderboards (app.analytics.leaderboards); cohorts, the viral
cycle time and the review queue are indexed queries on the raw rows.

Money stays an integer per currency (or POINTS): nothing here adds two units together.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app import calendars, money
from app.analytics import leaderboards, rollup
from app.analytics.models import DailyFact, RollupState
from app.errors import DomainError, ErrorCode
from app.fraud.models import FraudReview, ReviewStatus
from app.merchants import locale as locale_settings
from app.referrals import programs
from app.referrals.models import QUALIFYING_TYPES, Action, Customer, Referral
from app.rewards.models import AccountType, LedgerAccount, Reward, RewardKind, RewardStatus

MAX_DAYS = 366
LEADERBOARD_MAX = leaderboards.LEADERBOARD_MAX
COHORT_WEEKS = (4, 8, 12)


@dataclass(frozen=True)
class Period:
    program_id: uuid.UUID
    first: date  # local days, inclusive
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return rollup.local_days(self.first, self.first, self.zone)[0].start

    @property
    def end(self) -> datetime:
        return rollup.local_days(self.last, self.last, self.zone)[0].end

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same length just before (for rank changes)."""
        return Period(self.program_id, self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.zone)


async def period_of(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, first: date, last: date) -> Period:
    for name, day in (("from", first), ("to", last)):
        if not calendars.FIRST_YEAR <= day.year <= calendars.LAST_YEAR:
            raise DomainError(name, ErrorCode.INVALID_INPUT, f"reports cover {calendars.FIRST_YEAR} to {calendars.LAST_YEAR}")
    if last < first:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to must not be before from")
    if (last - first).days + 1 > MAX_DAYS:
        raise DomainError("to", ErrorCode.INVALID_INPUT, f"a report covers at most {MAX_DAYS} days")
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    settings = await locale_settings.get_settings(session, merchant_id=merchant_id)
    return Period(program_id, first, last, calendars.time_zone(settings.time_zone))


async def rolled_up_at(session: AsyncSession, *, merchant_id: uuid.UUID) -> datetime | None:
    state = await session.get(RollupState, merchant_id)
    return state.rolled_up_at if state is not None else None


# --- totals and series from the rollups ------------------------------------------------------------


@dataclass
class Totals:
    """The period's sums per (measure, dimension, unit): [count, amount]; and, for balances that
    build up over the program's life (commission owed), the sums up to the period's end."""

    within: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    to_end: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def count(self, measure: str, dimension: str | None = None) -> int:
        return sum(v[0] for (m, d, _u), v in self.within.items() if m == measure and (dimension is None or d == dimension))

    def by(self, measure: str) -> dict[tuple[str, str], list[int]]:
        """(dimension, unit) -> [count, amount] of one measure."""
        return {(d, u): v for (m, d, u), v in self.within.items() if m == measure}


async def totals(session: AsyncSession, *, merchant_id: uuid.UUID, period: Period) -> Totals:
    inside = DailyFact.day >= period.first
    rows = (
        await session.execute(
            select(
                DailyFact.measure,
                DailyFact.dimension,
                DailyFact.unit,
                func.sum(case((inside, DailyFact.count), else_=0)),
                money.total(case((inside, DailyFact.amount), else_=0)),
                func.sum(DailyFact.count),
                money.total(DailyFact.amount),
            )
            .where(DailyFact.merchant_id == merchant_id, DailyFact.program_id == period.program_id, DailyFact.day <= period.last)
            .group_by(DailyFact.measure, DailyFact.dimension, DailyFact.unit)
        )
    ).all()
    found = Totals()
    for measure, dimension, unit, count, amount, count_to_end, amount_to_end in rows:
        if count or amount:
            found.within[(measure, dimension, unit)] = [int(count or 0), int(amount or 0)]
        found.to_end[(measure, dimension, unit)] = [int(count_to_end or 0), int(amount_to_end or 0)]
    return found


@dataclass(frozen=True)
class SeriesPoint:
    start: date  # the day, or the Monday the week starts on
    measure: str
    dimension: str
    unit: str
    count: int
    amount: int


async def series(
    session: AsyncSession, *, merchant_id: uuid.UUID, period: Period, weekly: bool, measures: list[str] | None = None
) -> list[SeriesPoint]:
    """Each measure by day (or by week starting Monday), every bucket of the period present
    for the measures that occur in it (zeros where nothing happened)."""
    query = select(
        DailyFact.day, DailyFact.measure, DailyFact.dimension, DailyFact.unit, DailyFact.count, DailyFact.amount
    ).where(
        DailyFact.merchant_id == merchant_id,
        DailyFact.program_id == period.program_id,
        DailyFact.day >= period.first,
        DailyFact.day <= period.last,
    )
    if measures:
        query = query.where(DailyFact.measure.in_(measures))
    buckets = _buckets(period, weekly)
    sums: dict[tuple[str, str, str], dict[date, list[int]]] = defaultdict(lambda: {b: [0, 0] for b in buckets})
    for day, measure, dimension, unit, count, amount in (await session.execute(query)).all():
        bucket = day - timedelta(days=day.weekday()) if weekly else day
        point = sums[(measure, dimension, unit)][bucket]
        point[0] += count
        point[1] += amount
    return [
        SeriesPoint(bucket, measure, dimension, unit, count, amount)
        for (measure, dimension, unit), points in sorted(sums.items())
        for bucket, (count, amount) in points.items()
    ]


def measures_of(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    unknown = sorted(set(names) - set(rollup.ALL_MEASURES))
    if unknown:
        raise DomainError("measures", ErrorCode.INVALID_INPUT, f"unknown measures: {', '.join(unknown[:5])}")
    return names


def _buckets(period: Period, weekly: bool) -> list[date]:
    if not weekly:
        return [period.first + timedelta(days=i) for i in range(period.days)]
    monday = period.first - timedelta(days=period.first.weekday())
    return [monday + timedelta(weeks=i) for i in range((period.last - monday).days // 7 + 1)]


# --- funnel ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelSteps:
    channel: str | None  # None: every channel together; '' is "no channel reported"
    clicks: int
    signups: int
    referred: int
    qualified: int
    rewarded: int


def funnel(t: Totals) -> tuple[FunnelSteps, list[FunnelSteps]]:
    """The whole funnel and the same per share channel."""
    steps = lambda channel: FunnelSteps(channel, *(t.count(m, channel) for m in rollup.FUNNEL))  # noqa: E731
    channels = sorted({d for (m, d, _u) in t.within if m in rollup.FUNNEL})
    return steps(None), [steps(c) for c in channels]


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- money ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revenue:
    currency: str
    purchases: int
    gross: int
    refunds: int
    refunded: int
    net: int


@dataclass(frozen=True)
class RewardCost:
    kind: str
    unit: str
    granted: int
    taken_back: int  # voided and clawed back
    net: int


@dataclass(frozen=True)
class CouponsRedeemed:
    unit: str  # the order's currency; PERCENT for percentage coupons redeemed without the order's amount (amount 0)
    count: int
    amount: int


@dataclass(frozen=True)
class Commission:
    currency: str
    earned: int  # in the period, net of what was taken back
    paid: int  # in the period
    owed: int  # at the period's end: earned and not yet paid, over the program's life


@dataclass(frozen=True)
class Return:
    """What the program cost and brought in one currency."""

    currency: str
    net_revenue: int
    cost: int  # credit and commission (net) and coupons redeemed, in this currency; never points
    acquired: int  # referrals qualified in the period
    cost_per_acquired_customer: int | None  # minor units, rounded down
    roi: float | None  # (net revenue - cost) / cost


@dataclass(frozen=True)
class Money:
    revenue: list[Revenue]
    reward_cost: list[RewardCost]
    coupons: list[CouponsRedeemed]
    commission: list[Commission]
    returns: list[Return]


def money_of(t: Totals) -> Money:
    revenue_by = t.by(rollup.REVENUE)
    refunds_by = t.by(rollup.REFUNDS)
    currencies = sorted({u for (_d, u) in revenue_by} | {u for (_d, u) in refunds_by})
    revenue = []
    for currency in currencies:
        purchases, gross = revenue_by.get(("", currency), [0, 0])
        refunds, refunded = refunds_by.get(("", currency), [0, 0])
        revenue.append(Revenue(currency, purchases, gross, refunds, refunded, gross - refunded))
    granted, taken = t.by(rollup.REWARD_GRANTED), t.by(rollup.REWARD_TAKEN_BACK)
    cost = [
        RewardCost(
            kind,
            unit,
            granted.get((kind, unit), [0, 0])[1],
            taken.get((kind, unit), [0, 0])[1],
            granted.get((kind, unit), [0, 0])[1] - taken.get((kind, unit), [0, 0])[1],
        )
        for kind, unit in sorted(set(granted) | set(taken))
    ]
    coupons = [CouponsRedeemed(unit, c, a) for (_d, unit), (c, a) in sorted(t.by(rollup.COUPONS_REDEEMED).items())]
    commission = []
    commission_units = {u for (m, d, u) in t.to_end if d == RewardKind.COMMISSION.value or m == rollup.COMMISSION_PAID}
    for unit in sorted(commission_units):
        key = (RewardKind.COMMISSION.value, unit)
        earned = granted.get(key, [0, 0])[1] - taken.get(key, [0, 0])[1]
        paid = t.within.get((rollup.COMMISSION_PAID, "", unit), [0, 0])[1]
        earned_to_end = (
            t.to_end.get((rollup.REWARD_GRANTED, *key), [0, 0])[1] - t.to_end.get((rollup.REWARD_TAKEN_BACK, *key), [0, 0])[1]
        )
        owed = earned_to_end - t.to_end.get((rollup.COMMISSION_PAID, "", unit), [0, 0])[1]
        if earned or paid or owed:
            commission.append(Commission(unit, earned, paid, owed))
    acquired = t.count(rollup.QUALIFIED)
    returns = []
    money_units = sorted(
        ({r.currency for r in revenue} | {c.unit for c in cost} | {c.unit for c in coupons}) - {"POINTS", "PERCENT"}
    )
    for currency in money_units:
        spent = sum(c.net for c in cost if c.unit == currency) + sum(c.amount for c in coupons if c.unit == currency)
        net_revenue = next((r.net for r in revenue if r.currency == currency), 0)
        returns.append(
            Return(
                currency,
                net_revenue,
                spent,
                acquired,
                spent // acquired if acquired else None,
                round((net_revenue - spent) / spent, 4) if spent > 0 else None,
            )
        )
    return Money(revenue, cost, coupons, commission, returns)


# --- referrers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leader:
    rank: int
    previous_rank: int | None  # None: no qualified referral in the previous period
    customer_id: uuid.UUID
    external_id: str
    qualified: int
    referred: int
    revenue: dict[str, int]  # per currency, of the referees' purchases in the period


async def leaderboard(session: AsyncSession, *, merchant_id: uuid.UUID, period: Period, first: int) -> tuple[list[Leader], int]:
    """Top referrers by referrals qualified in the period (then by referrals made), with their
    rank in the period before and their referees' revenue per currency; and the number of
    customers who referred someone in the period. From the stored board when the period is one
    the rollup job keeps (app.analytics.leaderboards), else ranked from the per-referrer rollups."""
    first = max(1, min(first, LEADERBOARD_MAX))
    board = await leaderboards.board_of(
        session, merchant_id=merchant_id, program_id=period.program_id, first=period.first, last=period.last, limit=first
    )
    if not board.entries:
        return [], board.active_referrers
    ids = [e.referrer_id for e in board.entries]
    names = dict(
        (
            await session.execute(
                select(Customer.id, Customer.external_id).where(Customer.merchant_id == merchant_id, Customer.id.in_(ids))
            )
        ).all()
    )
    revenue: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for referrer_id, currency, amount in (
        await session.execute(
            select(Referral.referrer_id, Action.currency, money.total(Action.amount))
            .join(Action, Action.referral_id == Referral.id)
            .where(
                Referral.merchant_id == merchant_id,
                Referral.program_id == period.program_id,
                Referral.referrer_id.in_(ids),
                Action.type.in_(QUALIFYING_TYPES),
                Action.occurred_at >= period.start,
                Action.occurred_at < period.end,
                Action.currency.is_not(None),
            )
            .group_by(Referral.referrer_id, Action.currency)
        )
    ).all():
        assert currency is not None  # is_not(None) above
        revenue[referrer_id][currency] = int(amount)
    leaders = [
        Leader(
            e.rank,
            e.previous_rank,
            e.referrer_id,
            names.get(e.referrer_id, ""),
            e.qualified,
            e.referred,
            dict(sorted(revenue[e.referrer_id].items())),
        )
        for e in board.entries
    ]
    return leaders, board.active_referrers


@dataclass(frozen=True)
class Virality:
    code_holders: int  # customers given a code in the program by the period's end
    active_referrers: int  # customers who referred someone in the period
    share_referring: float | None
    invites: int  # link visits (clicks) in the period
    invites_per_customer: float | None
    invite_conversion: float | None  # referred customers per click
    k_factor: float | None  # invites per customer x conversion of invites


def virality(t: Totals, active: int) -> Virality:
    """`active`: the customers who referred someone in the period (from the leaderboard)."""
    holders = sum(v[0] for (m, _d, _u), v in t.to_end.items() if m == rollup.CODES_ISSUED)
    clicks, referred = t.count(rollup.CLICKS), t.count(rollup.REFERRED)
    # invites per customer x referred per invite, computed unrounded: referred per customer
    k = rate(referred, holders) if clicks else None
    return Virality(holders, active, rate(active, holders), clicks, rate(clicks, holders), rate(referred, clicks), k)


async def viral_cycle_days(session: AsyncSession, *, merchant_id: uuid.UUID, period: Period) -> float | None:
    """Median days from a customer's arrival by referral to their own first referral, over the
    customers whose first referral fell in the period."""
    own = aliased(Referral)
    rows = (
        await session.execute(
            select(own.referred_at, func.min(Referral.referred_at))
            .join(own, and_(own.referee_id == Referral.referrer_id, own.program_id == Referral.program_id))
            .where(
                Referral.merchant_id == merchant_id, Referral.program_id == period.program_id, Referral.referred_at < period.end
            )
            .group_by(Referral.referrer_id, own.referred_at)
        )
    ).all()
    gaps = [
        (rollup.as_utc(made) - rollup.as_utc(arrived)).total_seconds() / 86400
        for arrived, made in rows
        if made is not None and rollup.as_utc(made) >= period.start
    ]
    return round(median(gaps), 2) if gaps else None


# --- cohorts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    week: date  # the Monday (local) the customers arrived in the week of
    customers: int
    referring: dict[int, int]  # weeks -> customers who referred someone within that many weeks of arriving


async def cohorts(session: AsyncSession, *, merchant_id: uuid.UUID, period: Period) -> list[Cohort]:
    """Of the customers acquired by referral in each week of the period, how many referred
    someone themselves within 4, 8 and 12 weeks."""
    made = aliased(Referral)
    rows = (
        await session.execute(
            select(Referral.referee_id, Referral.referred_at, func.min(made.referred_at))
            .outerjoin(made, and_(made.referrer_id == Referral.referee_id, made.program_id == Referral.program_id))
            .where(
                Referral.merchant_id == merchant_id,
                Referral.program_id == period.program_id,
                Referral.referred_at >= period.start,
                Referral.referred_at < period.end,
            )
            .group_by(Referral.referee_id, Referral.referred_at)
        )
    ).all()
    weeks: dict[date, list[int]] = {}
    for _customer, arrived, first_made in rows:
        arrived = rollup.as_utc(arrived)
        day = rollup.local_day(arrived, period.zone)
        counts = weeks.setdefault(day - timedelta(days=day.weekday()), [0] * (1 + len(COHORT_WEEKS)))
        counts[0] += 1
        if first_made is not None:
            gap = rollup.as_utc(first_made) - arrived
            for index, w in enumerate(COHORT_WEEKS):
                if gap <= timedelta(weeks=w):
                    counts[index + 1] += 1
    return [Cohort(week, c[0], dict(zip(COHORT_WEEKS, c[1:], strict=True))) for week, c in sorted(weeks.items())]


# --- fraud ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitAmount:
    kind: str
    unit: str
    amount: int


@dataclass(frozen=True)
class ReviewQueue:
    open: int
    oldest_opened_at: datetime | None
    oldest_age_hours: float | None
    median_age_hours: float | None


@dataclass(frozen=True)
class Fraud:
    allowed: int
    reviewed: int
    blocked: int
    held: list[UnitAmount]  # now: rewards held by an open review
    clawed_back: list[UnitAmount]  # in the period: taken back after they were granted
    leaked: list[UnitAmount]  # now: clawbacks the program's customers have not earned back (negative balances)
    queue: ReviewQueue


async def fraud(session: AsyncSession, *, merchant_id: uuid.UUID, period: Period, t: Totals, now: datetime) -> Fraud:
    outcomes = {d: v[0] for (d, _u), v in t.by(rollup.FRAUD).items()}
    held = (
        await session.execute(
            select(Reward.kind, Reward.unit, money.total(Reward.amount - Reward.reversed_amount))
            .where(
                Reward.merchant_id == merchant_id,
                Reward.program_id == period.program_id,
                Reward.status == RewardStatus.HELD,
                Reward.review_hold.is_(True),
            )
            .group_by(Reward.kind, Reward.unit)
            .order_by(Reward.kind, Reward.unit)
        )
    ).all()
    debtors = (
        select(Referral.referrer_id)
        .where(Referral.program_id == period.program_id)
        .union(select(Referral.referee_id).where(Referral.program_id == period.program_id))
    )
    leaked = (
        await session.execute(
            select(LedgerAccount.kind, LedgerAccount.unit, money.total(-LedgerAccount.balance))
            .where(
                LedgerAccount.merchant_id == merchant_id,
                LedgerAccount.account_type == AccountType.AVAILABLE,
                LedgerAccount.balance < 0,
                LedgerAccount.owner_id.in_(debtors),
            )
            .group_by(LedgerAccount.kind, LedgerAccount.unit)
            .order_by(LedgerAccount.kind, LedgerAccount.unit)
        )
    ).all()
    opened = [
        rollup.as_utc(o)
        for o in (
            await session.scalars(
                select(FraudReview.opened_at).where(
                    FraudReview.merchant_id == merchant_id,
                    FraudReview.program_id == period.program_id,
                    FraudReview.status == ReviewStatus.OPEN,
                )
            )
        ).all()
    ]
    ages = [(now - o).total_seconds() / 3600 for o in opened]
    return Fraud(
        allowed=outcomes.get("ALLOW", 0),
        reviewed=outcomes.get("REVIEW", 0),
        blocked=outcomes.get("BLOCK", 0),
        held=[UnitAmount(k.value, u, int(a)) for k, u, a in held if a],
        clawed_back=[UnitAmount(kind, unit, v[1]) for (kind, unit), v in sorted(t.by(rollup.REWARD_TAKEN_BACK).items())],
        leaked=[UnitAmount(k.value, u, int(a)) for k, u, a in leaked if a],
        queue=ReviewQueue(
            len(opened),
            min(opened) if opened else None,
            round(max(ages), 2) if ages else None,
            round(median(ages), 2) if ages else None,
        ),
    )
