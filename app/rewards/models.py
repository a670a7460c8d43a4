from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow

POINTS = "POINTS"  # the unit of loyalty points in the ledger (currencies are ISO 4217 codes)


class RewardKind(enum.Enum):
    DISCOUNT = "DISCOUNT"  # a coupon code
    CREDIT = "CREDIT"  # store credit, spendable at checkout
    POINTS = "POINTS"  # loyalty points
    COMMISSION = "COMMISSION"  # cash, paid out through payouts


class Recipient(enum.Enum):
    REFERRER = "REFERRER"
    REFEREE = "REFEREE"
    BOTH = "BOTH"

    def roles(self) -> list[Recipient]:
        return [Recipient.REFERRER, Recipient.REFEREE] if self is Recipient.BOTH else [self]


class RewardStatus(enum.Enum):
    HELD = "HELD"  # waiting for the hold (refund window) to pass, or for a fraud review
    AVAILABLE = "AVAILABLE"  # the customer can use it
    REDEEMED = "REDEEMED"  # fully spent (credit, points, coupon)
    PAID = "PAID"  # commission paid out
    EXPIRED = "EXPIRED"
    VOIDED = "VOIDED"  # cancelled while held: never reached the customer
    REVERSED = "REVERSED"  # clawed back after it was available


class CouponStatus(enum.Enum):
    POOLED = "POOLED"  # uploaded by the merchant, not given to anyone yet
    ISSUED = "ISSUED"
    REDEEMED = "REDEEMED"
    EXPIRED = "EXPIRED"
    VOIDED = "VOIDED"


class AccountType(enum.Enum):
    """Customer accounts hold what a customer has; program accounts are the other side."""

    HELD = "HELD"  # customer: granted, not yet available
    AVAILABLE = "AVAILABLE"  # customer: spendable / payable
    PROGRAM_REWARDS = "PROGRAM_REWARDS"  # program: the cost of rewards granted
    PROGRAM_REDEEMED = "PROGRAM_REDEEMED"  # program: spent at checkout
    PROGRAM_EXPIRED = "PROGRAM_EXPIRED"  # program: expired unused
    PAYOUT_PENDING = "PAYOUT_PENDING"  # customer: set aside for a payout not paid yet (app.payouts)
    PROGRAM_PAID_OUT = "PROGRAM_PAID_OUT"  # program: paid out to customers


