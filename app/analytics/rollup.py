"""Daily rollups: each (program, local day) recounted whole from the raw rows.

A day's facts are a pure function of the rows that happened on it, so keeping them right is a
matter of recounting the right days, never of adding deltas that a retry could add twice:

- `count_days` recounts a range of days from clicks, referrals, actions, rewards, coupons, the
  ledger and fraud decisions (the recount the tests compare the rollups with);
- `roll_up` (the `analytics.rollup` job, every few minutes) recounts the days since its last
  run, plus the past days that rows written since then belong to: an action reported late
  (its `occurred_at`), the referral it qualified, a fraud decision about an old referral;
- `rebuild` (`referral analytics backfill`, and on a change of the merchant's time zone)
  recounts everything.

Both then re-rank the stored leaderboards whose periods hold a recounted day (app.analytics.leaderboards).

Every measure is dated by an event that does not move: a click's time, a referral's arrival
and qualification, an action's occurrence, a ledger entry's booking, a coupon's redemption. A
refund is its own action on its own day (revenue net of refunds over a period subtracts the
refunds booked in it); a reversal is a ledger entry on the day it happened. The one measure
that follows a state is the fraud outcome of the referrals that arrived on a day (their
strictest decision so far): a later decision marks that day for a recount.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, delete, exists, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app import calendars, money
from app.analytics import leaderboards
from app.analytics.models import DailyFact, ReferrerDay, RollupState
from app.db import utcnow
from app.fraud.models import FraudDecision
from app.merchants import locale as locale_settings
from app.merchants.models import Merchant
from app.referrals.models import QUALIFYING_TYPES, REVERSING_TYPES, Action, Click, Program, Referral, ReferralCode
from app.rewards.models import AccountType, Coupon, LedgerAccount, LedgerEntry, Reward

# Measures. Funnel steps are split by the share channel of the click behind them ('' = none).
CLICKS = "clicks"
CODES_ISSUED = "codes_issued"  # customers given a code: who could refer
SIGNUPS = "signups"  # SIGNUP actions of referred customers
REFERRED = "referred"  # referrals created (customers acquired by referral)
QUALIFIED = "qualified"  # referrals whose referee made a first purchase
REWARDED = "rewarded"  # referrals that earned their first reward
FUNNEL = (CLICKS, SIGNUPS, REFERRED, QUALIFIED, REWARDED)
# Money, per unit (ISO 4217 currency, POINTS, PERCENT); reward measures per kind as dimension.
REVENUE = "revenue"  # referred purchases and subscriptions: count, amount
REFUNDS = "refunds"  # refunds and cancellations of referred orders: count, amount (at most the order)
REWARD_GRANTED = "reward_granted"  # ledger: booked to customers
REWARD_TAKEN_BACK = "reward_taken_back"  # ledger: voided while held or clawed back after a refund or a fraud decision
COMMISSION_PAID = "commission_paid"  # ledger: paid out (net of payments returned)
COUPONS_REDEEMED = "coupons_redeemed"  # DISCOUNT rewards used at checkout: count, amount taken off
FRAUD = "fraud"  # referrals by their strictest decision so far (dimension ALLOW, REVIEW, BLOCK)
ALL_MEASURES = (
    *FUNNEL,
    CODES_ISSUED,
    REVENUE,
    REFUNDS,
    REWARD_GRANTED,
    REWARD_TAKEN_BACK,
    COMMISSION_PAID,
    COUPONS_REDEEMED,
    FRAUD,
)

CHUNK_DAYS = 31  # days recounted by one set of statements (a CASE over the day boundaries)
LATE_MARGIN = timedelta(minutes=15)  # transactions still committing when the last run read
F = TypeVar("F")  # a kind of fact


@dataclass(frozen=True)
class Fact:
    program_id: uuid.UUID
    day: date
    measure: str
    dimension: str
    unit: str
    count: int
    amount: int


@dataclass(frozen=True)
class Day:
    day: date
    start: datetime  # UTC, inclusive: local midnight
    end: datetime  # UTC, exclusive


def local_days(first: date, last: date, zone: ZoneInfo) -> list[Day]:
    """The local days first..last (inclusive) as intervals of instants."""
    days = []
    current = first
    while current <= last:
        following = current + timedelta(days=1)
        days.append(Day(current, _midnight(current, zone), _midnight(following, zone)))
        current = following
    return days


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _bucket(column: SQLColumnExpression[datetime | None], days: list[Day]) -> ColumnElement[int | None]:
    """SQL: the index in `days` of the day `column` falls in (NULL outside)."""
    return case(*(((column >= d.start) & (column < d.end), index) for index, d in enumerate(days)), else_=None)


def _channel(click_channel: SQLColumnExpression[str | None]) -> ColumnElement[str]:
    return func.coalesce(click_channel, literal(""))


async def _facts_of_chunk(
    session: AsyncSession, merchant_id: uuid.UUID, program_ids: list[uuid.UUID], days: list[Day]
) -> list[Fact]:
    start, end = days[0].start, days[-1].end
    # Grouped expressions are labelled: PostgreSQL then groups by the output column, not by a
    # second copy of the expression with its own bound parameters (which it would not match).
    ch = _channel(Click.channel).label("channel")
    rows: list[
        tuple[uuid.UUID, int | None, str, str, str, int, int]
    ] = []  # (program_id, bucket, measure, dimension, unit, count, amount)

    def add(measure: str, result: Iterable[Sequence[Any]]) -> None:
        rows.extend((r[0], r[1], measure, r[2] or "", r[3] or "", r[4] or 0, r[5] or 0) for r in result)

    # Clicks, by the channel the widget reported.
    b = _bucket(Click.created_at, days).label("bucket")
    add(
        CLICKS,
        (
            await session.execute(
                select(Click.program_id, b, ch, literal(""), func.count(), literal(0))
                .where(Click.program_id.in_(program_ids), Click.created_at >= start, Click.created_at < end)
                .group_by(Click.program_id, b, ch)
            )
        ).all(),
    )
    # Codes issued: the customers who could refer.
    b = _bucket(ReferralCode.created_at, days).label("bucket")
    add(
        CODES_ISSUED,
        (
            await session.execute(
                select(ReferralCode.program_id, b, literal(""), literal(""), func.count(), literal(0))
                .where(
                    ReferralCode.merchant_id == merchant_id,
                    ReferralCode.program_id.in_(program_ids),
                    ReferralCode.created_at >= start,
                    ReferralCode.created_at < end,
                )
                .group_by(ReferralCode.program_id, b)
            )
        ).all(),
    )
    # Referrals created and qualified, by the channel of the click that brought the referee.
    for measure, column in ((REFERRED, Referral.referred_at), (QUALIFIED, Referral.qualified_at)):
        b = _bucket(column, days).label("bucket")
        add(
            measure,
            (
                await session.execute(
                    select(Referral.program_id, b, ch, literal(""), func.count(), literal(0))
                    .outerjoin(Click, Click.id == Referral.click_id)
                    .where(Referral.program_id.in_(program_ids), column >= start, column < end)
                    .group_by(Referral.program_id, b, ch)
                )
            ).all(),
        )
    # Signups of referred customers.
    b = _bucket(Action.occurred_at, days).label("bucket")
    add(
        SIGNUPS,
        (
            await session.execute(
                select(Referral.program_id, b, ch, literal(""), func.count(), literal(0))
                .join(Referral, Referral.id == Action.referral_id)
                .outerjoin(Click, Click.id == Referral.click_id)
                .where(
                    Action.merchant_id == merchant_id,
                    Action.occurred_at >= start,
                    Action.occurred_at < end,
                    Action.type == "SIGNUP",
                    Referral.program_id.in_(program_ids),
                )
                .group_by(Referral.program_id, b, ch)
            )
        ).all(),
    )
    # Referrals rewarded: the day of their first reward.
    earlier = aliased(Reward)
    b = _bucket(Reward.created_at, days).label("bucket")
    add(
        REWARDED,
        (
            await session.execute(
                select(Reward.program_id, b, ch, literal(""), func.count(func.distinct(Reward.referral_id)), literal(0))
                .join(Referral, Referral.id == Reward.referral_id)
                .outerjoin(Click, Click.id == Referral.click_id)
                .where(
                    Reward.program_id.in_(program_ids),
                    Reward.created_at >= start,
                    Reward.created_at < end,
                    ~exists().where(earlier.referral_id == Reward.referral_id, earlier.created_at < Reward.created_at),
                )
                .group_by(Reward.program_id, b, ch)
            )
        ).all(),
    )
    # Revenue: purchases and subscriptions of referred customers.
    b = _bucket(Action.occurred_at, days).label("bucket")
    add(
        REVENUE,
        (
            await session.execute(
                select(Action.program_id, b, literal(""), Action.currency, func.count(), money.total(Action.amount))
                .where(
                    Action.merchant_id == merchant_id,
                    Action.occurred_at >= start,
                    Action.occurred_at < end,
                    Action.type.in_(QUALIFYING_TYPES),
                    Action.referral_id.is_not(None),
                    Action.program_id.in_(program_ids),
                    Action.amount.is_not(None),
                    Action.currency.is_not(None),
                )
                .group_by(Action.program_id, b, Action.currency)
            )
        ).all(),
    )
    # Refunds of referred orders, on the refund's day, in the order's currency, at most the order.
    order = aliased(Action)
    b = _bucket(Action.occurred_at, days).label("bucket")
    refunded = case(
        (or_(Action.type == "CANCELLATION", Action.amount.is_(None), Action.amount > order.amount), order.amount),
        else_=Action.amount,
    )
    add(
        REFUNDS,
        (
            await session.execute(
                select(order.program_id, b, literal(""), order.currency, func.count(), money.total(refunded))
                .join(order, and_(order.merchant_id == Action.merchant_id, order.order_id == Action.order_id))
                .where(
                    Action.merchant_id == merchant_id,
                    Action.occurred_at >= start,
                    Action.occurred_at < end,
                    Action.type.in_(REVERSING_TYPES),
                    Action.order_id.is_not(None),
                    order.type.in_(QUALIFYING_TYPES),
                    order.referral_id.is_not(None),
                    order.program_id.in_(program_ids),
                    order.amount.is_not(None),
                    order.currency.is_not(None),
                )
                .group_by(order.program_id, b, order.currency)
            )
        ).all(),
    )
    # Reward cost from the program's ledger accounts: grants out, voids and clawbacks back in;
    # payouts paid (returned payments back out).
    b = _bucket(LedgerEntry.created_at, days).label("bucket")
    ledger_rows = (
        await session.execute(
            select(
                LedgerAccount.owner_id,
                b,
                LedgerAccount.account_type,
                LedgerAccount.kind,
                LedgerAccount.unit,
                money.total(case((LedgerEntry.amount < 0, -LedgerEntry.amount), else_=0)),
                money.total(case((LedgerEntry.amount > 0, LedgerEntry.amount), else_=0)),
                func.sum(case((LedgerEntry.amount < 0, 1), else_=0)),
                func.sum(case((LedgerEntry.amount > 0, 1), else_=0)),
            )
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerAccount.merchant_id == merchant_id,
                LedgerAccount.owner_id.in_(program_ids),
                LedgerAccount.account_type.in_([AccountType.PROGRAM_REWARDS, AccountType.PROGRAM_PAID_OUT]),
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
            )
            .group_by(LedgerAccount.owner_id, b, LedgerAccount.account_type, LedgerAccount.kind, LedgerAccount.unit)
        )
    ).all()
    for program_id, bucket, account_type, kind, unit, out, back, outs, backs in ledger_rows:
        if account_type == AccountType.PROGRAM_REWARDS:
            if out:
                rows.append((program_id, bucket, REWARD_GRANTED, kind.value, unit, outs, out))
            if back:
                rows.append((program_id, bucket, REWARD_TAKEN_BACK, kind.value, unit, backs, back))
        elif back - out:
            rows.append((program_id, bucket, COMMISSION_PAID, "", unit, backs - outs, back - out))
    # Coupons redeemed, at what they took off the order when its amount was reported at
    # redemption; else a fixed amount at its face value, a percentage counted (unit PERCENT, 0).
    b = _bucket(Coupon.redeemed_at, days).label("bucket")
    coupon_unit = func.coalesce(Coupon.redeemed_currency, Coupon.currency, literal("PERCENT")).label("unit")
    add(
        COUPONS_REDEEMED,
        (
            await session.execute(
                select(
                    Reward.program_id,
                    b,
                    literal(""),
                    coupon_unit,
                    func.count(),
                    money.total(func.coalesce(Coupon.redeemed_discount, Coupon.amount_off, 0)),
                )
                .join(Reward, Reward.id == Coupon.reward_id)
                .where(
                    Coupon.merchant_id == merchant_id,
                    Coupon.redeemed_at >= start,
                    Coupon.redeemed_at < end,
                    Reward.program_id.in_(program_ids),
                )
                .group_by(Reward.program_id, b, coupon_unit)
            )
        ).all(),
    )
    # Fraud: the referrals that arrived each day, by their strictest decision so far.
    severity = (
        select(func.max(case((FraudDecision.outcome == "BLOCK", 2), (FraudDecision.outcome == "REVIEW", 1), else_=0)))
        .where(FraudDecision.referral_id == Referral.id)
        .correlate(Referral)
        .scalar_subquery()
    )
    outcome = case((severity == 2, "BLOCK"), (severity == 1, "REVIEW"), else_="ALLOW").label("outcome")
    b = _bucket(Referral.referred_at, days).label("bucket")
    add(
        FRAUD,
        (
            await session.execute(
                select(Referral.program_id, b, outcome, literal(""), func.count(), literal(0))
                .where(Referral.program_id.in_(program_ids), Referral.referred_at >= start, Referral.referred_at < end)
                .group_by(Referral.program_id, b, outcome)
            )
        ).all(),
    )

    totals: dict[tuple[uuid.UUID, date, str, str, str], list[int]] = {}
    for program_id, bucket, measure, dimension, unit, count, amount in rows:
        if bucket is None:
            continue
        key = (program_id, days[bucket].day, measure, dimension, unit)
        found = totals.setdefault(key, [0, 0])
        found[0] += int(count)
        found[1] += int(amount)
    return [Fact(*key, count, amount) for key, (count, amount) in sorted(totals.items(), key=lambda kv: repr(kv[0]))]


@dataclass(frozen=True)
class ReferrerFact:
    program_id: uuid.UUID
    day: date
    referrer_id: uuid.UUID
    referred: int
    qualified: int


async def _referrer_facts_of_chunk(session: AsyncSession, program_ids: list[uuid.UUID], days: list[Day]) -> list[ReferrerFact]:
    """Referrals made and qualified per referrer and day (the leaderboard's rollup)."""
    start, end = days[0].start, days[-1].end
    counts: dict[tuple[uuid.UUID, date, uuid.UUID], list[int]] = {}
    for index, column in enumerate((Referral.referred_at, Referral.qualified_at)):
        b = _bucket(column, days).label("bucket")
        for program_id, bucket, referrer_id, count in (
            await session.execute(
                select(Referral.program_id, b, Referral.referrer_id, func.count())
                .where(Referral.program_id.in_(program_ids), column >= start, column < end)
                .group_by(Referral.program_id, b, Referral.referrer_id)
            )
        ).all():
            if bucket is not None:
                counts.setdefault((program_id, days[bucket].day, referrer_id), [0, 0])[index] += count
    return [
        ReferrerFact(*key, referred, qualified)
        for key, (referred, qualified) in sorted(counts.items(), key=lambda kv: repr(kv[0]))
    ]


def _chunks(days: list[Day]) -> Iterable[list[Day]]:
    """Runs of consecutive days, at most CHUNK_DAYS long."""
    run: list[Day] = []
    for day in days:
        if run and (day.day != run[-1].day + timedelta(days=1) or len(run) == CHUNK_DAYS):
            yield run
            run = []
        run.append(day)
    if run:
        yield run


async def program_ids_of(session: AsyncSession, merchant_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await session.scalars(select(Program.id).where(Program.merchant_id == merchant_id).order_by(Program.id))).all())


