"""Campaigns and contests over a program's referrers, and the program's promotion rules."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow


class CampaignKind(enum.Enum):
    THRESHOLD_BONUS = "THRESHOLD_BONUS"  # a fixed bonus once a referrer reaches N qualified sales
    RATE_BOOST = "RATE_BOOST"  # extra commission on sales of a category
    TIERED_RATE = "TIERED_RATE"  # commission by tier of the referrer's sales count, topped up at each crossing
    CONTEST = "CONTEST"  # prizes for the top N referrers by qualified sales


class CampaignStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"  # counts nothing more; what was granted stays


class Campaign(Base):
    """A campaign of one program over [starts_at, ends_at) (UTC instants of the merchant's
    local dates). `spec` holds the kind's parameters (see app.campaigns.service.CampaignSpec)."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_merchant_id_program_id", "merchant_id", "program_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(enum_column(CampaignKind, 24))
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus, 16), default=CampaignStatus.ACTIVE)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    time_zone: Mapped[str] = mapped_column(String(64))  # the merchant's, when the period was set
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # contests: the standing is final
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignProgress(Base):
    """One referrer's live count in one campaign. Its row is the lock that serialises the
    referrer's sales and refunds in the campaign, so thresholds and tiers are crossed once."""

    __tablename__ = "campaign_progress"
    __table_args__ = (
        UniqueConstraint("campaign_id", "referrer_id"),
        Index("ix_campaign_progress_campaign_id_sales", "campaign_id", "sales"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    sales: Mapped[int] = mapped_column(Integer, default=0)  # qualified sales counted, less refunded ones
    sales_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # their total, in the campaign's currency
    commission: Mapped[int] = mapped_column(BigInteger, default=0)  # TIERED_RATE: granted so far, adjustments included
    tier: Mapped[int] = mapped_column(Integer, default=0)  # TIERED_RATE: the highest tier index reached
    last_sale_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # contests: the later, the lower among equals


class CampaignSale(Base):
    """A qualified sale counted in a campaign (once: unique per campaign and action)."""

    __tablename__ = "campaign_sales"
    __table_args__ = (
        UniqueConstraint("campaign_id", "action_id"),
        Index("ix_campaign_sales_merchant_id_order_id", "merchant_id", "order_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("actions.id"))
    order_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # left the count


class ContestStanding(Base):
    """A contest's final standing, written once when it is finalized."""

    __tablename__ = "contest_standings"
    __table_args__ = (UniqueConstraint("campaign_id", "referrer_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    rank: Mapped[int] = mapped_column(Integer)
    sales: Mapped[int] = mapped_column(Integer)
    prize_reward_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rewards.id"))


class PromotionRules(Base):
    """One version of a program's promotion rules (what referrers may and may not do to
    promote it). Clauses have ids a reviewer can cite when rejecting."""

    __tablename__ = "promotion_rules"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    clauses: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{"id": "no-brand-bidding", "text": "..."}]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromotionRulesAcceptance(Base):
    __tablename__ = "promotion_rules_acceptances"
    __table_args__ = (UniqueConstraint("program_id", "customer_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    version: Mapped[int] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(16))  # WIDGET (signed customer session) or API (secret key)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
