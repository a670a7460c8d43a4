"""Admin sessions: `login` gives a short-lived token sent as `Authorization: Bearer sess_...`.

A session ends at `expires_at` (ADMIN_SESSION_MINUTES after login), after ADMIN_IDLE_MINUTES
unused, at logout, or when revoked (by its admin, an OWNER, a password change or disabling
the admin). Tokens are 256-bit random strings stored as SHA-256, like API keys.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.config import Settings
from app.db import authenticating, changed_rows, scope_to_merchant, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants import audit, passwords
from app.merchants.models import Admin, AdminRole, AdminSession, AdminStatus
from app.merchants.service import Caller, hash_key

logger = logging.getLogger("app.merchants")

PREFIX = "sess_"
MAX_TOKEN_LENGTH = 100
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
MAX_SAME_EMAIL = 10  # admins with one email (at several merchants) checked by one login


@dataclass(frozen=True)
class IssuedSession:
    """A new session: the only moment its token exists in plain text."""

    admin: Admin
    admin_session: AdminSession
    token: str


async def login(
    session: AsyncSession,
    *,
    settings: Settings,
    email: str,
    password: str,
    merchant_id: uuid.UUID | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> IssuedSession:
    """The same answer for an unknown email and a wrong password, in the same time. An email
    used at several merchants needs `merchantId` only once the password matched at more
    than one of them."""
    email = validation.text(email, "email", 320) or ""
    query = select(Admin).where(Admin.email == email.lower(), Admin.status == AdminStatus.ACTIVE)
    if merchant_id is not None:
        query = query.where(Admin.merchant_id == merchant_id)
    async with authenticating(session):  # before the merchant is known (row-level security)
        candidates = list((await session.scalars(query.order_by(Admin.id).limit(MAX_SAME_EMAIL))).all())
    matched: list[tuple[Admin, bool]] = []
    tried: list[Admin | None] = [*candidates] or [None]  # none: verify spends the time anyway
    for admin in tried:
        ok, rehash = await passwords.verify(settings, admin.password_hash if admin else None, password or "")
        if ok and admin is not None:
            matched.append((admin, rehash))
    if not matched:
        logger.info("admin login refused", extra={"admins": [str(a.id) for a in candidates]})
        raise DomainError(None, ErrorCode.INVALID_CREDENTIALS, "wrong email or password")
    if len(matched) > 1:
        raise DomainError("merchantId", ErrorCode.MERCHANT_REQUIRED, "this login works at several merchants: name one")
    admin, rehash = matched[0]
    await scope_to_merchant(session, admin.merchant_id)
    if rehash:
        admin.password_hash = await passwords.hash_password(settings, password)
    now = utcnow()
    token = PREFIX + secrets.token_urlsafe(32)
    admin_session = AdminSession(
        merchant_id=admin.merchant_id,
        admin_id=admin.id,
        token_hash=hash_key(token),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.admin_session_minutes),
        last_used_at=now,
        ip=ip[:64] if ip else None,
        user_agent=user_agent[:300] if user_agent else None,
    )
    session.add(admin_session)
    await session.flush()
    await audit.record(
        session,
        merchant_id=admin.merchant_id,
        actor=audit.Actor(admin_id=admin.id, session_id=admin_session.id, ip=ip),
        action="admin.login",
        subject_id=admin_session.id,
        details={"ip": ip},
    )
    return IssuedSession(admin=admin, admin_session=admin_session, token=token)


async def authenticate(session: AsyncSession, *, settings: Settings, token: str, touch: bool = True) -> Caller | None:
    """The admin behind a live session token, or None. With `touch`, records the use (at most
    once a minute): the caller commits that."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    async with authenticating(session):  # before the merchant is known (row-level security)
        row = (
            await session.execute(
                select(AdminSession, Admin)
                .join(Admin, Admin.id == AdminSession.admin_id)
                .where(AdminSession.token_hash == hash_key(token))
            )
        ).first()
    if row is None:
        return None
    admin_session, admin = row
    now = utcnow()
    if (
        admin_session.revoked_at is not None
        or admin_session.expires_at <= now
        or admin_session.last_used_at <= now - timedelta(minutes=settings.admin_idle_minutes)
        or admin.status != AdminStatus.ACTIVE
    ):
        return None
    await scope_to_merchant(session, admin.merchant_id)
    if touch and admin_session.last_used_at <= now - TOUCH_EVERY:
        await session.execute(
            update(AdminSession)
            .where(AdminSession.id == admin_session.id, AdminSession.last_used_at <= now - TOUCH_EVERY)
            .values(last_used_at=now)
        )
    return Caller(
        merchant_id=admin.merchant_id,
        key_id=None,
        kind=None,
        admin_id=admin.id,
        admin_role=admin.admin_role,
        session_id=admin_session.id,
    )


async def list_sessions(
    session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID | None = None, include_ended: bool = False
) -> list[AdminSession]:
    query = select(AdminSession).where(AdminSession.merchant_id == merchant_id)
    if admin_id is not None:
        query = query.where(AdminSession.admin_id == admin_id)
    if not include_ended:
        query = query.where(AdminSession.revoked_at.is_(None), AdminSession.expires_at > utcnow())
    return list((await session.scalars(query.order_by(AdminSession.id.desc()).limit(200))).all())


async def revoke(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    session_id: uuid.UUID,
    actor: audit.Actor,
    actor_role: AdminRole,
    reason: str = "revoked",
) -> AdminSession:
    """An OWNER may end anyone's session; other admins only their own. Idempotent."""
    query = select(AdminSession).where(AdminSession.id == session_id, AdminSession.merchant_id == merchant_id)
    if actor_role is not AdminRole.OWNER:
        query = query.where(AdminSession.admin_id == actor.admin_id)
    admin_session = await session.scalar(query.with_for_update())
    if admin_session is None:
        raise NotFound("id", "session")
    if admin_session.revoked_at is None:
        admin_session.revoked_at = utcnow()
        admin_session.revoked_reason = reason
        await session.flush()
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action=f"admin_session.{reason}",
            subject_id=admin_session.id,
            details={"admin_id": str(admin_session.admin_id)},
        )
    return admin_session


async def revoke_all(session: AsyncSession, *, admin_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None) -> int:
    query = update(AdminSession).where(AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AdminSession.id != keep)
    result = await session.execute(query.values(revoked_at=utcnow(), revoked_reason=reason))
    return changed_rows(result)
