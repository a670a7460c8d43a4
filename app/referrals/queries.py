"""Reading referrals and actions: pages for lists, batches for the per-request DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import merchant_rows
from app.errors import NotFound
from app.pagination import Page, paginate, paginate_where
from app.referrals import customers, programs
from app.referrals.models import Action, Referral, ReferralRecord, ReferralStatus
from app.tenancy import scoped


async def get_referral(session: AsyncSession, *, merchant_id: uuid.UUID, referral_id: uuid.UUID) -> Referral | None:
    return await session.scalar(scoped(select(Referral).where(Referral.id == referral_id), merchant_id))


async def list_referrals(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID | None = None,
    status: ReferralStatus | None = None,
    referrer_id: uuid.UUID | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[ReferralRecord]:
    """The merchant's referrals to show, newest first, without ORM objects."""
    if program_id is not None:
        await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    where = {"program_id": program_id, "status": status, "referrer_id": referrer_id}
    return await paginate_where(
        session,
        ReferralRecord,
        Referral,
        merchant_id=merchant_id,
        where={key: value for key, value in where.items() if value is not None},
        first=first,
        after=after,
    )


async def list_actions(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_external_id: str | None = None,
    referral_id: uuid.UUID | None = None,
    action_type: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Action]:
    query = scoped(select(Action), merchant_id)
    if customer_external_id is not None:
        external_id = customers.external_id(customer_external_id)
        customer = await customers.require_customer(
            session, merchant_id=merchant_id, external_id=external_id, field="customerExternalId"
        )
        query = query.where(Action.customer_id == customer.id)
    if referral_id is not None:
        if await get_referral(session, merchant_id=merchant_id, referral_id=referral_id) is None:
            raise NotFound("referralId", "referral")  # as referrals(programId:) does for a program
        query = query.where(Action.referral_id == referral_id)
    if action_type is not None:
        query = query.where(Action.type == validation.required_text(action_type, "type", 64).upper())
    return await paginate(session, query, Action.id, first=first, after=after)


async def get_referrals_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Referral]:
    return await merchant_rows(session, Referral, merchant_id, Referral.id, ids)


async def get_referrals_by_referee_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, referee_ids: Sequence[uuid.UUID]
) -> list[Referral]:
    return await merchant_rows(session, Referral, merchant_id, Referral.referee_id, referee_ids)


async def get_actions_by_referral_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, referral_ids: Sequence[uuid.UUID]
) -> list[Action]:
    return await merchant_rows(session, Action, merchant_id, Action.referral_id, referral_ids)


async def referral_counts(
    session: AsyncSession, *, merchant_id: uuid.UUID, referrer_id: uuid.UUID, program_id: uuid.UUID
) -> dict[ReferralStatus, int]:
    """How many referrals the customer made in the program, by status (one grouped query)."""
    rows = await session.execute(
        scoped(
            select(Referral.status, func.count()).where(Referral.referrer_id == referrer_id, Referral.program_id == program_id),
            merchant_id,
        ).group_by(Referral.status)
    )
    return {ReferralStatus(status): count for status, count in rows.all()}
