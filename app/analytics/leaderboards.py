"""Leaderboards: a program's referrers ranked over a period, with their rank in the period before.

Ranking a period means summing every referrer's days in it (at 1M actions about 80,000
per-referrer rows a month, a million a year), twice (the period and the one before, for rank
changes): too slow for an overview that answers in 200 ms. So the rollup job keeps the ranked
top rows of the periods reports ask for most (`maintained_periods`: the last 7, 30, 90 and 365
days, every calendar week and month), recomputing a stored board whenever one of the days it or
the period before it covers is recounted; `referral analytics backfill` rebuilds them all. A
report over another period ranks it on the spot (`rank_period`, the same query).

Ranking rules: by referrals qualified, then referrals made, then the customer id (a stable
order); equal (qualified, made) share a rank. The previous rank is the referrer's rank by
qualified referrals among those who had any in the period just before (None if they had none).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Subquery, case, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics.models import Leaderboard, LeaderboardEntry, ReferrerDay
from app.db import new_id

LEADERBOARD_MAX = 100  # rows stored per board, and the most a report returns
TRAILING_DAYS = (7, 30, 90, 365)  # the console's periods: the last n days up to today


@dataclass(frozen=True)
class Ranked:
    rank: int
    previous_rank: int | None
    referrer_id: uuid.UUID
    qualified: int
    referred: int


@dataclass(frozen=True)
class Board:
    entries: list[Ranked]  # the top LEADERBOARD_MAX at most, best first
    active_referrers: int  # customers who referred someone in the period


def previous_of(first: date, last: date) -> tuple[date, date]:
    """The period of the same length just before."""
    length = (last - first).days + 1
    return first - timedelta(days=length), first - timedelta(days=1)


def maintained_periods(first_day: date, today: date) -> set[tuple[date, date]]:
    """The periods whose boards are stored, for a merchant whose data starts on `first_day`."""
    periods = {(today - timedelta(days=n - 1), today) for n in TRAILING_DAYS}
    week = first_day - timedelta(days=first_day.weekday())
    while week <= today:
        periods.add((week, week + timedelta(days=6)))
        week += timedelta(weeks=1)
    month = first_day.replace(day=1)
    while month <= today:
        following = (month + timedelta(days=32)).replace(day=1)
        periods.add((month, following - timedelta(days=1)))
        month = following
    return periods


def _per_referrer(merchant_id: uuid.UUID, program_id: uuid.UUID, first: date, last: date) -> Subquery:
    return (
        select(ReferrerDay.referrer_id, func.sum(ReferrerDay.qualified).label("q"), func.sum(ReferrerDay.referred).label("r"))
        .where(
            ReferrerDay.merchant_id == merchant_id,
            ReferrerDay.program_id == program_id,
            ReferrerDay.day >= first,
            ReferrerDay.day <= last,
        )
        .group_by(ReferrerDay.referrer_id)
        .subquery()
    )


async def rank_period(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, first: date, last: date, limit: int = LEADERBOARD_MAX
) -> Board:
    """Rank the period from the per-referrer daily rollups (two aggregations of its days)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # a month's per-referrer rows (tens of thousands at 1M actions) group in memory, not on disk
        await session.execute(text("SET LOCAL work_mem = '32MB'"))
    now = _per_referrer(merchant_id, program_id, first, last)
    active = func.sum(case((now.c.r > 0, 1), else_=0)).over()  # over every referrer, before the limit
    top = (
        await session.execute(
            select(now.c.referrer_id, now.c.q, now.c.r, active)
            .order_by(now.c.q.desc(), now.c.r.desc(), now.c.referrer_id)
            .limit(limit)
        )
    ).all()
    if not top:
        return Board([], 0)
    before = _per_referrer(merchant_id, program_id, *previous_of(first, last))
    ranked = (
        select(before.c.referrer_id, func.rank().over(order_by=before.c.q.desc()).label("rank")).where(before.c.q > 0).subquery()
    )
    ids = [row[0] for row in top]
    previous = dict(
        (await session.execute(select(ranked.c.referrer_id, ranked.c.rank).where(ranked.c.referrer_id.in_(ids)))).all()
    )
    entries, rank = [], 0
    for index, (referrer_id, q, r, _active) in enumerate(top):
        if index == 0 or (q, r) != tuple(top[index - 1][1:3]):
            rank = index + 1
        entries.append(Ranked(rank, previous.get(referrer_id), referrer_id, int(q), int(r)))
    return Board(entries, int(top[0][3] or 0))