async def _per_chunk(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    zone: ZoneInfo,
    days: list[date],
    program_ids: list[uuid.UUID] | None,
    count: Callable[[list[Day], list[uuid.UUID]], Awaitable[list[F]]],
) -> list[F]:
    program_ids = program_ids if program_ids is not None else await program_ids_of(session, merchant_id)
    if not program_ids or not days:
        return []
    found: list[F] = []
    for chunk in _chunks([local_days(d, d, zone)[0] for d in sorted(set(days))]):
        found.extend(await count(chunk, program_ids))
    return found


async def count_days(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    zone: ZoneInfo,
    days: list[date],
    program_ids: list[uuid.UUID] | None = None,
) -> list[Fact]:
    """Recount the given local days from the raw rows (nothing is written)."""
    return await _per_chunk(
        session, merchant_id, zone, days, program_ids, lambda chunk, ids: _facts_of_chunk(session, merchant_id, ids, chunk)
    )


async def count_referrer_days(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    zone: ZoneInfo,
    days: list[date],
    program_ids: list[uuid.UUID] | None = None,
) -> list[ReferrerFact]:
    """Recount the per-referrer rollup of the given local days (nothing is written)."""
    return await _per_chunk(
        session, merchant_id, zone, days, program_ids, lambda chunk, ids: _referrer_facts_of_chunk(session, ids, chunk)
    )


