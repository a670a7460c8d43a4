"""Building blocks for the analytics tests: the rollup job run as the worker runs it, the
rollups as stored, and the report through the public API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.analytics import rollup
from app.analytics.models import DailyFact, ReferrerDay
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
        rows = (await session.execute(
            select(DailyFact.program_id, DailyFact.day, DailyFact.measure, DailyFact.dimension, DailyFact.unit,
                   DailyFact.count, DailyFact.amount)
            .where(DailyFact.merchant_id == merchant_id)
        )).all()
        referrers = (await session.execute(
            select(ReferrerDay.program_id, ReferrerDay.day, ReferrerDay.referrer_id, ReferrerDay.referred, ReferrerDay.qualified)
            .where(ReferrerDay.merchant_id == merchant_id)
        )).all()
    return sorted((tuple(r) for r in rows), key=repr) + sorted((("referrer", *r) for r in referrers), key=repr)


async def recounted(db, merchant_id, zone, first: date, last: date) -> list[tuple]:
    """Every day first..last counted afresh from the raw rows."""
    async with create_session_factory(db, reason="tests: analytics recount")() as session:
        days = [d.day for d in rollup.local_days(first, last, zone)]
        facts = await rollup.count_days(session, merchant_id=merchant_id, zone=zone, days=days)
        referrers = await rollup.count_referrer_days(session, merchant_id=merchant_id, zone=zone, days=days)
    return (sorted(((f.program_id, f.day, f.measure, f.dimension, f.unit, f.count, f.amount) for f in facts), key=repr)
            + sorted((("referrer", f.program_id, f.day, f.referrer_id, f.referred, f.qualified) for f in referrers), key=repr))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def today() -> date:
    return utcnow().date()


def days_ago(n: int) -> datetime:
    return utcnow() - timedelta(days=n)


async def report(tenant, program_id: str, first: date, last: date, query: str = OVERVIEW, **extra: Any) -> dict:
    variables = {"p": program_id, "from": first.isoformat(), "to": last.isoformat(), **extra}
    return (await tenant.gql(query, variables))["programAnalytics"]
