from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, new_id, utcnow


class WidgetSettings(Base):
    """A merchant's widget settings: the browser origins allowed to call the API with its
    publishable key, and the secret its server signs customer ids with (encrypted with
    SECRET_KEY, because verifying an HMAC needs the key itself). After a rotation the
    previous secret keeps verifying until `previous_secret_expires_at`."""

    __tablename__ = "widget_settings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), unique=True)
    allowed_origins: Mapped[list] = mapped_column(JSONType, default=list)  # normalized patterns
    secret_encrypted: Mapped[str | None] = mapped_column(String(200))
    secret_last4: Mapped[str | None] = mapped_column(String(4))
    secret_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProgramWidget(Base):
    """What the share panel shows of a program: texts per locale and colours. Public: anyone
    holding the publishable key may read them, so nothing personal belongs here."""

    __tablename__ = "program_widgets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), unique=True)
    texts: Mapped[dict] = mapped_column(JSONType, default=dict)  # {"en": {"title", "description", "shareMessage"}}
    colors: Mapped[dict] = mapped_column(JSONType, default=dict)  # {"primary", "background", "text"}: "#rrggbb"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