class RewardRule(Base):
    """One version of a reward rule. Changing a rule adds a version; rewards keep the
    version they were granted under. `rule_id` is the rule's identity across versions."""

    __tablename__ = "reward_rules"
    __table_args__ = (
        UniqueConstraint("rule_id", "version"),
        Index(
            "uq_reward_rules_current",
            "rule_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
        Index("ix_reward_rules_program_id", "program_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    rule_id: Mapped[uuid.UUID] = mapped_column()
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[Recipient] = mapped_column(enum_column(Recipient, 16))
    kind: Mapped[RewardKind] = mapped_column(enum_column(RewardKind, 16))
    spec: Mapped[dict] = mapped_column(JSONType)  # reward amount and conditions, see rules.RuleSpec
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reward(Base):
    """What one recipient got from one rule version for one action of one referral.

    Unique per (rule version, referral, triggering action, recipient): retries and races
    can never grant twice. A milestone is granted once per (rule, customer, milestone),
    whatever the version.

    Campaign bonuses, lead fees and affiliate sales' commission shares (app.campaigns,
    app.leads, app.partners) are rewards without a rule (`source` CAMPAIGN, LEAD or
    PARTNER_SALE); each has a `grant_key` unique in its merchant, which makes
    it once-only the same way.
    """

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("rule_version_id", "referral_id", "trigger_action_id", "recipient"),
        UniqueConstraint("merchant_id", "grant_key"),
        Index(
            "uq_rewards_milestone",
            "rule_id",
            "customer_id",
            "milestone",
            unique=True,
            postgresql_where=text("milestone IS NOT NULL"),
            sqlite_where=text("milestone IS NOT NULL"),
        ),
        Index("ix_rewards_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_rewards_referral_id", "referral_id"),
        Index("ix_rewards_trigger_action_id", "trigger_action_id"),
        Index("ix_rewards_status_hold_until", "status", "hold_until"),
        Index("ix_rewards_status_clearance_due_at", "status", "clearance_due_at"),
        Index("ix_rewards_status_expires_at", "status", "expires_at"),
        Index("ix_rewards_rule_id_customer_id_created_at", "rule_id", "customer_id", "created_at"),
        Index("ix_rewards_program_id_created_at", "program_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    # None for rewards without a rule (campaigns, leads); a campaign's per-sale commission
    # names its sale's referral and action, so a refund of the order takes it back too.
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    rule_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reward_rules.id"))
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    trigger_action_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("actions.id"))
    source: Mapped[str] = mapped_column(String(16), default="RULE", server_default="RULE")  # RULE, CAMPAIGN, LEAD or PARTNER_SALE
    grant_key: Mapped[str | None] = mapped_column(String(255))  # rewards without a rule: what makes them once-only
    recipient: Mapped[Recipient] = mapped_column(enum_column(Recipient, 16))  # REFERRER or REFEREE
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[RewardKind] = mapped_column(enum_column(RewardKind, 16))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units or points; for DISCOUNT the coupon's face value
    unit: Mapped[str] = mapped_column(String(8))  # ISO 4217 currency, POINTS, or PERCENT (DISCOUNT in basis points)
    remaining: Mapped[int] = mapped_column(BigInteger, default=0)  # credit/points not yet spent, expired or reversed
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[RewardStatus] = mapped_column(enum_column(RewardStatus, 16))
    milestone: Mapped[int | None] = mapped_column(Integer)
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_hold: Mapped[bool] = mapped_column(Boolean, default=False)  # set by app.fraud while a review is open
    # HELD until its referral is cleared (app.fraud.clearance): screened ALLOW after the evidence the program requires
    clearance_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    clearance_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # QUIET_DAYS: screened for clearance from then on
    leaked_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # spent before a fraud flag took it back: not recovered
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    awaiting_coupon: Mapped[bool] = mapped_column(Boolean, default=False)  # the coupon pool ran dry
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # redeemed, paid, expired, voided or reversed
    end_reason: Mapped[str | None] = mapped_column(String(200))


class CouponPool(Base):
    """Codes a merchant uploads (e.g. from its shop system) for DISCOUNT rewards."""

    __tablename__ = "coupon_pools"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str] = mapped_column(String(200))
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("merchant_id", "code"),
        Index("ix_coupons_merchant_id_lookup_key", "merchant_id", "lookup_key"),
        Index("ix_coupons_pool_id_status", "pool_id", "status"),
        Index("ix_coupons_status_expires_at", "status", "expires_at"),
        Index("ix_coupons_reward_id", "reward_id"),
        Index("ix_coupons_merchant_id_redeemed_at", "merchant_id", "redeemed_at"),  # analytics
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    pool_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("coupon_pools.id"))
    reward_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rewards.id"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    code: Mapped[str] = mapped_column(String(64))
    lookup_key: Mapped[str | None] = mapped_column(String(64))  # app.text.code_key: what a typed code finds it by
    status: Mapped[CouponStatus] = mapped_column(enum_column(CouponStatus, 16))
    percent_off_bps: Mapped[int | None] = mapped_column(Integer)  # 1500 = 15 %
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    min_order_amount: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_order_id: Mapped[str | None] = mapped_column(String(255))
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the coupon took off the order, when the order's amount and currency were reported at
    # redemption (a percentage's cost is known only then): analytics count it as the coupon's cost.
    redeemed_discount: Mapped[int | None] = mapped_column(BigInteger)
    redeemed_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerAccount(Base):
    """A balance in one unit. `balance` is a cache of the sum of its entries, updated in the
    same transaction; `referral ledger verify` and the tests check it against the entries."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("merchant_id", "owner_id", "kind", "account_type", "unit"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    owner_type: Mapped[str] = mapped_column(String(16))  # CUSTOMER or PROGRAM
    owner_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[RewardKind] = mapped_column(enum_column(RewardKind, 16))  # CREDIT, POINTS or COMMISSION
    account_type: Mapped[AccountType] = mapped_column(enum_column(AccountType, 24))
    unit: Mapped[str] = mapped_column(String(8))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerTransaction(Base):
    """A set of entries that sums to zero per unit. Append-only."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_ledger_transactions_reward_id", "reward_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    # GRANT, RELEASE, REDEEM, VOID, REVERSAL, EXPIRY; payouts: PAYOUT, PAYOUT_RETURN, PAYOUT_PAID, PAYOUT_REVERSAL
    kind: Mapped[str] = mapped_column(String(16))
    reward_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rewards.id"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(255))  # e.g. the order id of a redemption
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account_id", "account_id"),
        Index("ix_ledger_entries_transaction_id", "transaction_id"),
        Index("ix_ledger_entries_account_id_created_at", "account_id", "created_at"),  # analytics: a program's cost per day
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed
    unit: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
