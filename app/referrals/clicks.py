"""Clicks on referral links, reported by the widget with a publishable key."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Uuid, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import UTCDateTime, attach, dialect_of, insert_one, new_id, table_of, utcnow
from app.errors import DomainError, ErrorCode
from app.personal import lookup_hash
from app.referrals import codes
from app.referrals.models import MAX_CLOCK_SKEW, Click, ProgramStatus, ReferralCode
from app.tenancy import merchant_is

# A reload or a second tab within this time is the same visit, not a new click.
REPEAT_CLICK_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class ClickContext:
    """What the HTTP layer knows about the visitor."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class TrackedClick:
    click: Click
    referral_code: ReferralCode
    repeated: bool


def share_channel(value: str | None) -> str | None:
    """A share channel as analytics group by it: lower-case letters, digits, '-' and '_'."""
    value = validation.text(value, "channel", 32)
    if value is None:
        return None
    value = value.strip().lower()
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", value):
        raise DomainError("channel", ErrorCode.INVALID_INPUT, "a channel is letters, digits, '-' or '_' (e.g. whatsapp)")
    return value


MAX_SUB_ID_LENGTH = 64


def _sub_id(value: str | None) -> str | None:
    """The affiliate's tag on a link (`?sub=newsletter`): up to 64 printable characters, no
    spaces or control characters (it is shown in reports and exported as it is)."""
    value = validation.text(value, "subId", MAX_SUB_ID_LENGTH)
    if value is None or value == "":
        return None
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise DomainError("subId", ErrorCode.INVALID_INPUT, "a sub-id is printable characters without spaces (e.g. newsletter)")
    return value


MAX_BACKDATE = timedelta(days=30)  # how far back an imported click may be dated


async def track_click(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    code: str,
    device_id: str | None,
    landing_url: str | None,
    context: ClickContext,
    device_fingerprint: str | None = None,
    channel: str | None = None,
    occurred_at: datetime | None = None,
    sub_id: str | None = None,
) -> TrackedClick:
    """A visit through a referral link. `occurred_at` (imports of past clicks) is bounded: not in
    the future, at most MAX_BACKDATE back; clicks count in the referrer's velocity at their time."""
    code = validation.required_text(code, "code", 64)
    channel = share_channel(channel)
    sub_id = _sub_id(sub_id)
    now = utcnow()
    occurred_at = validation.aware(occurred_at, "occurredAt")
    if occurred_at is not None:
        occurred_at = occurred_at.astimezone(UTC)
        if occurred_at > now + MAX_CLOCK_SKEW:
            raise DomainError("occurredAt", ErrorCode.INVALID_INPUT, "occurredAt is in the future")
        if occurred_at < now - MAX_BACKDATE:
            raise DomainError("occurredAt", ErrorCode.INVALID_INPUT, f"occurredAt is at most {MAX_BACKDATE.days} days back")
    device_id = validation.text(device_id, "deviceId", 255)
    device_fingerprint = validation.text(device_fingerprint, "deviceFingerprint", 64)
    landing_url = validation.http_url(landing_url, "landingUrl")
    now = min(occurred_at, now) if occurred_at is not None else now  # the click's own time from here on
    device_id_hash = lookup_hash(merchant_id, "DEVICE", device_id) if device_id is not None else None
    values = {
        "id": new_id(),
        "merchant_id": merchant_id,
        "attribution_token": "at_" + secrets.token_urlsafe(24),
        "device_id": device_id,
        "device_id_hash": device_id_hash,
        "device_fingerprint": device_fingerprint,
        "ip": context.ip,
        "user_agent": (context.user_agent or "")[:512] or None,
        "landing_url": landing_url,
        "channel": channel,
        "sub_id": sub_id,
        "created_at": now,
    }
    since = now - REPEAT_CLICK_WINDOW
    postgresql = dialect_of(session) == "postgresql"
    # The code and its program (not its owner, whom a click does not need, nor decrypts: the
    # owner's email and name are sealed); on PostgreSQL the click is written in the same statement.
    row = await codes.typed_code_row(
        session,
        _FOUND_AND_WRITTEN if postgresql else codes.CODE_WITH_PROGRAM,
        merchant_id,
        code,
        {**values, "since": since} if postgresql else None,
    )
    if row is None:
        raise DomainError("code", ErrorCode.CODE_NOT_FOUND, "no such referral code")
    referral_code, program = codes.CODE_AND_PROGRAM.objects(session, row)
    if not referral_code.active:
        raise DomainError("code", ErrorCode.CODE_INACTIVE, "this referral code is no longer active")
    if program.program_status is not ProgramStatus.ACTIVE:
        raise DomainError("code", ErrorCode.PROGRAM_NOT_ACTIVE, "this referral program is not running")
    values["program_id"], values["code_id"] = program.id, referral_code.id
    if postgresql:  # written with the expiry PostgreSQL added, or NULL: not written
        values["expires_at"] = row[-1]
        written = row[-1] is not None
    else:
        values["expires_at"] = now + timedelta(days=program.attribution_window_days)
        if device_id is None:
            return TrackedClick(click=await insert_one(session, Click, values), referral_code=referral_code, repeated=False)
        # one statement: the click, unless the same device clicked the code within the window
        written = await session.scalar(_INSERT_UNLESS_RECENT, {**values, "since": since}) is not None
    if written:
        return TrackedClick(click=attach(session, Click, values), referral_code=referral_code, repeated=False)
    repeated = await session.scalar(_MOST_RECENT, {"code_id": referral_code.id, "device_id_hash": device_id_hash, "since": since})
    assert repeated is not None  # the click the insert did not repeat (a click without a device is always written)
    return TrackedClick(click=repeated, referral_code=referral_code, repeated=True)


