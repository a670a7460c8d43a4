from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, enum_column, new_id, utcnow

DEFAULT_RETENTION_MONTHS = 13


class PrivacySettings(Base):
    """A merchant's retention period; without a row, DEFAULT_RETENTION_MONTHS. The retention
    job notes how far it has coarsened (`retention_applied_through`), so each run only looks at
    what aged since the last one."""

    __tablename__ = "privacy_settings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), unique=True)
    retention_months: Mapped[int] = mapped_column(Integer, default=DEFAULT_RETENTION_MONTHS)
    retention_applied_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExportStatus(enum.Enum):
    PENDING = "PENDING"  # the job has not built it yet
    READY = "READY"  # built; downloadable once through the signed link until it expires
    DOWNLOADED = "DOWNLOADED"  # downloaded: the document is deleted
    EXPIRED = "EXPIRED"  # not downloaded in time, or the customer was erased: the document is deleted


class CustomerDataExport(Base):
    """Everything stored about a customer as one JSON document, built by a job
    (`privacy.export`), kept encrypted until it is downloaded once or expires."""

    __tablename__ = "customer_data_exports"
    __table_args__ = (Index("ix_customer_data_exports_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[ExportStatus] = mapped_column(enum_column(ExportStatus, 16), default=ExportStatus.PENDING)
    document_encrypted: Mapped[str | None] = mapped_column(Text)  # app.crypto.Keyring, bound to the export
    document_bytes: Mapped[int | None] = mapped_column(Integer)
    requested_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerErasure(Base):
    """A customer's erasure: who, when, why, and what it changed. Found again by the keyed hash
    of the external id the merchant knew them by, so erasing again answers the same."""

    __tablename__ = "customer_erasures"
    __table_args__ = (Index("ix_customer_erasures_merchant_id_external_id_hash", "merchant_id", "external_id_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), unique=True)
    external_id_hash: Mapped[str] = mapped_column(String(64))  # app.personal.lookup_hash(merchant, CUSTOMER, id)
    pseudonym: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    erased_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changes: Mapped[dict] = mapped_column(JSONType)  # {"actions": 3, "fraud_decisions": 2, ...}
