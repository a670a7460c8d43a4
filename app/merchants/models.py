from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow


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
    # Goes up with every change of the configuration the write path reads (a trigger, migration
    # 0012); read with the API key, it keys app/config_cache.py.
    config_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


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
    """Who did what to money-relevant settings and decisions (fraud reviews, lists, policies,
    admins, second factors, payouts). Append-only; `actor_key_id` is the API key that made
    the call, `actor_admin_id` the admin whose session did (both empty: the system or the CLI)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(64))  # e.g. "fraud_review.approved"
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminRole(enum.Enum):
    """What a merchant's staff member may do (see app.schema.permissions for each operation)."""

    OWNER = "OWNER"  # everything, including managing admins and payout settings
    ADMIN = "ADMIN"  # programs, reviews, payout holds; not money approvals
    REVIEWER = "REVIEWER"  # resolves fraud reviews
    FINANCE = "FINANCE"  # approves payouts


class AdminStatus(enum.Enum):
    INVITED = "INVITED"  # created; the setup token has not been used yet
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class Admin(Base):
    """A person who works for a merchant, next to the merchant's API keys.

    The password is an Argon2id hash. The TOTP seed is encrypted (app.crypto) and bound to
    this row; `totp_last_step` is the last accepted time step, advanced by a conditional
    UPDATE so a code is accepted once. `second_factor_locked_until` is set by too many
    wrong codes (app.merchants.totp)."""

    __tablename__ = "admins"
    __table_args__ = (
        UniqueConstraint("merchant_id", "email"),
        Index("ix_admins_email", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    email: Mapped[str] = mapped_column(String(320))  # lower-case
    role: Mapped[AdminRole] = mapped_column(enum_column(AdminRole, 16))
    status: Mapped[AdminStatus] = mapped_column(enum_column(AdminStatus, 16), default=AdminStatus.INVITED)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    setup_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    totp_pending_encrypted: Mapped[str | None] = mapped_column(Text)  # an enrollment not confirmed yet
    totp_pending_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    second_factor_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def admin_role(self) -> AdminRole:
        return AdminRole(self.role)

    @property
    def is_active(self) -> bool:
        return self.status == AdminStatus.ACTIVE


class AdminSession(Base):
    """A login. The token (`sess_...`) is shown once and stored as its SHA-256."""

    __tablename__ = "admin_sessions"
    __table_args__ = (Index("ix_admin_sessions_admin_id", "admin_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    admin_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("admins.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class AdminRecoveryCode(Base):
    """One of the ten single-use codes given at TOTP enrollment, stored as its SHA-256
    (80 random bits each, so a fast hash does not make them guessable)."""

    __tablename__ = "admin_recovery_codes"
    __table_args__ = (UniqueConstraint("admin_id", "code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    admin_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("admins.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SecondFactorAttempt(Base):
    """Every code that was checked against an admin's second factor, right or wrong.
    Wrong ones within the lockout window lock the admin's money actions
    (app.merchants.totp); a code not checked (locked, refused by the document's validation)
    leaves no row."""

    __tablename__ = "second_factor_attempts"
    __table_args__ = (Index("ix_second_factor_attempts_admin_id_created_at", "admin_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    admin_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("admins.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # TOTP or RECOVERY_CODE
    purpose: Mapped[str] = mapped_column(String(64))  # e.g. "approve_payouts"
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(16))  # ACCEPTED, WRONG, REPLAYED
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
