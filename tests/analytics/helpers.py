"""Building blocks for the analytics tests: the rollup job run as the worker runs it, the
rollups as stored, and the report through the public API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.analytics import leaderboards, rollup
from app.analytics.models import DailyFact, Leaderboard, LeaderboardEntry, ReferrerDay
from app.db import create_session_factory, utcnow

OVERVIEW = """
query($p: ID!, $from: Date!, $to: Date!) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    from to timeZone rolledUpAt
    funnel {
      total { clicks signups referred qualified rewarded signupRate referralRate qualificationRate rewardRate }
      byChannel { channel clicks signups referred qualified rewarded }
    }
    money {
      revenue { currency purchases gross refunds refunded net }
      rewardCost { kind unit granted takenBack net }
      couponsRedeemed { unit count amount }
      commission { currency earned paid owed }
      returns { currency netRevenue cost acquiredCustomers costPerAcquiredCustomer roi }
    }
    referrers(first: 5) {
      leaderboard { rank previousRank rankChange customerExternalId qualified referred revenue { currency amount } }
      codeHolders activeReferrers shareReferring invites invitesPerCustomer inviteConversion kFactor
    }
  }
}"""

FRAUD = """
query($p: ID!, $from: Date!, $to: Date!) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    fraud { allowed reviewed blocked allowedShare reviewedShare blockedShare
            held { kind unit amount } clawedBack { kind unit amount } leaked { kind unit amount }
            reviewQueue { open oldestOpenedAt oldestAgeHours medianAgeHours } }
  }
}"""

SERIES = """
query($p: ID!, $from: Date!, $to: Date!, $g: Granularity!, $m: [String!]) {
  programAnalytics(programId: $p, from: $from, to: $to) {
    series(granularity: $g, measures: $m) { start measure dimension unit count amount }
  }
}"""


async def roll_up(db, merchant_id, now: datetime | None = None) -> int:
    async with create_session_factory(db, reason="tests: analytics rollup")() as session:
        days = await rollup.roll_up(session, merchant_id=merchant_id, now=now)
        await session.commit()
    return days


async def stored(db, merchant_id) -> list[tuple]:
    """Both rollups as stored: the program's facts and the per-referrer counts."""
    async with create_session_factory(db, reason="tests: analytics rollups as stored")() as session:
        rows = (
            await session.execute(
                select(
                    DailyFact.program_id,
                    DailyFact.day,
                    DailyFact.measure,
                    DailyFact.dimension,
                    DailyFact.unit,
                    DailyFact.count,
                    DailyFact.amount,
                ).where(DailyFact.merchant_id == merchant_id)
            )
        ).all()
        referrers = (
            await session.execute(
                select(
                    ReferrerDay.program_id, ReferrerDay.day, ReferrerDay.referrer_id, ReferrerDay.referred, ReferrerDay.qualified
                ).where(ReferrerDay.merchant_id == merchant_id)
            )
        ).all()
    return sorted((tuple(r) for r in rows), key=repr) + sorted((("referrer", *r) for r in referrers), key=repr)


async def recounted(db, merchant_id, zone, first: date, last: date) -> list[tuple]:
    """Every day first..last counted afresh from the raw rows."""
    async with create_session_factory(db, reason="tests: analytics recount")() as session:
        days = [d.day for d in rollup.local_days(first, last, zone)]
        facts = await rollup.count_days(session, merchant_id=merchant_id, zone=zone, days=days)
        referrers = await rollup.count_referrer_days(session, merchant_id=merchant_id, zone=zone, days=days)
    return sorted(((f.program_id, f.day, f.measure, f.dimension, f.unit, f.count, f.amount) for f in facts), key=repr) + sorted(
        (("referrer", f.program_id, f.day, f.referrer_id, f.referred, f.qualified) for f in referrers), key=repr
    )


async def stored_boards(db, merchant_id) -> dict[tuple, tuple]:
    """The stored leaderboards: (program, first, last) -> (active referrers, entries best first)."""
    async with create_session_factory(db, reason="tests: leaderboards as stored")() as session:
        boards = (
            await session.execute(
                select(
                    Leaderboard.id, Leaderboard.program_id, Leaderboard.first, Leaderboard.last, Leaderboard.active_referrers
                ).where(Leaderboard.merchant_id == merchant_id)
            )
        ).all()
        entries = (
            await session.execute(
                select(
                    LeaderboardEntry.leaderboard_id,
                    LeaderboardEntry.rank,
                    LeaderboardEntry.previous_rank,
                    LeaderboardEntry.referrer_id,
                    LeaderboardEntry.qualified,
                    LeaderboardEntry.referred,
                )
                .where(LeaderboardEntry.merchant_id == merchant_id)
                .order_by(LeaderboardEntry.position)
            )
        ).all()
    return {
        (program_id, first, last): (active, [tuple(e[1:]) for e in entries if e[0] == board_id])
        for board_id, program_id, first, last, active in boards
    }


async def recounted_boards(db, merchant_id, zone, first_day: date, periods) -> dict[tuple, tuple]:
    """The same boards ranked here, by the rules of app.analytics.leaderboards, from the
    per-referrer counts recounted afresh from the raw referrals."""
    earliest = min(leaderboards.previous_of(*p)[0] for p in periods)
    async with create_session_factory(db, reason="tests: analytics recount")() as session:
        days = [d.day for d in rollup.local_days(max(earliest, first_day), max(p[1] for p in periods), zone)]
        facts = await rollup.count_referrer_days(session, merchant_id=merchant_id, zone=zone, days=days)

    def sums(program_id, first, last):
        found: dict = {}
        for f in facts:
            if f.program_id == program_id and first <= f.day <= last:
                q, r = found.get(f.referrer_id, (0, 0))
                found[f.referrer_id] = (q + f.qualified, r + f.referred)
        return found

    boards = {}
    for program_id in {f.program_id for f in facts}:
        for first, last in periods:
            now, before = sums(program_id, first, last), sums(program_id, *leaderboards.previous_of(first, last))
            order = sorted(now.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[: leaderboards.LEADERBOARD_MAX]
            entries = []
            for referrer_id, (q, r) in order:
                rank = 1 + sum(1 for _id, counts in order if counts > (q, r))
                previous = (
                    1 + sum(1 for bq, _br in before.values() if bq > before[referrer_id][0])
                    if before.get(referrer_id, (0, 0))[0] > 0
                    else None
                )
                entries.append((rank, previous, referrer_id, q, r))
            boards[(program_id, first, last)] = (sum(1 for _q, r in now.values() if r > 0), entries)
    return boards


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def today() -> date:
    return utcnow().date()


def days_ago(n: int) -> datetime:
    return utcnow() - timedelta(days=n)


async def report(tenant, program_id: str, first: date, last: date, query: str = OVERVIEW, **extra: Any) -> dict:
    variables = {"p": program_id, "from": first.isoformat(), "to": last.isoformat(), **extra}
    return (await tenant.gql(query, variables))["programAnalytics"]
