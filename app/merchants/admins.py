"""Merchant admins: the people behind the console, next to the API keys.

An admin is created by an OWNER (over GraphQL) or by the operator (`referral admins create`),
with a one-time setup token that sets the password. Only an admin session can create admins:
a leaked secret key must not be able to mint a FINANCE admin for itself. A merchant always
keeps an active OWNER.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.config import Settings
from app.db import authenticating, scope_to_merchant, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants import audit, passwords, sessions
from app.merchants.models import Admin, AdminRole, AdminStatus
from app.merchants.service import hash_key

SETUP_PREFIX = "setup_"
SETUP_TTL = timedelta(hours=72)


@dataclass(frozen=True)
class IssuedSetup:
    """An admin with a fresh setup token: the only moment the token exists in plain text."""

    admin: Admin
    token: str
    expires_at: datetime


def normalized_email(value: str | None, field: str = "email") -> str:
    email = validation.email(value, field)
    if email is None:
        raise DomainError(field, ErrorCode.REQUIRED, f"{field} is required")
    return email.lower()


def _new_setup(admin: Admin) -> IssuedSetup:
    token = SETUP_PREFIX + secrets.token_urlsafe(32)
    admin.setup_token_hash = hash_key(token)
    admin.setup_expires_at = utcnow() + SETUP_TTL
    return IssuedSetup(admin=admin, token=token, expires_at=admin.setup_expires_at)


async def create_admin(
    session: AsyncSession, *, merchant_id: uuid.UUID, email: str, role: AdminRole, actor: audit.Actor
) -> IssuedSetup:
    email = normalized_email(email)
    taken = await session.scalar(select(Admin.id).where(Admin.merchant_id == merchant_id, Admin.email == email))
    if taken is not None:
        raise DomainError("email", ErrorCode.EMAIL_TAKEN, "this merchant already has an admin with this email")
    admin = Admin(
        merchant_id=merchant_id,
        email=email,
        role=role.value,
        status=AdminStatus.INVITED,
        created_by_admin_id=actor.admin_id,
        created_at=utcnow(),
    )
    issued = _new_setup(admin)
    session.add(admin)
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="admin.created",
        subject_id=admin.id,
        details={"email": email, "role": role.value},
    )
    return issued


async def get_admin(
    session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID, lock: bool = False, field: str = "id"
) -> Admin:
    query = select(Admin).where(Admin.id == admin_id, Admin.merchant_id == merchant_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    admin = await session.scalar(query)
    if admin is None:
        raise NotFound(field, "admin")
    return admin


async def find_by_email(session: AsyncSession, *, merchant_id: uuid.UUID, email: str) -> Admin:
    admin = await session.scalar(select(Admin).where(Admin.merchant_id == merchant_id, Admin.email == normalized_email(email)))
    if admin is None:
        raise NotFound("email", "admin")
    return admin


async def list_admins(session: AsyncSession, *, merchant_id: uuid.UUID) -> list[Admin]:
    return list((await session.scalars(select(Admin).where(Admin.merchant_id == merchant_id).order_by(Admin.id))).all())


async def reissue_setup(session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID, actor: audit.Actor) -> IssuedSetup:
    """A new setup token (a forgotten password): the old password keeps working until it is used."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    if admin.status == AdminStatus.DISABLED:
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, "this admin is disabled")
    issued = _new_setup(admin)
    await session.flush()
    await audit.record(session, merchant_id=merchant_id, actor=actor, action="admin.setup_reissued", subject_id=admin.id)
    return issued


