from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, new_id, utcnow


class ApiKeyKind(enum.Enum):
    SECRET = "secret"  # server to server: full access to the merchant's data
    PUBLISHABLE = "publishable"  # safe in a browser: widget operations only

    @property
    def prefix(self) -> str:
        return "sk_" if self is ApiKeyKind.SECRET else "pk_"


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The operator's own budgets for this merchant's keys ({"secret_key": "6000/minute"}):
    # app/ratelimits.py; null means the deployment's defaults.
    rate_limits: Mapped[dict | None] = mapped_column(JSONType)


class ApiKey(Base):
    """Only the SHA-256 of a key is stored: keys are 190-bit random tokens, so a fast hash
    is safe and lets every request find its key with one indexed lookup."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def key_kind(self) -> ApiKeyKind:
        return ApiKeyKind(self.kind)

    @property
    def masked(self) -> str:
        return f"{self.key_kind.prefix}…{self.last4}"

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditEntry(Base):
    """Who did what to money-relevant settings and decisions (fraud reviews, lists, policies).
    Append-only; `actor_key_id` is the API key that made the call."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(64))  # e.g. "fraud_review.approved"
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LocaleSettings(Base):
    """How a merchant's people read and type: the time zone and calendar reports and statements
    are grouped in, the locale amounts are shown in, and whether referral codes may be written
    in Arabic script (with ة and ه as one letter, if the merchant says so). Without a row, the
    defaults: UTC, Gregorian, English, Latin codes."""

    __tablename__ = "locale_settings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")  # IANA name
    calendar: Mapped[str] = mapped_column(String(16), default="GREGORIAN")  # app.calendars.Calendar
    locale: Mapped[str] = mapped_column(String(16), default="en")  # CLDR, e.g. fa, ar_SA
    arabic_script_codes: Mapped[bool] = mapped_column(Boolean, default=False)
    unify_teh_marbuta: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
