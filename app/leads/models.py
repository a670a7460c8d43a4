"""Business referrals: a referrer names a company that may become the merchant's client."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, enum_column, new_id, utcnow
from app.personal import Encrypted


class LeadStatus(enum.Enum):
    SUBMITTED = "SUBMITTED"
    CONTACTED = "CONTACTED"
    QUALIFIED = "QUALIFIED"
    WON = "WON"
    LOST = "LOST"


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_merchant_id_program_id_company_domain", "merchant_id", "program_id", "company_domain"),
        Index("ix_leads_merchant_id_program_id_contact_email_hash", "merchant_id", "program_id", "contact_email_hash"),
        Index("ix_leads_referrer_id", "referrer_id"),
        UniqueConstraint("merchant_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus, 16), default=LeadStatus.SUBMITTED)
    # The company is a business, not a person: kept readable (staff search and match it).
    company: Mapped[str] = mapped_column(String(200))
    company_domain: Mapped[str | None] = mapped_column(String(255))  # lower case, no "www."
    # The person to contact is a third party the referrer named: encrypted, found by keyed hash.
    contact_name: Mapped[str | None] = mapped_column(Encrypted("leads.contact_name"))
    contact_email: Mapped[str | None] = mapped_column(Encrypted("leads.contact_email"))  # lower case
    contact_email_hash: Mapped[str | None] = mapped_column(String(64))  # lookup_hash(merchant, "LEAD_EMAIL", email)
    notes: Mapped[str | None] = mapped_column(Encrypted("leads.notes"))  # the referrer's words about the contact
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id"))  # an earlier lead of the same company
    contract_value: Mapped[int | None] = mapped_column(BigInteger)  # given at WON, minor units
    contract_currency: Mapped[str | None] = mapped_column(String(3))
    fee_reward_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rewards.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))  # a retried submission returns the first lead
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeadEvent(Base):
    """One step of a lead, with who made it: the audit trail the merchant and referrer read."""

    __tablename__ = "lead_events"
    __table_args__ = (Index("ix_lead_events_lead_id", "lead_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id"))
    from_status: Mapped[LeadStatus | None] = mapped_column(enum_column(LeadStatus, 16))  # None: submitted
    to_status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus, 16))
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_admin_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_customer_id: Mapped[uuid.UUID | None] = mapped_column()  # the referrer, for a submission from the widget
    notes: Mapped[str | None] = mapped_column(Encrypted("lead_events.notes"))  # about the lead's contact ("called Ada")
    notes_visible_to_referrer: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeadSettings(Base):
    """A program's referral fee for won leads: a fixed amount, or a share of the first
    contract value, held `hold_days` (the existing HELD -> AVAILABLE mechanics)."""

    __tablename__ = "lead_settings"

    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str] = mapped_column(String(16))  # COMMISSION (cash, paid out) or CREDIT
    fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    fee_percent_bps: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    hold_days: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