async def complete_setup(session: AsyncSession, *, settings: Settings, token: str, password: str) -> Admin:
    """Set the password with the one-time token; the token is spent, and sessions opened
    with an earlier password end."""
    token = validation.required_text(token, "token", 200)
    async with authenticating(session):  # the token names the admin, and so the merchant
        found = (
            await session.execute(select(Admin.id, Admin.merchant_id).where(Admin.setup_token_hash == hash_key(token)))
        ).first()
    admin = None
    if found is not None:
        await scope_to_merchant(session, found.merchant_id)
        admin = await session.scalar(
            select(Admin).where(Admin.id == found.id, Admin.setup_token_hash == hash_key(token)).with_for_update()
        )
    if (
        admin is None
        or admin.setup_expires_at is None
        or admin.setup_expires_at <= utcnow()
        or admin.status == AdminStatus.DISABLED
    ):
        raise DomainError("token", ErrorCode.INVALID_TOKEN, "this setup token is unknown, used or expired")
    passwords.check_new(password, email=admin.email)
    admin.password_hash = await passwords.hash_password(settings, password)
    admin.password_changed_at = utcnow()
    admin.setup_token_hash = None
    admin.setup_expires_at = None
    admin.status = AdminStatus.ACTIVE
    await session.flush()
    await sessions.revoke_all(session, admin_id=admin.id, reason="password_set")
    await audit.record(
        session,
        merchant_id=admin.merchant_id,
        actor=audit.Actor(admin_id=admin.id),
        action="admin.password_set",
        subject_id=admin.id,
    )
    return admin


async def change_password(
    session: AsyncSession,
    *,
    settings: Settings,
    merchant_id: uuid.UUID,
    admin_id: uuid.UUID,
    current: str,
    new: str,
    actor: audit.Actor,
) -> Admin:
    """Other sessions end; the one that made the change stays."""
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    matches, _ = await passwords.verify(settings, admin.password_hash, current or "")
    if not matches:
        raise DomainError("currentPassword", ErrorCode.INVALID_CREDENTIALS, "the current password is not right")
    passwords.check_new(new, email=admin.email, field="newPassword")
    admin.password_hash = await passwords.hash_password(settings, new)
    admin.password_changed_at = utcnow()
    await session.flush()
    await sessions.revoke_all(session, admin_id=admin.id, reason="password_changed", keep=actor.session_id)
    await audit.record(session, merchant_id=merchant_id, actor=actor, action="admin.password_changed", subject_id=admin.id)
    return admin


async def _keep_an_owner(session: AsyncSession, admin: Admin) -> None:
    """Refuse to take away the merchant's last active OWNER (the console would be locked)."""
    if admin.role != AdminRole.OWNER or admin.status != AdminStatus.ACTIVE:
        return
    owners = await session.scalar(
        select(func.count())
        .select_from(Admin)
        .where(
            Admin.merchant_id == admin.merchant_id,
            Admin.role == AdminRole.OWNER,
            Admin.status == AdminStatus.ACTIVE,
            Admin.id != admin.id,
        )
    )
    if not owners:
        raise DomainError("id", ErrorCode.LAST_OWNER, "make another admin OWNER first: a merchant keeps at least one")


async def _lock_owners(session: AsyncSession, merchant_id: uuid.UUID) -> None:
    """Two owners demoting each other at once must not leave none: changes to owners queue."""
    await session.execute(
        select(Admin.id).where(Admin.merchant_id == merchant_id, Admin.role == AdminRole.OWNER).with_for_update()
    )


async def set_role(
    session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID, role: AdminRole, actor: audit.Actor
) -> Admin:
    await _lock_owners(session, merchant_id)
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    if admin.role is role:
        return admin
    if role is not AdminRole.OWNER:
        await _keep_an_owner(session, admin)
    previous = admin.role
    admin.role = role
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="admin.role_changed",
        subject_id=admin.id,
        details={"from": previous.value, "to": role.value},
    )
    return admin


async def disable_admin(session: AsyncSession, *, merchant_id: uuid.UUID, admin_id: uuid.UUID, actor: audit.Actor) -> Admin:
    """At once: every session of theirs ends. Idempotent."""
    await _lock_owners(session, merchant_id)
    admin = await get_admin(session, merchant_id=merchant_id, admin_id=admin_id, lock=True)
    if admin.status == AdminStatus.DISABLED:
        return admin
    await _keep_an_owner(session, admin)
    admin.status = AdminStatus.DISABLED
    admin.disabled_at = utcnow()
    admin.setup_token_hash = None
    await session.flush()
    await sessions.revoke_all(session, admin_id=admin.id, reason="admin_disabled")
    await audit.record(session, merchant_id=merchant_id, actor=actor, action="admin.disabled", subject_id=admin.id)
    return admin
