from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow
from app.personal import Encrypted


class Outcome(enum.Enum):
    """What a fraud decision does. Ordered: a later check can only make a referral stricter."""

    ALLOW = "ALLOW"  # normal flow
    REVIEW = "REVIEW"  # rewards are created HELD and stay held until a reviewer decides
    BLOCK = "BLOCK"  # the referral is rejected; no reward is created

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @classmethod
    def strictest(cls, *outcomes: Outcome) -> Outcome:
        return max(outcomes, key=lambda o: o.severity, default=cls.ALLOW)


_SEVERITY = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.BLOCK: 2}


class Stage(enum.Enum):
    REFERRAL = "REFERRAL"  # when the referral was created
    REWARD = "REWARD"  # before an action's rewards were granted (new evidence: card, address)
    RELATED = "RELATED"  # another referral's decision named this one (same device farm, ring, burst)
    CLEARANCE = "CLEARANCE"  # the check that clears the referral's rewards (app.fraud.clearance)
    RESCREEN = "RESCREEN"  # new evidence about one of its customers arrived (app.fraud.rescreening)


class ReviewStatus(enum.Enum):
    OPEN = "OPEN"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class ListKind(enum.Enum):
    """Merchant lists. Customer marks are list entries too, so one indexed lookup reads them all."""

    EMAIL = "EMAIL"  # canonical address
    DOMAIN = "DOMAIN"  # and its subdomains
    IP = "IP"  # one address
    IP_RANGE = "IP_RANGE"  # CIDR
    DEVICE = "DEVICE"
    PAYMENT = "PAYMENT"  # payment fingerprint
    TRUSTED_CUSTOMER = "TRUSTED_CUSTOMER"  # value: customer id; see policy.trusted_outcome
    BANNED_CUSTOMER = "BANNED_CUSTOMER"  # value: customer id; every referral of theirs is blocked
    # value: customer id; set by the engine when one of their referrals is flagged (app.fraud.memory)
    REFERRER_UNDER_REVIEW = "REFERRER_UNDER_REVIEW"


class IdentifierKind(enum.Enum):
    DEVICE = "DEVICE"
    PAYMENT = "PAYMENT"
    ADDRESS = "ADDRESS"  # normalized shipping address
    IP = "IP"
    IP_UA = "IP_UA"  # IP and a hash of the user agent: one browser behind one address
    FINGERPRINT = "FINGERPRINT"  # the widget's coarse browser hash (user agent, screen, timezone, language)
    PAYOUT_ACCOUNT = "PAYOUT_ACCOUNT"  # a payout destination's keyed fingerprint (app.payouts.accounts)


class FraudPolicyVersion(Base):
    """One version of a program's fraud policy; a change adds a version. Programs without a
    stored policy use the default one (version 0)."""

    __tablename__ = "fraud_policies"
    __table_args__ = (
        UniqueConstraint("program_id", "version"),
        Index(
            "uq_fraud_policies_current",
            "program_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
            sqlite_where=text("superseded_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSONType)  # see policy.Policy
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FraudReview(Base):
    """A referral waiting for a person. At most one is OPEN per referral; later decisions
    join it. Resolution is recorded here and in the audit log."""

    __tablename__ = "fraud_reviews"
    __table_args__ = (
        Index(
            "uq_fraud_reviews_open_referral",
            "referral_id",
            unique=True,
            postgresql_where=text("status = 'OPEN'"),
            sqlite_where=text("status = 'OPEN'"),
        ),
        Index("ix_fraud_reviews_merchant_id_status_id", "merchant_id", "status", "id"),
        Index("ix_fraud_reviews_referral_id", "referral_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    status: Mapped[ReviewStatus] = mapped_column(enum_column(ReviewStatus, 16), default=ReviewStatus.OPEN)
    score: Mapped[int] = mapped_column(Integer)  # the highest of its decisions
    signals: Mapped[list] = mapped_column(JSONType)  # names of the signals that fired, all decisions
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    resolved_by_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    resolution_note: Mapped[str | None] = mapped_column(String(1000))
    # A rejection may cite the program's promotion rules: {"version": 2, "clauseId": "no-brand-bidding"}
    cited_rule: Mapped[dict | None] = mapped_column(JSONType)


class FraudDecision(Base):
    """One check of one referral, with everything needed to explain it and to re-score it
    under another policy: every observation, the policy version, score and outcome."""

    __tablename__ = "fraud_decisions"
    __table_args__ = (
        Index("ix_fraud_decisions_referral_id", "referral_id"),
        Index("ix_fraud_decisions_review_id", "review_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    action_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("actions.id"))
    review_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("fraud_reviews.id"))
    stage: Mapped[Stage] = mapped_column(enum_column(Stage, 16))
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome, 16))  # after trust and earlier reviews (see adjustments)
    policy_outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome, 16))  # what the policy alone said
    score: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[int] = mapped_column(Integer)
    observations: Mapped[list] = mapped_column(JSONType)  # [{signal, value, evidence, details, fired, weight}]
    adjustments: Mapped[list] = mapped_column(JSONType)  # ["referrer is trusted: REVIEW -> ALLOW", ...]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FraudListEntry(Base):
    __tablename__ = "fraud_list_entries"
    __table_args__ = (UniqueConstraint("merchant_id", "kind", "value"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[ListKind] = mapped_column(enum_column(ListKind, 24))
    value: Mapped[str] = mapped_column(String(320))  # normalized: lower-case, canonical email, network
    note: Mapped[str | None] = mapped_column(String(1000))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerIdentifier(Base):
    """A device, card, address or network a customer was seen with (from their actions and
    the click that brought them). Comparing two customers, or finding everyone seen with a
    device, is one indexed lookup on the value's keyed hash; the value itself is encrypted, and
    gone once the customer is erased (the hash stays: a returning fraudster still matches)."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (
        UniqueConstraint("merchant_id", "kind", "value_hash", "customer_id"),
        Index("ix_customer_identifiers_customer_id", "customer_id"),
        # Who else was behind this IP lately: a carrier's address has thousands of customers.
        Index("ix_customer_identifiers_recent", "merchant_id", "kind", "value_hash", "last_seen_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Encrypted("customer_identifiers.value"))  # None once erased
    value_hash: Mapped[str] = mapped_column(String(64))  # app.personal.lookup_hash(merchant, kind, value)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
