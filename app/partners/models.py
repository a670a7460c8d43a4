"""Affiliate programs: partners, their groups, commission splits and the sales they were paid for."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow


class PartnerStatus(enum.Enum):
    APPLIED = "APPLIED"  # asked to join (or was invited); earns nothing yet
    ACTIVE = "ACTIVE"  # approved: the only status whose links earn commission
    REJECTED = "REJECTED"
    SUSPENDED = "SUSPENDED"


class SaleStatus(enum.Enum):
    EARNED = "EARNED"  # commission posted to the parties (held until released)
    NOT_EARNED = "NOT_EARNED"  # recorded, no commission: `reason` says why


class NotEarnedReason(enum.Enum):
    NOT_A_PARTNER = "NOT_A_PARTNER"  # the referrer never applied to the program
    PARTNER_APPLIED = "PARTNER_APPLIED"  # not approved yet
    PARTNER_REJECTED = "PARTNER_REJECTED"
    PARTNER_SUSPENDED = "PARTNER_SUSPENDED"
    REFERRAL_REJECTED = "REFERRAL_REJECTED"  # refused by a fraud decision
    NO_AMOUNT = "NO_AMOUNT"  # the action carries no amount and currency
    NO_RATE = "NO_RATE"  # no group rate, split or commission rule gives the affiliate a rate


class ShareRole(enum.Enum):
    AFFILIATE = "AFFILIATE"  # the partner whose link made the sale
    CO_PRODUCER = "CO_PRODUCER"  # a fixed party of the split


class PartnerGroup(Base):
    """A tier of partners ("Gold"); its commission rate overrides the program's default for its members."""

    __tablename__ = "partner_groups"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str] = mapped_column(String(100))
    commission_bps: Mapped[int | None] = mapped_column(Integer)  # None: the program's default applies
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Partner(Base):
    """A customer of the merchant enrolled in one affiliate program. Their referral code is
    their tracking link; only an ACTIVE partner's sales earn commission."""

    __tablename__ = "partners"
    __table_args__ = (
        UniqueConstraint("program_id", "customer_id"),
        Index("ix_partners_merchant_id_program_id_status", "merchant_id", "program_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partner_groups.id"))
    status: Mapped[PartnerStatus] = mapped_column(enum_column(PartnerStatus, 16))
    invited: Mapped[bool] = mapped_column(default=False)  # the merchant invited them (else they applied)
    application_note: Mapped[str | None] = mapped_column(String(1000))  # the partner's own words
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last approve/reject/suspend/reactivate
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PartnerStatusChange(Base):
    """The audit trail of a partner's status: who (API key or admin), when, why."""

    __tablename__ = "partner_status_changes"
    __table_args__ = (Index("ix_partner_status_changes_partner_id", "partner_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partners.id"))
    from_status: Mapped[PartnerStatus | None] = mapped_column(enum_column(PartnerStatus, 16))
    to_status: Mapped[PartnerStatus] = mapped_column(enum_column(PartnerStatus, 16))
    actor: Mapped[str] = mapped_column(String(80))  # "key:<id>", "admin:<id>", or "partner" (signed session)
    reason: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommissionSplit(Base):
    """One version of how a sale's commission is shared: the affiliate's share and fixed
    co-producers', in basis points of the order amount (the rest stays with the merchant).
    Per program (`sku_key` ''), or per product SKU. A change adds a version; sales keep theirs."""

    __tablename__ = "commission_splits"
    __table_args__ = (
        UniqueConstraint("program_id", "sku_key", "version"),
        Index(
            "uq_commission_splits_current",
            "program_id",
            "sku_key",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    sku_key: Mapped[str] = mapped_column(String(100), default="")  # '' for the program's own split
    version: Mapped[int] = mapped_column(Integer)
    affiliate_bps: Mapped[int | None] = mapped_column(Integer)  # None: the affiliate's group or rule rate
    parties: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{"customer_id": str, "share_bps": int}], in order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartnerSale(Base):
    """A purchase in an affiliate program and what it paid: one per action (idempotent)."""

    __tablename__ = "partner_sales"
    __table_args__ = (
        UniqueConstraint("action_id"),
        Index("ix_partner_sales_merchant_id_order_id", "merchant_id", "order_id"),
        Index("ix_partner_sales_affiliate_id_occurred_at", "affiliate_id", "occurred_at"),
        Index("ix_partner_sales_program_id_occurred_at", "program_id", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("actions.id"))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))  # the referrer
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partners.id"))
    code_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_codes.id"))  # the link
    sub_id: Mapped[str | None] = mapped_column(String(64))  # of the click that led to the referral
    order_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # the order, minor units
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[SaleStatus] = mapped_column(enum_column(SaleStatus, 16))
    reason: Mapped[str | None] = mapped_column(String(32))  # NotEarnedReason when NOT_EARNED
    split_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("commission_splits.id"))
    affiliate_bps: Mapped[int] = mapped_column(Integer, default=0)
    commission: Mapped[int] = mapped_column(BigInteger, default=0)  # all parties together
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # of the order, over all refunds
    # The one PARTNER_SALE transaction of sales settled before migration 0017; since then each
    # party's share is its own reward (PartnerSaleShare.reward_id) with its own GRANT: None.
    ledger_transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerSaleShare(Base):
    """One party's part of a sale's commission, and how much of it refunds took back; paid as
    the party's `reward` (a COMMISSION reward without a rule, app.partners.sales)."""

    __tablename__ = "partner_sale_shares"
    __table_args__ = (
        UniqueConstraint("sale_id", "customer_id"),
        Index("ix_partner_sale_shares_customer_id", "customer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    sale_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner_sales.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    role: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)  # the party's place in the split (ties of the remainder rule)
    share_bps: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    unit: Mapped[str] = mapped_column(String(8))
    reward_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rewards.id"))  # None: a share of 0 cents


class PartnerSaleRefund(Base):
    """A refund action applied to a sale: once per (sale, refund action)."""

    __tablename__ = "partner_sale_refunds"
    __table_args__ = (UniqueConstraint("sale_id", "refund_action_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    sale_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner_sales.id"))
    refund_action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("actions.id"))
    refunded_amount: Mapped[int] = mapped_column(BigInteger)  # of the order, this refund
    reversed_commission: Mapped[int] = mapped_column(BigInteger)  # all parties, this refund
    # Before migration 0017 the refund's PARTNER_REVERSAL transaction; since then the refund
    # voids or reverses each share's reward in that reward's own transaction: None.
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