_CLICK_COLUMNS = (
    "id",
    "merchant_id",
    "program_id",
    "code_id",
    "attribution_token",
    "device_id",
    "device_id_hash",
    "device_fingerprint",
    "ip",
    "user_agent",
    "landing_url",
    "channel",
    "sub_id",
    "created_at",
    "expires_at",
)
_RECENT = select(Click).where(
    Click.code_id == bindparam("code_id"),
    Click.device_id_hash == bindparam("device_id_hash"),
    Click.created_at > bindparam("since", type_=UTCDateTime()),
)
# Built once (building it costs more than running it): the parameters are the click's values,
# the id comes back when the click was written (then `attach` makes it a Click without a read).
_CLICKS = table_of(Click)
_INSERT_UNLESS_RECENT = (
    _CLICKS.insert()
    .from_select(
        list(_CLICK_COLUMNS),
        select(*[bindparam(k, type_=_CLICKS.c[k].type) for k in _CLICK_COLUMNS]).where(~_RECENT.exists()),
    )
    .returning(_CLICKS.c.id)
)
_MOST_RECENT = _RECENT.order_by(Click.id.desc()).limit(1)


def _found_and_written(lookup: Select[Any]) -> Select[Any]:
    """PostgreSQL: the code and its program as `lookup` finds them, and in the same statement the
    click, written when both are active and the device did not click the code within the window.
    The row is the lookup's columns, then the click's expiry (NULL when none was written)."""
    found = lookup.cte("found")
    code_id, program_id, window_days = found.c.m0_id, found.c.m1_id, found.c.m1_attribution_window_days
    created_at = bindparam("created_at", type_=_CLICKS.c.created_at.type)
    from_lookup = {
        "program_id": program_id,
        "code_id": code_id,
        # In hours, not days: a day added in a server time zone with summer time can be 23 or 25 hours.
        "expires_at": created_at + func.make_interval(0, 0, 0, 0, window_days * 24),
    }
    recent = select(_CLICKS.c.id).where(
        merchant_is(_CLICKS, bindparam("merchant_id", type_=Uuid()), use_index=False),
        _CLICKS.c.code_id == code_id,
        _CLICKS.c.device_id_hash == bindparam("device_id_hash"),
        _CLICKS.c.created_at > bindparam("since", type_=UTCDateTime()),
    )
    written = (
        _CLICKS.insert()
        .from_select(
            list(_CLICK_COLUMNS),
            select(*[from_lookup.get(k, bindparam(k, type_=_CLICKS.c[k].type)) for k in _CLICK_COLUMNS]).where(
                found.c.m0_active, found.c.m1_status == ProgramStatus.ACTIVE, ~recent.exists()
            ),
        )
        .returning(_CLICKS.c.expires_at)
        .cte("written")
    )
    return select(*found.c, written.c.expires_at).select_from(found.outerjoin(written, true()))


_FOUND_AND_WRITTEN = codes.CODE_WITH_PROGRAM.around(_found_and_written)


async def find_click_by_token(session: AsyncSession, *, merchant_id: uuid.UUID, token: str) -> Click | None:
    if len(token) > 64:
        return None
    return await session.scalar(select(Click).where(Click.attribution_token == token, Click.merchant_id == merchant_id))
