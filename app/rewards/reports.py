"""Reports by month, in the merchant's calendar and time zone: a customer's statement (their
balances month by month, from the ledger) and a program's rewards per month. Each is a couple of
set-based queries grouping by `calendars.month_bucket`; amounts stay integers here, and are
formatted for people (`money.formatted`) only at the edge, never in CSV.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import calendars, money, validation
from app.calendars import Calendar, Month
from app.errors import DomainError, ErrorCode
from app.merchants import locale as locale_settings
from app.rewards.models import AccountType, LedgerAccount, LedgerEntry, Reward


@dataclass(frozen=True)
class View:
    """How a report is grouped and shown: the merchant's settings unless the caller says otherwise."""

    calendar: Calendar
    zone: ZoneInfo
    locale: str


async def view_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, calendar: Calendar | None, time_zone: str | None, locale: str | None
) -> View:
    settings = await locale_settings.get_settings(session, merchant_id=merchant_id)
    return View(
        calendar=calendar or Calendar(settings.calendar),
        zone=calendars.time_zone(time_zone or settings.time_zone),
        locale=locale_settings.locale_name(locale) if locale else settings.locale,
    )


def _months(start: datetime, end: datetime, view: View) -> list[Month]:
    start, end = validation.aware(start, "from"), validation.aware(end, "to")
    if start is None or end is None:
        raise DomainError("from" if start is None else "to", ErrorCode.REQUIRED, "the period needs from and to")
    return calendars.months_covering(start, end, view.calendar, view.zone)


# --- a customer's statement ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    kind: str
    unit: str
    opening: int  # available at the month's start (negative after a clawback)
    credited: int  # into available: released, granted available, reversals of spending
    debited: int  # out of available: spent, paid, expired, clawed back (a positive number)
    closing: int  # available at the month's end
    held: int  # held at the month's end


@dataclass(frozen=True)
class StatementMonth:
    month: Month
    lines: list[StatementLine]


async def statement(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID, start: datetime, end: datetime, view: View
) -> list[StatementMonth]:
    """The customer's balances per kind and unit, month by month (the whole months the period
    touches), from their ledger entries."""
    months = _months(start, end, view)
    accounts = list(
        (
            await session.scalars(
                select(LedgerAccount).where(
                    LedgerAccount.merchant_id == merchant_id,
                    LedgerAccount.owner_id == customer_id,
                    LedgerAccount.account_type.in_([AccountType.AVAILABLE, AccountType.HELD]),
                )
            )
        ).all()
    )
    if not accounts:
        return [StatementMonth(m, []) for m in months]
    ids = [a.id for a in accounts]
    opening = dict(
        (
            await session.execute(
                select(LedgerEntry.account_id, money.total(LedgerEntry.amount))
                .where(LedgerEntry.account_id.in_(ids), LedgerEntry.created_at < months[0].start)
                .group_by(LedgerEntry.account_id)
            )
        ).all()
    )
    bucket = calendars.month_bucket(LedgerEntry.created_at, months).label("bucket")
    moved = {
        (row.account_id, row.bucket): (row.credited, row.debited)
        for row in (
            await session.execute(
                select(
                    LedgerEntry.account_id,
                    bucket,
                    money.total(case((LedgerEntry.amount > 0, LedgerEntry.amount), else_=0)).label("credited"),
                    money.total(case((LedgerEntry.amount < 0, -LedgerEntry.amount), else_=0)).label("debited"),
                )
                .where(
                    LedgerEntry.account_id.in_(ids),
                    LedgerEntry.created_at >= months[0].start,
                    LedgerEntry.created_at < months[-1].end,
                )
                .group_by(LedgerEntry.account_id, bucket)
            )
        ).all()
    }
    balances = {a.id: opening.get(a.id, 0) for a in accounts}
    pairs = sorted({(a.kind, a.unit) for a in accounts}, key=lambda pair: (pair[0].value, pair[1]))
    result = []
    for index, month in enumerate(months):
        lines = []
        for kind, unit in pairs:
            available = next(
                (a for a in accounts if (a.kind, a.unit, a.account_type) == (kind, unit, AccountType.AVAILABLE)), None
            )
            held = next((a for a in accounts if (a.kind, a.unit, a.account_type) == (kind, unit, AccountType.HELD)), None)
            credited, debited = moved.get((available.id, index), (0, 0)) if available else (0, 0)
            opening_available = balances[available.id] if available else 0
            if available:
                balances[available.id] += credited - debited
            if held:
                held_in, held_out = moved.get((held.id, index), (0, 0))
                balances[held.id] += held_in - held_out
            lines.append(
                StatementLine(
                    kind.value,
                    unit,
                    opening_available,
                    credited,
                    debited,
                    balances[available.id] if available else 0,
                    balances[held.id] if held else 0,
                )
            )
        result.append(StatementMonth(month, lines))
    return result


# --- a program's rewards per month ---------------------------------------------------------------


@dataclass(frozen=True)
class RewardTotal:
    month: Month
    kind: str
    unit: str
    count: int
    granted: int
    reversed: int


async def rewards_by_month(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, start: datetime, end: datetime, view: View
) -> list[RewardTotal]:
    """Rewards granted (by when they were granted) per month, kind and unit, over the whole
    months the period touches."""
    months = _months(start, end, view)
    bucket = calendars.month_bucket(Reward.created_at, months).label("bucket")
    rows = (
        await session.execute(
            select(
                bucket,
                Reward.kind,
                Reward.unit,
                func.count(Reward.id),
                money.total(Reward.amount),
                money.total(Reward.reversed_amount),
            )
            .where(
                Reward.merchant_id == merchant_id,
                Reward.program_id == program_id,
                Reward.created_at >= months[0].start,
                Reward.created_at < months[-1].end,
            )
            .group_by(bucket, Reward.kind, Reward.unit)
            .order_by(bucket, Reward.kind, Reward.unit)
        )
    ).all()
    return [
        RewardTotal(months[b], kind.value, unit, count, granted, reversed_)
        for b, kind, unit, count, granted, reversed_ in rows
        if b is not None  # always: the WHERE keeps to the months
    ]


def rewards_csv(totals: list[RewardTotal]) -> str:
    """The report as CSV for spreadsheets and scripts: ASCII digits, ISO instants, integer
    minor units, whatever the locale."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["month", "calendar", "start", "end", "kind", "unit", "count", "granted", "reversed"])
    for t in totals:
        writer.writerow(
            [
                t.month.key,
                t.month.calendar.value,
                t.month.start.isoformat(),
                t.month.end.isoformat(),
                t.kind,
                t.unit,
                t.count,
                t.granted,
                t.reversed,
            ]
        )
    return out.getvalue()
