"""Months in the calendars merchants keep their books in: Gregorian, Solar Hijri (Jalali, the
Iranian calendar) and Hijri (Umm al-Qura, the Saudi civil calendar), in the merchant's time
zone. A month is an interval of UTC instants, so grouping is a range comparison in SQL.

The calendar arithmetic is the maintained libraries' (`jdatetime`, `hijridate`), never ours;
time zones are the IANA database's (`zoneinfo`, with the `tzdata` package as a fallback).
Reports and statements use `months_covering` and `month_bucket`; the analytics issue can too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import hijridate
import jdatetime
from babel import Locale
from babel.dates import get_month_names
from sqlalchemy import SQLColumnExpression, case
from sqlalchemy.sql.elements import ColumnElement

from app.errors import DomainError, ErrorCode
from app.text import localized_digits

MAX_MONTHS = 60  # months one report may span
FIRST_YEAR, LAST_YEAR = 1925, 2076  # inside every calendar's tables (Umm al-Qura's are the shortest)


class Calendar(enum.Enum):
    GREGORIAN = "GREGORIAN"
    JALALI = "JALALI"  # Solar Hijri (Iran, Afghanistan)
    HIJRI = "HIJRI"  # Islamic lunar, Umm al-Qura tables (Saudi Arabia)


def time_zone(name: str, field: str = "timeZone") -> ZoneInfo:
    """An IANA time zone ("Asia/Tehran"), or a DomainError on `field`."""
    try:
        if name not in _zone_names():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{name!r} is not an IANA time zone such as Asia/Tehran") from None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _to_calendar(day: date, calendar: Calendar) -> tuple[int, int]:
    if calendar is Calendar.JALALI:
        jalali = jdatetime.date.fromgregorian(date=day)
        return jalali.year, jalali.month
    if calendar is Calendar.HIJRI:
        try:
            hijri = hijridate.Gregorian(day.year, day.month, day.day).to_hijri()
        except OverflowError:
            raise DomainError(None, ErrorCode.INVALID_INPUT, "Hijri (Umm al-Qura) dates are known from 1924 to 2077") from None
        return hijri.year, hijri.month
    return day.year, day.month


def _first_day(year: int, month: int, calendar: Calendar) -> date:
    """The Gregorian date of the first day of a calendar month (month 13 is next year's first)."""
    if month > 12:
        year, month = year + 1, month - 12
    if calendar is Calendar.JALALI:
        return jdatetime.date(year, month, 1).togregorian()
    if calendar is Calendar.HIJRI:
        try:
            return hijridate.Hijri(year, month, 1).to_gregorian()
        except OverflowError:
            raise DomainError(None, ErrorCode.INVALID_INPUT, "Hijri (Umm al-Qura) dates are known from 1924 to 2077") from None
    return date(year, month, 1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant `day` begins in `zone` (where midnight is skipped, the moment the day starts)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Month:
    calendar: Calendar
    year: int
    month: int
    start: datetime  # UTC, inclusive: the first day's midnight in the time zone
    end: datetime  # UTC, exclusive: the next month's start

    @property
    def key(self) -> str:
        """ "1405-01": ASCII, sortable, for machines and CSV files."""
        return f"{self.year:04d}-{self.month:02d}"

    def label(self, locale: str = "en") -> str:
        """ "Farvardin 1405", "فروردین ۱۴۰۵", "رمضان ١٤٤٧": the month as people of `locale` write it."""
        language = Locale.parse(locale).language
        if self.calendar is Calendar.JALALI:
            names = jdatetime.date.j_months_fa if language == "fa" else jdatetime.date.j_months_en
            name = names[self.month - 1]
        elif self.calendar is Calendar.HIJRI:
            name = hijridate.Hijri(self.year, self.month, 1).month_name("ar" if language in ("ar", "fa") else "en")
        else:
            name = get_month_names("wide", locale=locale)[self.month]
        return localized_digits(f"{name} {self.year}", numbering_system(locale))


def month_of(moment: datetime, calendar: Calendar, zone: ZoneInfo) -> Month:
    """The calendar month `moment` (an aware datetime) falls in, in `zone`."""
    year, month = _to_calendar(moment.astimezone(zone).date(), calendar)
    return Month(
        calendar,
        year,
        month,
        start=_midnight(_first_day(year, month, calendar), zone),
        end=_midnight(_first_day(year, month + 1, calendar), zone),
    )


def months_covering(start: datetime, end: datetime, calendar: Calendar, zone: ZoneInfo) -> list[Month]:
    """The months that [start, end) touches, in order (at most MAX_MONTHS)."""
    for field, moment in (("from", start), ("to", end)):
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise DomainError(field, ErrorCode.INVALID_INPUT, f"reports cover {FIRST_YEAR} to {LAST_YEAR}")
    if end <= start:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to must be after from")
    months = [month_of(start, calendar, zone)]
    while months[-1].end < end:
        if len(months) == MAX_MONTHS:
            raise DomainError("to", ErrorCode.INVALID_INPUT, f"a report spans at most {MAX_MONTHS} months")
        months.append(month_of(months[-1].end, calendar, zone))
    return months


def month_bucket(column: SQLColumnExpression[datetime], months: list[Month]) -> ColumnElement[int | None]:
    """SQL: the index in `months` of the month `column` (a UTC timestamp) falls in, NULL outside
    them. GROUP BY it to total per month in one set-based query."""
    return case(*(((column >= m.start) & (column < m.end), index) for index, m in enumerate(months)), else_=None)


def numbering_system(locale: str) -> str:
    """The digits `locale` writes numbers with (CLDR): `arabext` for fa (۱۲۳), `arab` for ar_SA or
    ar_EG (١٢٣), `latn` for en, ar (plain Arabic is Latin-digit in CLDR) or ar_MA."""
    return Locale.parse(locale).default_numbering_system or "latn"