async def _store(
    session: AsyncSession, merchant_id: uuid.UUID, days: list[date], facts: list[Fact], referrer_facts: list[ReferrerFact]
) -> None:
    for chunk in _chunks([Day(d, datetime.min, datetime.min) for d in sorted(set(days))]):
        for model in (DailyFact, ReferrerDay):
            await session.execute(
                delete(model).where(
                    model.merchant_id == merchant_id,
                    model.day >= chunk[0].day,
                    model.day <= chunk[-1].day,
                )
            )
    for start in range(0, len(facts), 1000):
        await session.execute(
            insert(DailyFact),
            [
                {
                    "merchant_id": merchant_id,
                    "program_id": f.program_id,
                    "day": f.day,
                    "measure": f.measure,
                    "dimension": f.dimension,
                    "unit": f.unit,
                    "count": f.count,
                    "amount": f.amount,
                }
                for f in facts[start : start + 1000]
            ],
        )
    for start in range(0, len(referrer_facts), 1000):
        await session.execute(
            insert(ReferrerDay),
            [
                {
                    "merchant_id": merchant_id,
                    "program_id": f.program_id,
                    "day": f.day,
                    "referrer_id": f.referrer_id,
                    "referred": f.referred,
                    "qualified": f.qualified,
                }
                for f in referrer_facts[start : start + 1000]
            ],
        )


