"""Reports as CSV rows for spreadsheets and scripts: ASCII digits, ISO dates, integer minor
units with their currency, whatever the merchant's locale (as app.rewards.reports does)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics import reports
from app.errors import DomainError, ErrorCode

REPORTS = ("series", "totals", "funnel", "leaderboard", "cohorts")


async def rows_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, period: reports.Period, report: str, weekly: bool = False
) -> list[list]:
    """The report's header and rows, read in full (bounded by the period's 366 days) before
    anything is sent, so the answer never stops half-way on a database error."""
    if report == "series":
        points = await reports.series(session, merchant_id=merchant_id, period=period, weekly=weekly)
        return [
            ["start", "measure", "dimension", "unit", "count", "amount"],
            *([p.start.isoformat(), p.measure, p.dimension, p.unit, p.count, p.amount] for p in points),
        ]
    if report == "totals":
        t = await reports.totals(session, merchant_id=merchant_id, period=period)
        return [
            ["measure", "dimension", "unit", "count", "amount"],
            *([m, d, u, c, a] for (m, d, u), (c, a) in sorted(t.within.items())),
        ]
    if report == "funnel":
        total, channels = reports.funnel(await reports.totals(session, merchant_id=merchant_id, period=period))
        return [
            ["channel", "clicks", "signups", "referred", "qualified", "rewarded"],
            *(
                [s.channel if s.channel is not None else "*", s.clicks, s.signups, s.referred, s.qualified, s.rewarded]
                for s in (total, *channels)
            ),
        ]
    if report == "leaderboard":
        leaders, _active = await reports.leaderboard(
            session, merchant_id=merchant_id, period=period, first=reports.LEADERBOARD_MAX
        )
        return [
            ["rank", "previous_rank", "customer_external_id", "qualified", "referred", "currency", "revenue"],
            *(
                [
                    x.rank,
                    "" if x.previous_rank is None else x.previous_rank,
                    x.external_id,
                    x.qualified,
                    x.referred,
                    currency,
                    amount,
                ]
                for x in leaders
                for currency, amount in (x.revenue.items() or [("", 0)])
            ),
        ]
    if report == "cohorts":
        found = await reports.cohorts(session, merchant_id=merchant_id, period=period)
        weeks = reports.COHORT_WEEKS
        return [
            ["week", "customers", *(f"referring_within_{w}_weeks" for w in weeks)],
            *([c.week.isoformat(), c.customers, *(c.referring[w] for w in weeks)] for c in found),
        ]
    raise DomainError("report", ErrorCode.INVALID_INPUT, f"report is one of {', '.join(REPORTS)}")


def stream(rows: Iterable[list]) -> Iterator[str]:
    """CSV text, a few hundred rows at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for index, row in enumerate(rows, 1):
        writer.writerow(row)
        if index % 500 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
