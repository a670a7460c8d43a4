"""The audit log: who changed money-relevant settings or decided a review, when, and why."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.merchants.models import AuditEntry
from app.pagination import Page, paginate


@dataclass(frozen=True)
class Actor:
    """Who made a call: an API key, an admin's session, or neither (the system, the CLI)."""

    key_id: uuid.UUID | None = None
    admin_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    ip: str | None = None


SYSTEM = Actor()


async def record(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    actor: Actor,
    action: str,
    subject_id: uuid.UUID | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        merchant_id=merchant_id,
        actor_key_id=actor.key_id,
        actor_admin_id=actor.admin_id,
        action=action,
        subject_id=subject_id,
        note=note,
        details=details,
        created_at=utcnow(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, *, merchant_id: uuid.UUID, subject_id: uuid.UUID | None = None, first: int | None, after: str | None
) -> Page[AuditEntry]:
    """Newest first."""
    query = select(AuditEntry).where(AuditEntry.merchant_id == merchant_id)
    if subject_id is not None:
        query = query.where(AuditEntry.subject_id == subject_id)
    return await paginate(session, query, AuditEntry.id, first=first, after=after)