async def recount(session: AsyncSession, *, merchant_id: uuid.UUID, zone: ZoneInfo, days: list[date]) -> int:
    """Replace the rollups of these days with a fresh count; returns the facts written."""
    facts = await count_days(session, merchant_id=merchant_id, zone=zone, days=days)
    referrer_facts = await count_referrer_days(session, merchant_id=merchant_id, zone=zone, days=days)
    await _store(session, merchant_id, days, facts, referrer_facts)
    return len(facts) + len(referrer_facts)


async def first_day(session: AsyncSession, *, merchant_id: uuid.UUID, zone: ZoneInfo) -> date | None:
    """The earliest local day anything of the merchant's programs happened on."""
    earliest = [
        await session.scalar(select(func.min(Program.created_at)).where(Program.merchant_id == merchant_id)),
        await session.scalar(select(func.min(Action.occurred_at)).where(Action.merchant_id == merchant_id)),
    ]
    found = [as_utc(e) for e in earliest if e is not None]
    return local_day(min(found), zone) if found else None


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite's min() returns a naive value


async def _zone_of(session: AsyncSession, merchant_id: uuid.UUID) -> ZoneInfo:
    settings = await locale_settings.get_settings(session, merchant_id=merchant_id)
    return calendars.time_zone(settings.time_zone)


