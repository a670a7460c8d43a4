from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow


class JobStatus(enum.Enum):
    PENDING = "PENDING"  # written with the data that caused it; sent (maybe more than once) until done
    DONE = "DONE"  # its effects committed, in the same transaction as this status
    DEAD = "DEAD"  # failed every attempt; an operator can retry it


class OutboxJob(Base):
    """A job, written in the same transaction as the change that caused it.

    After commit it is sent to dramatiq; the relay sends again what is not DONE after a while,
    so a crash between commit and send loses nothing. `run_key` makes a job unique (e.g. one
    scheduled run per minute, whichever worker schedules it)."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (
        UniqueConstraint("run_key"),
        Index("ix_outbox_jobs_status_sent_at", "status", "sent_at"),
        Index("ix_outbox_jobs_merchant_id_status", "merchant_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID | None] = mapped_column()  # None for system jobs (scheduled work)
    actor: Mapped[str] = mapped_column(String(100))  # "<domain>.<event>"
    args: Mapped[dict] = mapped_column(JSONType)
    run_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, 16), default=JobStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a delayed job
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
