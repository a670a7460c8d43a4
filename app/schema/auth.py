"""Reading the caller from `Authorization: Bearer ...`: an API key, or an admin session.

A session's use is recorded (last used, for the idle timeout) in its own short transaction,
so the request's transaction stays whatever the operation makes it; when the request's
session already holds a transaction (SQLite has one connection), it is read without that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import scope_to_merchant
from app.merchants import audit, sessions
from app.merchants import service as merchants
from app.merchants.models import AdminRole
from app.merchants.service import Caller


async def authenticate_bearer(context: Any, session: AsyncSession, token: str) -> Caller | None:
    if not token.startswith(sessions.PREFIX):
        return await merchants.authenticate(session, plaintext=token)
    if session.in_transaction():
        return await sessions.authenticate(session, settings=context.settings, token=token, touch=False)
    async with context.session_factory() as own:
        caller = await sessions.authenticate(own, settings=context.settings, token=token)
        await own.commit()
    if caller is not None:  # the request's own session works for that merchant too
        await scope_to_merchant(session, caller.merchant_id)
    return caller


def caller_of(context: Any) -> Caller:
    """The authenticated caller; only behind a permission class, which authenticated it."""
    assert context._caller is not None
    return context._caller


@dataclass(frozen=True)
class AdminCaller:
    """A caller known to be an admin in a session: what `Caller` leaves optional, required."""

    merchant_id: uuid.UUID
    admin_id: uuid.UUID
    admin_role: AdminRole
    session_id: uuid.UUID


def admin_of(context: Any) -> AdminCaller:
    """The admin calling; only behind a permission class that accepts sessions only (`AnyAdmin`, `Finance`, ...)."""
    caller = caller_of(context)
    assert caller.admin_id is not None and caller.admin_role is not None and caller.session_id is not None
    return AdminCaller(caller.merchant_id, caller.admin_id, caller.admin_role, caller.session_id)


def actor_of(context: Any) -> audit.Actor:
    caller = context._caller
    if caller is None:
        return audit.Actor(ip=context.client_ip)
    return audit.Actor(key_id=caller.key_id, admin_id=caller.admin_id, session_id=caller.session_id, ip=context.client_ip)
