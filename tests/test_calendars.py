"""Months in the Gregorian, Solar Hijri and Hijri calendars, at their boundaries in Tehran and Riyadh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from app.calendars import Calendar, month_of, months_covering, numbering_system, time_zone
from app.errors import DomainError

TEHRAN, RIYADH = time_zone("Asia/Tehran"), time_zone("Asia/Riyadh")  # UTC+3:30 and UTC+3, no daylight saving
SECOND = timedelta(seconds=1)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_nowruz_starts_farvardin_at_midnight_in_tehran():
    # 1 Farvardin 1405 is 21 March 2026; midnight in Tehran is 20:30 UTC the day before.
    start = at(2026, 3, 20, 20, 30)
    before, after = month_of(start - SECOND, Calendar.JALALI, TEHRAN), month_of(start, Calendar.JALALI, TEHRAN)
    assert (before.year, before.month, before.key) == (1404, 12, "1404-12")
    assert (after.year, after.month, after.key) == (1405, 1, "1405-01")
    assert after.start == before.end == start
    assert after.end == at(2026, 4, 20, 20, 30)  # Farvardin has 31 days
    assert after.label("fa") == "فروردین ۱۴۰۵" and after.label("en") == "Farvardin 1405"
    assert before.label("fa") == "اسفند ۱۴۰۴"


def test_ramadan_starts_at_midnight_in_riyadh():
    # 1 Ramadan 1447 is 18 February 2026 in the Umm al-Qura calendar; midnight in Riyadh is 21:00 UTC.
    start = at(2026, 2, 17, 21)
    before, after = month_of(start - SECOND, Calendar.HIJRI, RIYADH), month_of(start, Calendar.HIJRI, RIYADH)
    assert (before.year, before.month) == (1447, 8)  # Sha'ban
    assert (after.year, after.month) == (1447, 9)
    assert after.start == start and after.end == at(2026, 3, 19, 21)  # 1 Shawwal: 20 March
    assert after.label("ar_SA") == "رمضان ١٤٤٧" and after.label("en") == "Ramadan 1447"


def test_a_gregorian_month_begins_at_local_midnight_not_utc():
    november_in_tehran = month_of(at(2026, 10, 31, 20, 30), Calendar.GREGORIAN, TEHRAN)
    assert november_in_tehran.key == "2026-11" and november_in_tehran.start == at(2026, 10, 31, 20, 30)
    assert month_of(at(2026, 10, 31, 20, 29, 59), Calendar.GREGORIAN, TEHRAN).key == "2026-10"
    assert month_of(at(2026, 10, 31, 20, 30), Calendar.GREGORIAN, time_zone("UTC")).key == "2026-10"
    assert november_in_tehran.label("fa") == "نوامبر ۲۰۲۶"


@pytest.mark.parametrize("calendar", list(Calendar))
def test_months_cover_a_period_without_gaps(calendar):
    months = months_covering(at(2025, 6, 1), at(2026, 6, 1), calendar, TEHRAN)
    assert 12 <= len(months) <= 14
    assert months[0].start <= at(2025, 6, 1) < months[0].end and months[-1].start < at(2026, 6, 1) <= months[-1].end
    assert all(a.end == b.start for a, b in pairwise(months))
    assert len({m.key for m in months}) == len(months)


def test_a_report_spans_at_most_five_years():
    with pytest.raises(DomainError):
        months_covering(at(2020, 1, 1), at(2026, 1, 1), Calendar.GREGORIAN, RIYADH)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "+03:30", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused(name):
    with pytest.raises(DomainError) as refused:
        time_zone(name)
    assert refused.value.field == "timeZone"


def test_each_locale_has_its_digits():
    assert numbering_system("fa") == "arabext"
    assert numbering_system("ar_SA") == "arab"
    assert numbering_system("en") == "latn"
