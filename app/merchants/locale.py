"""A merchant's locale settings: time zone, calendar and locale of reports, and whether codes
may be written in Arabic script. Read by code registration and the reports; changed by the
merchant (audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import calendars
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode
from app.merchants import audit
from app.merchants.models import LocaleSettings


def defaults(merchant_id: uuid.UUID) -> LocaleSettings:
    return LocaleSettings(
        merchant_id=merchant_id,
        time_zone="UTC",
        calendar=calendars.Calendar.GREGORIAN.value,
        locale="en",
        arabic_script_codes=False,
        unify_teh_marbuta=False,
        updated_at=None,
    )


async def get_settings(session: AsyncSession, *, merchant_id: uuid.UUID) -> LocaleSettings:
    """The merchant's settings, or the defaults (not stored) when it never changed them."""
    stored = await session.scalar(select(LocaleSettings).where(LocaleSettings.merchant_id == merchant_id))
    return stored or defaults(merchant_id)


def locale_name(value: str, field: str = "locale") -> str:
    """A CLDR locale ("fa", "ar-SA", "ar_EG") in its canonical form ("ar_SA")."""
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{value!r} is not a known locale such as en, fa or ar_SA") from None


@dataclass(frozen=True)
class LocaleChange:
    """None leaves a setting as it is."""

    time_zone: str | None = None
    calendar: calendars.Calendar | None = None
    locale: str | None = None
    arabic_script_codes: bool | None = None
    unify_teh_marbuta: bool | None = None


async def set_settings(
    session: AsyncSession, *, merchant_id: uuid.UUID, change: LocaleChange, actor: audit.Actor
) -> LocaleSettings:
    values = {
        "time_zone": calendars.time_zone(change.time_zone).key if change.time_zone is not None else None,
        "calendar": change.calendar.value if change.calendar is not None else None,
        "locale": locale_name(change.locale) if change.locale is not None else None,
        "arabic_script_codes": change.arabic_script_codes,
        "unify_teh_marbuta": change.unify_teh_marbuta,
    }
    await session.execute(
        insert_ignoring_conflicts(session, LocaleSettings, ["merchant_id"]).values(
            {
                **{k: getattr(defaults(merchant_id), k) for k in values},
                "id": new_id(),
                "merchant_id": merchant_id,
                "updated_at": utcnow(),
            }
        )
    )
    settings = await session.scalar(
        select(LocaleSettings)
        .where(LocaleSettings.merchant_id == merchant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert settings is not None
    changed = {k: v for k, v in values.items() if v is not None and getattr(settings, k) != v}
    for name, value in changed.items():
        setattr(settings, name, value)
    if changed:
        settings.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action="locale_settings.changed",
            subject_id=settings.id,
            details=changed,
        )
    return settings
