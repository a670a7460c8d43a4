"""A merchant's widget settings (allowed origins, the customer-signing secret) and each
program's widget texts and colours."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto, validation
from app.config import Settings
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode
from app.merchants import audit
from app.merchants import service as merchants
from app.merchants.models import ApiKeyKind
from app.referrals import programs
from app.referrals.models import Program
from app.widget import identity, origins
from app.widget.models import ProgramWidget, WidgetSettings

MAX_LOCALES = 30
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


async def _locked(session: AsyncSession, model: Any, unique: str, **values: Any) -> Any:
    """The row of `model` whose `unique` column has the given value, created if missing, locked
    for this transaction (two concurrent first writes make one row)."""
    now = utcnow()
    defaults = {"id": new_id(), "updated_at": now, **({"created_at": now} if hasattr(model, "created_at") else {})}
    await session.execute(insert_ignoring_conflicts(session, model, [unique]).values(**defaults, **values))
    return await session.scalar(
        select(model).where(getattr(model, unique) == values[unique]).with_for_update().execution_options(populate_existing=True)
    )


async def get_settings(session: AsyncSession, *, merchant_id: uuid.UUID) -> WidgetSettings | None:
    return await session.scalar(select(WidgetSettings).where(WidgetSettings.merchant_id == merchant_id))


async def set_allowed_origins(
    session: AsyncSession, *, merchant_id: uuid.UUID, origins_given: list[str], production: bool, actor: audit.Actor
) -> WidgetSettings:
    """Replace the list of browser origins allowed to call the API with the publishable key."""
    patterns = origins.normalize_patterns(origins_given, "origins", production=production)
    settings = await _locked(session, WidgetSettings, "merchant_id", merchant_id=merchant_id, allowed_origins=[])
    if settings.allowed_origins != patterns:
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action="widget.origins_changed",
            subject_id=settings.id,
            details={"before": settings.allowed_origins, "after": patterns},
        )
        settings.allowed_origins = patterns
        settings.updated_at = utcnow()
    await session.flush()
    return settings


@dataclass(frozen=True)
class RotatedSecret:
    settings: WidgetSettings
    secret: str  # shown once


async def rotate_secret(
    session: AsyncSession, *, merchant_id: uuid.UUID, app_settings: Settings, overlap_hours: int, actor: audit.Actor
) -> RotatedSecret:
    """A new customer-signing secret (the first one, or a replacement). The previous one keeps
    verifying for `overlap_hours`, so shop servers can switch without signing out anyone."""
    validation.int_range(overlap_hours, "overlapHours", 0, identity.MAX_OVERLAP_HOURS)
    settings = await _locked(session, WidgetSettings, "merchant_id", merchant_id=merchant_id, allowed_origins=[])
    now, secret = utcnow(), identity.new_secret()
    ring = crypto.keyring(app_settings)
    crypto.rotate(
        settings,
        secret,
        encrypt=lambda value: ring.encrypt(value, context=_secret_context(merchant_id)),
        overlap=timedelta(hours=overlap_hours),
        now=now,
    )
    settings.secret_last4 = secret[-4:]
    settings.secret_created_at = settings.updated_at = now
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="widget.secret_rotated",
        subject_id=settings.id,
        details={"overlap_hours": overlap_hours, "last4": secret[-4:]},
    )
    await session.flush()
    return RotatedSecret(settings=settings, secret=secret)


async def signing_secrets(session: AsyncSession, *, merchant_id: uuid.UUID, app_settings: Settings) -> list[str]:
    """The secrets a customer signature may be made with now (none before the first rotation)."""
    settings = await get_settings(session, merchant_id=merchant_id)
    if settings is None:
        return []
    ring = crypto.keyring(app_settings)
    return crypto.valid_secrets(
        settings, decrypt=lambda value: ring.decrypt(value, context=_secret_context(merchant_id)), now=utcnow()
    )


def _secret_context(merchant_id: uuid.UUID) -> str:
    """What a widget secret's ciphertext is bound to (app.crypto): this merchant's settings."""
    return f"widget_secret:{merchant_id}"


async def browser_origins(session: AsyncSession, *, publishable_key: str) -> list[str] | None:
    """The origin patterns of the merchant behind an active publishable key; None when the key
    is not an active publishable key. Authenticating the key first scopes the session to its
    merchant (PostgreSQL row-level security), then one indexed read of its settings."""
    if not publishable_key.startswith(ApiKeyKind.PUBLISHABLE.prefix) or len(publishable_key) > 64:
        return None
    caller = await merchants.authenticate(session, plaintext=publishable_key)
    if caller is None or caller.kind is not ApiKeyKind.PUBLISHABLE:
        return None
    allowed = await session.scalar(select(WidgetSettings.allowed_origins).where(WidgetSettings.merchant_id == caller.merchant_id))
    return list(allowed or [])


# ---------------------------------------------------------------------------------------------
# What the panel shows of a program


@dataclass(frozen=True)
class WidgetText:
    locale: str
    title: str | None = None
    description: str | None = None
    share_message: str | None = None


@dataclass(frozen=True)
class WidgetColors:
    primary: str | None = None  # buttons and links
    background: str | None = None
    text: str | None = None


def _validated_texts(texts: list[WidgetText]) -> dict[str, dict[str, str]]:
    if len(texts) > MAX_LOCALES:
        raise DomainError("texts", ErrorCode.TOO_MANY, f"at most {MAX_LOCALES} locales")
    stored: dict[str, dict[str, str]] = {}
    for index, text in enumerate(texts):
        field = f"texts[{index}]"
        locale = validation.required_text(text.locale, f"{field}.locale", 35)
        if not _LOCALE.match(locale):
            raise DomainError(
                f"{field}.locale", ErrorCode.INVALID_INPUT, "a locale is a language tag such as en, ar, fa or pt-BR"
            )
        if locale in stored:
            raise DomainError(f"{field}.locale", ErrorCode.INVALID_INPUT, f"{locale} is given twice")
        values = {
            "title": validation.text(text.title, f"{field}.title", 80),
            "description": validation.text(text.description, f"{field}.description", 300),
            "shareMessage": validation.text(text.share_message, f"{field}.shareMessage", 280),
        }
        stored[locale] = {name: value for name, value in values.items() if value is not None}
    return stored


def _validated_colors(colors: WidgetColors) -> dict[str, str]:
    stored = {}
    for name in ("primary", "background", "text"):
        value = getattr(colors, name)
        if value is None:
            continue
        if not _COLOR.match(value):
            raise DomainError(f"colors.{name}", ErrorCode.INVALID_INPUT, "a colour is #rgb or #rrggbb")
        stored[name] = value.lower()
    return stored


async def set_program_widget(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, texts: list[WidgetText], colors: WidgetColors
) -> tuple[Program, ProgramWidget]:
    """Replace the program's widget texts and colours (public: the publishable key reads them)."""
    stored_texts, stored_colors = _validated_texts(texts), _validated_colors(colors)
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    widget = await _locked(
        session, ProgramWidget, "program_id", program_id=program_id, merchant_id=merchant_id, texts={}, colors={}
    )
    widget.texts, widget.colors, widget.updated_at = stored_texts, stored_colors, utcnow()
    await session.flush()
    return program, widget


async def get_program_widget(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> ProgramWidget | None:
    return await session.scalar(
        select(ProgramWidget).where(ProgramWidget.program_id == program_id, ProgramWidget.merchant_id == merchant_id)
    )


async def program_with_widget(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID
) -> tuple[Program, ProgramWidget | None]:
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    return program, await get_program_widget(session, merchant_id=merchant_id, program_id=program.id)
