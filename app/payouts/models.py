from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow

DEFAULT_COOLING_OFF_HOURS = 72


class PayoutMethod(enum.Enum):
    PAYPAL = "PAYPAL"  # a PayPal email
    BANK_TRANSFER = "BANK_TRANSFER"  # IBAN and account holder
    STORE_CREDIT = "STORE_CREDIT"  # the merchant credits the customer's store account
    CUSTOM = "CUSTOM"  # a merchant-defined type (`custom_type`) and details


class PayoutStatus(enum.Enum):
    PENDING_APPROVAL = "PENDING_APPROVAL"  # funds set aside, waiting for an approver
    ON_HOLD = "ON_HOLD"  # funds set aside; a reason (fraud review, cooling-off, ...) stops approval
    APPROVED = "APPROVED"  # approved with a second factor; the sending job picks it up
    PROCESSING = "PROCESSING"  # with its provider (in a batch file, or announced to the merchant)
    PAID = "PAID"
    FAILED = "FAILED"  # funds returned to the balance
    REJECTED = "REJECTED"  # funds returned to the balance

    @property
    def holds_funds(self) -> bool:
        """Funds sit in the customer's PAYOUT_PENDING account."""
        return self in (PayoutStatus.PENDING_APPROVAL, PayoutStatus.ON_HOLD, PayoutStatus.APPROVED, PayoutStatus.PROCESSING)


class HoldReason(enum.Enum):
    OPEN_FRAUD_REVIEW = "OPEN_FRAUD_REVIEW"  # a referral of the customer's is in review
    COOLING_OFF = "COOLING_OFF"  # the payout account was set or changed recently
    FLAGGED_REFERRALS = "FLAGGED_REFERRALS"  # most of the customer's referrals were flagged
    SHARED_PAYOUT_ACCOUNT = "SHARED_PAYOUT_ACCOUNT"  # other customers use the same destination
    CLAWBACK_DEBT = "CLAWBACK_DEBT"  # a clawback since the request left the balance negative

    @property
    def lifts_by_itself(self) -> bool:
        """Holds that end when their condition does (checked by the `payouts.refresh_holds`
        job); the others wait for a person (`releasePayoutHold`)."""
        return self in (HoldReason.OPEN_FRAUD_REVIEW, HoldReason.COOLING_OFF)


class Provider(enum.Enum):
    PAYPAL_PAYOUTS_CSV = "PAYPAL_PAYOUTS_CSV"  # a PayPal Payouts batch file
    WISE_BATCH_CSV = "WISE_BATCH_CSV"  # a Wise batch file (bank transfers to IBANs)
    MERCHANT_WEBHOOK = "MERCHANT_WEBHOOK"  # the merchant pays (on `payout.approved`) and calls markPayoutPaid


class Frequency(enum.Enum):
    WEEKLY = "WEEKLY"  # day: 1 (Monday) to 7
    MONTHLY = "MONTHLY"  # day: 1 to 28


class PayoutSettings(Base):
    """A merchant's payout rules; without a row, the defaults."""

    __tablename__ = "payout_settings"

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    cooling_off_hours: Mapped[int] = mapped_column(Integer, default=DEFAULT_COOLING_OFF_HOURS)
    # {"USD": 100000}: a payout of at least this much needs two different approvers
    dual_approval_minimums: Mapped[dict] = mapped_column(JSONType, default=dict)
    # True: every method goes through the merchant's webhook (no batch files)
    merchant_executes_all: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PayoutAccount(Base):
    """Where a customer is paid. Details are encrypted (app.crypto, bound to the row) and
    shown masked; `fingerprint` (keyed hash of the destination) finds the same destination
    at other customers. A change adds a row and supersedes the old one, which payouts
    already requested keep using."""

    __tablename__ = "payout_accounts"
    __table_args__ = (
        Index(
            "uq_payout_accounts_current",
            "customer_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
        Index("ix_payout_accounts_merchant_id_fingerprint", "merchant_id", "fingerprint"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    method: Mapped[str] = mapped_column(String(16))
    custom_type: Mapped[str | None] = mapped_column(String(64))
    details_encrypted: Mapped[str] = mapped_column(Text)
    masked: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    cooling_off_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PayoutSchedule(Base):
    """A program's scheduled payout run: which day, and the minimum balance per currency
    (currencies not listed are not paid by the run)."""

    __tablename__ = "payout_schedules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), unique=True)
    frequency: Mapped[Frequency] = mapped_column(enum_column(Frequency, 16))
    day: Mapped[int] = mapped_column(Integer)
    minimums: Mapped[dict] = mapped_column(JSONType)  # {"USD": 5000}
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PayoutRun(Base):
    """One scheduled run of a program for one period ("2026-11", "2026-W48"): unique, so a
    period is paid once however many workers or retries start it."""

    __tablename__ = "payout_runs"
    __table_args__ = (UniqueConstraint("program_id", "period"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    period: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")  # RUNNING, DONE
    payouts_created: Mapped[int] = mapped_column(Integer, default=0)
    customers_without_account: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PayoutBatch(Base):
    """A provider file's worth of payouts (one provider, one currency). The file itself is
    built on download from the encrypted accounts; it is never stored."""

    __tablename__ = "payout_batches"
    __table_args__ = (Index("ix_payout_batches_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    provider: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    payout_count: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    last_downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Payout(Base):
    """Money on its way to a customer: set aside in the ledger when requested (AVAILABLE ->
    PAYOUT_PENDING), paid out (-> the program's PROGRAM_PAID_OUT) or returned. The amount,
    currency and destination never change after the request, so an approval binds them."""

    __tablename__ = "payouts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_payouts_merchant_id_status_id", "merchant_id", "status", "id"),
        Index("ix_payouts_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_payouts_batch_id", "batch_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    payout_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_accounts.id"))
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("programs.id"))  # a scheduled run's program
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payout_runs.id"))
    reference: Mapped[str] = mapped_column(String(20))  # on batch files and statements
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[PayoutStatus] = mapped_column(enum_column(PayoutStatus, 20))
    hold_reasons: Mapped[list] = mapped_column(JSONType, default=list)  # [{code, message, evidence, details}]
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    provider: Mapped[str | None] = mapped_column(String(24))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payout_batches.id"))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(500))  # why it was rejected, failed or released
    requested_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    requested_by_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # failed or rejected

    @property
    def payout_status(self) -> PayoutStatus:
        return PayoutStatus(self.status)


class PayoutItem(Base):
    """Which reward lots a payout took, and how much of each: what a statement shows as paid."""

    __tablename__ = "payout_items"
    __table_args__ = (
        Index("ix_payout_items_payout_id", "payout_id"),
        Index("ix_payout_items_reward_id", "reward_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    payout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payouts.id"))
    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    amount: Mapped[int] = mapped_column(BigInteger)


class PayoutApproval(Base):
    """One admin's approval of one payout (two for payouts above the merchant's minimum)."""

    __tablename__ = "payout_approvals"
    __table_args__ = (UniqueConstraint("payout_id", "admin_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    payout_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payouts.id"))
    admin_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("admins.id"))
    session_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
