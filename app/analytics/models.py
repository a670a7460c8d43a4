"""The daily rollups the reports read: one row per program, local day (the merchant's time zone)
and measure, so a year's overview sums a few thousand small rows whatever the raw tables hold."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class DailyFact(Base):
    """How much of one measure a program saw on one local day, in one channel (clicks, funnel
    steps) or kind (reward cost), and one unit (a currency, POINTS, PERCENT; '' for counts).
    Recomputed whole from the raw rows for each day a job finds touched: never incremented."""

    __tablename__ = "analytics_daily"
    __table_args__ = (
        UniqueConstraint("program_id", "day", "measure", "dimension", "unit"),
        Index("ix_analytics_daily_merchant_id_program_id_day", "merchant_id", "program_id", "day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    day: Mapped[date] = mapped_column(Date)
    measure: Mapped[str] = mapped_column(String(32))
    dimension: Mapped[str] = mapped_column(String(32), default="")
    unit: Mapped[str] = mapped_column(String(8), default="")
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class RollupState(Base):
    """Where a merchant's rollups stand: rows recorded before `rolled_up_at` are counted, in
    the time zone `time_zone` (a changed zone rebuilds everything)."""

    __tablename__ = "analytics_rollup_state"

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    rolled_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReferrerDay(Base):
    """One referrer's referrals made and qualified on one local day: the leaderboard, its rank
    changes and the count of active referrers sum these instead of the raw referrals."""

    __tablename__ = "analytics_referrer_daily"
    __table_args__ = (UniqueConstraint("program_id", "day", "referrer_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    day: Mapped[date] = mapped_column(Date)
    # A customer's id, without a foreign key: derived counts, like the referrals they count (which
    # the customer's data export holds); an erased customer keeps the row, so the id stays valid.
    referrer_id: Mapped[uuid.UUID] = mapped_column()
    referred: Mapped[int] = mapped_column(BigInteger, default=0)
    qualified: Mapped[int] = mapped_column(BigInteger, default=0)


class Leaderboard(Base):
    """A program's referrers ranked over one period (days `first`..`last`, local), kept by the
    rollup job for the periods reports ask for most: the last 7, 30, 90 and 365 days, each
    calendar week and month. A report over such a period reads its top rows instead of summing
    every referrer's days (tens of thousands of rows a month at 1M actions)."""

    __tablename__ = "analytics_leaderboards"
    __table_args__ = (UniqueConstraint("program_id", "first", "last"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    first: Mapped[date] = mapped_column(Date)
    last: Mapped[date] = mapped_column(Date)
    active_referrers: Mapped[int] = mapped_column(BigInteger)  # customers who referred someone in the period


class LeaderboardEntry(Base):
    """One of the top referrers of a stored leaderboard, at its position (1, 2, ...; ties share
    a rank but not a position), with their rank in the period of the same length just before."""

    __tablename__ = "analytics_leaderboard_entries"
    __table_args__ = (UniqueConstraint("leaderboard_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    leaderboard_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("analytics_leaderboards.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    rank: Mapped[int] = mapped_column()
    previous_rank: Mapped[int | None] = mapped_column(nullable=True)
    referrer_id: Mapped[uuid.UUID] = mapped_column()  # a customer's id, no foreign key (as in ReferrerDay)
    qualified: Mapped[int] = mapped_column(BigInteger)
    referred: Mapped[int] = mapped_column(BigInteger)
