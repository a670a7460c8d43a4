from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow
from app.personal import Encrypted, EncryptedJSON, Sealed

QUALIFYING_TYPES = frozenset({"PURCHASE", "SUBSCRIPTION_STARTED"})  # qualify a referral
REVERSING_TYPES = frozenset({"REFUND", "CANCELLATION"})  # take back what an order earned; never start a referral
MAX_CLOCK_SKEW = timedelta(minutes=5)  # an action may say it occurred at most this far after we record it


class ProgramStatus(enum.Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class ProgramType(enum.Enum):
    CUSTOMER_REFERRAL = "CUSTOMER_REFERRAL"  # customers refer friends (the default)
    AFFILIATE = "AFFILIATE"  # approved partners earn commission on sales through their links (app.partners)


class CodeStyle(enum.Enum):
    RANDOM = "RANDOM"  # K7M3QX9P
    NAME = "NAME"  # JANE-K7M3


class ReferralSource(enum.Enum):
    LINK = "LINK"  # a tracked click's attribution token
    CODE = "CODE"  # a code typed in at signup or checkout
    CLAIM = "CLAIM"  # claimed after signing up, within the program's claim window


class ReferralStatus(enum.Enum):
    PENDING = "PENDING"  # referee signed up, no qualifying purchase yet
    QUALIFIED = "QUALIFIED"  # referee made a purchase or started a subscription
    REJECTED = "REJECTED"  # refused by a fraud decision (set by app.fraud)


class AttributionStatus(enum.Enum):
    """What happened to the referral evidence an action carried. The action is recorded
    whatever this says: a bad code never loses the merchant's purchase."""

    NONE = "NONE"
    REFERRAL_CREATED = "REFERRAL_CREATED"
    LINKED_TO_REFERRAL = "LINKED_TO_REFERRAL"
    UNKNOWN_CODE = "UNKNOWN_CODE"
    INACTIVE_CODE = "INACTIVE_CODE"
    UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
    EXPIRED_TOKEN = "EXPIRED_TOKEN"
    PROGRAM_NOT_ACTIVE = "PROGRAM_NOT_ACTIVE"
    SELF_REFERRAL = "SELF_REFERRAL"
    FRAUD_BLOCKED = "FRAUD_BLOCKED"  # the referral was created REJECTED by a fraud decision
    ALREADY_REFERRED = "ALREADY_REFERRED"
    EXISTING_CUSTOMER = "EXISTING_CUSTOMER"
    NOT_ELIGIBLE_ACTION = "NOT_ELIGIBLE_ACTION"


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[ProgramStatus] = mapped_column(enum_column(ProgramStatus, 16), default=ProgramStatus.DRAFT)
    attribution_window_days: Mapped[int] = mapped_column(Integer, default=30)
    claim_window_days: Mapped[int] = mapped_column(Integer, default=14)
    share_url_template: Mapped[str | None] = mapped_column(String(2000))
    code_style: Mapped[CodeStyle] = mapped_column(enum_column(CodeStyle, 16), default=CodeStyle.RANDOM)
    code_length: Mapped[int] = mapped_column(Integer, default=8)
    # Fixed at creation: the cached reward rules of a program depend on it (app.rewards.rules).
    program_type: Mapped[ProgramType] = mapped_column(
        enum_column(ProgramType, 24), default=ProgramType.CUSTOMER_REFERRAL, server_default=ProgramType.CUSTOMER_REFERRAL.value
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def program_status(self) -> ProgramStatus:
        return ProgramStatus(self.status)

    @property
    def is_affiliate(self) -> bool:
        return self.program_type == ProgramType.AFFILIATE


class Customer(Base):
    """A shopper, identified by the merchant's own id (`external_id`). Email, name and metadata
    are encrypted at rest (app.personal). An erased customer (app.privacy.erasure) keeps its
    row, under a pseudonym as `external_id`, so its referrals, rewards and ledger still add up."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("merchant_id", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(Encrypted("customers.email"))
    email_canonical: Mapped[str | None] = mapped_column(Encrypted("customers.email_canonical"))
    name: Mapped[str | None] = mapped_column(Encrypted("customers.name"))  # exactly as given
    metadata_: Mapped[dict | None] = mapped_column("metadata", EncryptedJSON("customers.metadata"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerRecord(NamedTuple):
    """A customer as shown (GraphQL's Customer), read without an ORM object (`db.merchant_records`);
    its personal columns sealed, opened only if the query shows them."""

    id: uuid.UUID
    external_id: str
    email: Sealed | None
    email_canonical: Sealed | None
    name: Sealed | None
    metadata_: Sealed | None
    created_at: datetime
    erased_at: datetime | None


class ReferralCode(Base):
    __tablename__ = "referral_codes"
    __table_args__ = (
        UniqueConstraint("merchant_id", "code"),
        # Look-alikes (case, digits in any script, separators, Arabic letter variants) are one code.
        UniqueConstraint("merchant_id", "lookup_key"),
        # One active code per customer and program: concurrent issue calls cannot create two.
        Index(
            "uq_referral_codes_active_per_customer",
            "program_id",
            "customer_id",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
        Index("ix_referral_codes_customer_id", "customer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    code: Mapped[str] = mapped_column(String(32))  # as shown: Latin upper-case, Arabic/Persian as registered
    lookup_key: Mapped[str | None] = mapped_column(String(64))  # app.text.code_key; None: a pre-0009 duplicate
    is_vanity: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Click(Base):
    """A visit through a referral link. Its token ties a later signup to the referrer. The
    visitor's device, network and browser are encrypted; the device is found by its keyed hash.
    After the merchant's retention period they are coarsened (app.privacy.retention)."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_code_id_device_id_hash", "code_id", "device_id_hash"),
        Index("ix_clicks_program_id_created_at", "program_id", "created_at"),  # analytics rollups by day
        Index("ix_clicks_code_id_created_at", "code_id", "created_at"),  # clicks per referrer per hour (fraud velocity)
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_codes.id"))
    attribution_token: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(Encrypted("clicks.device_id"))
    device_id_hash: Mapped[str | None] = mapped_column(String(64))  # app.personal.lookup_hash(merchant, DEVICE, id)
    device_fingerprint: Mapped[str | None] = mapped_column(
        Encrypted("clicks.device_fingerprint")
    )  # the widget's coarse browser hash
    ip: Mapped[str | None] = mapped_column(Encrypted("clicks.ip"))
    user_agent: Mapped[str | None] = mapped_column(Encrypted("clicks.user_agent"))
    landing_url: Mapped[str | None] = mapped_column(Encrypted("clicks.landing_url"))
    channel: Mapped[str | None] = mapped_column(String(32))  # where the link was shared ("whatsapp"), if the widget says
    # The affiliate's own tag on the link (`?ref=CODE&sub=newsletter`); conversions are reported
    # per sub-id through the referral's (or the action's) click.
    sub_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    """Referrer -> referee within one program. A customer is referred at most once per program."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("program_id", "referee_id"),
        Index("ix_referrals_merchant_id_program_id_status", "merchant_id", "program_id", "status", "id"),
        Index("ix_referrals_referrer_id_referred_at", "referrer_id", "referred_at"),
        Index("ix_referrals_referee_id", "referee_id"),
        Index("ix_referrals_program_id_referred_at", "program_id", "referred_at"),  # analytics
        Index("ix_referrals_program_id_qualified_at", "program_id", "qualified_at"),  # analytics
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    referee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    code_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_codes.id"))
    click_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clicks.id"))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[ReferralStatus] = mapped_column(enum_column(ReferralStatus, 16), default=ReferralStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the referee arrived: the time the creating action occurred (or the claim). Fraud
    # velocity windows count on this, so backfilled actions are judged at their own time.
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # app.fraud.clearance: its rewards may be spent


class ReferralRecord(NamedTuple):
    """A referral as shown (GraphQL's Referral), read without an ORM object (`pagination.paginate_where`)."""

    id: uuid.UUID
    program_id: uuid.UUID
    referrer_id: uuid.UUID
    referee_id: uuid.UUID
    code_id: uuid.UUID
    source: str
    status: ReferralStatus
    created_at: datetime
    referred_at: datetime
    qualified_at: datetime | None
    cleared_at: datetime | None


class Action(Base):
    """A qualifying action reported by the merchant's server (signup, purchase, refund...).

    `(merchant_id, idempotency_key)` is unique: a retried call finds the first action and
    compares `request_hash` to tell a retry from a conflicting reuse of the key.
    """

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_actions_customer_id_type_occurred_at", "customer_id", "type", "occurred_at"),
        Index("ix_actions_referral_id", "referral_id"),
        Index("ix_actions_merchant_id_order_id", "merchant_id", "order_id"),
        Index("ix_actions_merchant_id_occurred_at", "merchant_id", "occurred_at"),  # analytics rollups by day
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("programs.id"))
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    type: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attribution_status: Mapped[AttributionStatus] = mapped_column(
        enum_column(AttributionStatus, 32), default=AttributionStatus.NONE
    )
    referral_code: Mapped[str | None] = mapped_column(String(32))
    click_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clicks.id"))
    # Context for fraud checks (app.fraud reads these), encrypted at rest (app.personal).
    device_id: Mapped[str | None] = mapped_column(Encrypted("actions.device_id"))
    device_fingerprint: Mapped[str | None] = mapped_column(Encrypted("actions.device_fingerprint"))
    ip: Mapped[str | None] = mapped_column(Encrypted("actions.ip"))
    user_agent: Mapped[str | None] = mapped_column(Encrypted("actions.user_agent"))
    email: Mapped[str | None] = mapped_column(Encrypted("actions.email"))
    payment_fingerprint: Mapped[str | None] = mapped_column(Encrypted("actions.payment_fingerprint"))
    shipping_address: Mapped[dict | None] = mapped_column(EncryptedJSON("actions.shipping_address"))
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSONType)
    # For REFUND / CANCELLATION naming an order: whether the order was known (None otherwise).
    refund_order_found: Mapped[bool | None] = mapped_column(Boolean)