async def _save_state(session: AsyncSession, merchant_id: uuid.UUID, zone: ZoneInfo, at: datetime) -> None:
    state = await session.get(RollupState, merchant_id)
    if state is None:
        session.add(RollupState(merchant_id=merchant_id, time_zone=zone.key, rolled_up_at=at))
    else:
        state.time_zone, state.rolled_up_at = zone.key, at
    await session.flush()


async def rebuild(session: AsyncSession, *, merchant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Recount every day of the merchant from its first to today; returns the days recounted."""
    now = now or utcnow()
    zone = await _zone_of(session, merchant_id)
    for model in (DailyFact, ReferrerDay):
        await session.execute(delete(model).where(model.merchant_id == merchant_id))
    first = await first_day(session, merchant_id=merchant_id, zone=zone)
    days = [d.day for d in local_days(first, local_day(now, zone), zone)] if first else []
    for chunk in _chunks([Day(d, datetime.min, datetime.min) for d in days]):
        chunk_days = [d.day for d in chunk]
        facts = await count_days(session, merchant_id=merchant_id, zone=zone, days=chunk_days)
        referrer_facts = await count_referrer_days(session, merchant_id=merchant_id, zone=zone, days=chunk_days)
        await _store(session, merchant_id, [], facts, referrer_facts)
    await _refresh_leaderboards(session, merchant_id, zone, now, first, touched=None)
    await _save_state(session, merchant_id, zone, now)
    return len(days)


async def _refresh_leaderboards(
    session: AsyncSession, merchant_id: uuid.UUID, zone: ZoneInfo, now: datetime, first: date | None, touched: set[date] | None
) -> None:
    await leaderboards.refresh(
        session,
        merchant_id=merchant_id,
        program_ids=await program_ids_of(session, merchant_id),
        first_day=first,
        today=local_day(now, zone),
        touched=touched,
    )


def _uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at `moment`: ids are creation-ordered (app.db.new_id), so rows
    written since then are an index range of the primary key."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | 0x7 << 76)


async def touched_days(
    session: AsyncSession, *, merchant_id: uuid.UUID, zone: ZoneInfo, since: datetime, now: datetime
) -> set[date]:
    """The local days whose facts rows written since `since` may have changed: every day from
    then to now, and the past days late actions and new fraud decisions belong to."""
    days = {d.day for d in local_days(local_day(since, zone), local_day(now, zone), zone)}
    floor = _uuid7_floor(since)
    late = (
        await session.execute(
            select(Action.occurred_at, Referral.referred_at, Referral.qualified_at)
            .outerjoin(Referral, Referral.id == Action.referral_id)
            .where(Action.merchant_id == merchant_id, Action.id >= floor)
        )
    ).all()
    decided = (
        await session.scalars(
            select(Referral.referred_at)
            .join(FraudDecision, FraudDecision.referral_id == Referral.id)
            .where(FraudDecision.merchant_id == merchant_id, FraudDecision.id >= floor)
        )
    ).all()
    for moment in [m for row in late for m in row] + list(decided):
        if moment is not None:
            days.add(local_day(as_utc(moment), zone))
    return days


async def roll_up(session: AsyncSession, *, merchant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Bring one merchant's rollups up to date; returns the days recounted."""
    now = now or utcnow()
    zone = await _zone_of(session, merchant_id)
    state = await session.get(RollupState, merchant_id, with_for_update=True)
    if state is None or state.time_zone != zone.key:
        return await rebuild(session, merchant_id=merchant_id, now=now)
    days = await touched_days(session, merchant_id=merchant_id, zone=zone, since=state.rolled_up_at - LATE_MARGIN, now=now)
    await recount(session, merchant_id=merchant_id, zone=zone, days=sorted(days))
    first = await first_day(session, merchant_id=merchant_id, zone=zone)
    await _refresh_leaderboards(session, merchant_id, zone, now, first, touched=days)
    await _save_state(session, merchant_id, zone, now)
    return len(days)


async def merchant_ids(session: AsyncSession) -> list[uuid.UUID]:
    return list((await session.scalars(select(Merchant.id).order_by(Merchant.id))).all())