async def stored_board(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, first: date, last: date, limit: int
) -> Board | None:
    """The stored board of exactly this period, or None (not a maintained period, or not yet built)."""
    board = (
        await session.execute(
            select(Leaderboard.id, Leaderboard.active_referrers).where(
                Leaderboard.merchant_id == merchant_id,
                Leaderboard.program_id == program_id,
                Leaderboard.first == first,
                Leaderboard.last == last,
            )
        )
    ).first()
    if board is None:
        return None
    rows = (
        await session.execute(
            select(
                LeaderboardEntry.rank,
                LeaderboardEntry.previous_rank,
                LeaderboardEntry.referrer_id,
                LeaderboardEntry.qualified,
                LeaderboardEntry.referred,
            )
            .where(LeaderboardEntry.merchant_id == merchant_id, LeaderboardEntry.leaderboard_id == board.id)
            .order_by(LeaderboardEntry.position)
            .limit(limit)
        )
    ).all()
    return Board([Ranked(*row) for row in rows], board.active_referrers)


async def board_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, first: date, last: date, limit: int
) -> Board:
    """The period's board: stored if it is a maintained period, else ranked now."""
    found = await stored_board(session, merchant_id=merchant_id, program_id=program_id, first=first, last=last, limit=limit)
    if found is not None:
        return found
    return await rank_period(session, merchant_id=merchant_id, program_id=program_id, first=first, last=last, limit=limit)


async def refresh(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_ids: list[uuid.UUID],
    first_day: date | None,
    today: date,
    touched: set[date] | None,
) -> int:
    """Bring the stored boards in line with the per-referrer rollups just written: drop the
    boards of periods no longer maintained (last n days that ended before today), rank the new
    ones and those whose period, or the period before it, holds a recounted day (`touched`;
    None: every board). Returns the boards ranked."""
    wanted = maintained_periods(first_day, today) if first_day is not None else set()
    ranked = 0
    for program_id in program_ids:
        stored = {
            (first, last): board_id
            for board_id, first, last in (
                await session.execute(
                    select(Leaderboard.id, Leaderboard.first, Leaderboard.last).where(
                        Leaderboard.merchant_id == merchant_id, Leaderboard.program_id == program_id
                    )
                )
            ).all()
        }
        stale = sorted(
            p for p in wanted if p not in stored or touched is None or any(previous_of(*p)[0] <= day <= p[1] for day in touched)
        )
        gone = [board_id for period, board_id in stored.items() if period not in wanted or period in stale]
        for start in range(0, len(gone), 500):
            ids = gone[start : start + 500]
            await session.execute(
                delete(LeaderboardEntry).where(
                    LeaderboardEntry.merchant_id == merchant_id, LeaderboardEntry.leaderboard_id.in_(ids)
                )
            )
            await session.execute(delete(Leaderboard).where(Leaderboard.merchant_id == merchant_id, Leaderboard.id.in_(ids)))
        for first, last in stale:
            board = await rank_period(session, merchant_id=merchant_id, program_id=program_id, first=first, last=last)
            board_id = new_id()
            await session.execute(
                insert(Leaderboard).values(
                    id=board_id,
                    merchant_id=merchant_id,
                    program_id=program_id,
                    first=first,
                    last=last,
                    active_referrers=board.active_referrers,
                )
            )
            if board.entries:
                await session.execute(
                    insert(LeaderboardEntry),
                    [
                        {
                            "merchant_id": merchant_id,
                            "leaderboard_id": board_id,
                            "position": position,
                            "rank": e.rank,
                            "previous_rank": e.previous_rank,
                            "referrer_id": e.referrer_id,
                            "qualified": e.qualified,
                            "referred": e.referred,
                        }
                        for position, e in enumerate(board.entries, start=1)
                    ],
                )
            ranked += 1
    return ranked
