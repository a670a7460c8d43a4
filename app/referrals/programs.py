"""Referral programs: what a merchant runs, e.g. "Give $10, get $10"."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import merchant_rows
from app.errors import DomainError, ErrorCode, NotFound
from app.pagination import Page, paginate
from app.referrals.models import CodeStyle, Program, ProgramStatus, ProgramType
from app.tenancy import get_scoped

# A program may move between these; ARCHIVED is final so old links can never revive.
_TRANSITIONS = {
    ProgramStatus.DRAFT: {ProgramStatus.ACTIVE, ProgramStatus.ARCHIVED},
    ProgramStatus.ACTIVE: {ProgramStatus.PAUSED, ProgramStatus.ARCHIVED},
    ProgramStatus.PAUSED: {ProgramStatus.ACTIVE, ProgramStatus.ARCHIVED},
    ProgramStatus.ARCHIVED: set(),
}


@dataclass
class ProgramChanges:
    """Fields to set; None means "leave as it is"."""

    name: str | None = None
    status: ProgramStatus | None = None
    attribution_window_days: int | None = None
    claim_window_days: int | None = None
    share_url_template: str | None = None
    code_style: CodeStyle | None = None
    code_length: int | None = None
    program_type: ProgramType | None = None  # set at creation only (default CUSTOMER_REFERRAL)


def _validated(changes: ProgramChanges) -> ProgramChanges:
    template = validation.http_url(changes.share_url_template, "shareUrlTemplate")
    if template is not None and "{code}" not in template:
        raise DomainError("shareUrlTemplate", ErrorCode.INVALID_URL, "shareUrlTemplate must contain {code}")
    return ProgramChanges(
        name=validation.text(changes.name, "name", 200),
        status=changes.status,
        attribution_window_days=validation.int_range(changes.attribution_window_days, "attributionWindowDays", 1, 365),
        claim_window_days=validation.int_range(changes.claim_window_days, "claimWindowDays", 0, 365),
        share_url_template=template,
        code_style=changes.code_style,
        code_length=validation.int_range(changes.code_length, "codeLength", 6, 16),
        program_type=changes.program_type,
    )


async def create_program(session: AsyncSession, *, merchant_id: uuid.UUID, changes: ProgramChanges) -> Program:
    changes = _validated(changes)
    if changes.name is None:
        raise DomainError("name", ErrorCode.REQUIRED, "name is required")
    if changes.status not in (None, ProgramStatus.DRAFT, ProgramStatus.ACTIVE):
        raise DomainError("status", ErrorCode.INVALID_STATUS_TRANSITION, "a new program starts as DRAFT or ACTIVE")
    program = Program(
        merchant_id=merchant_id,
        name=changes.name,
        program_type=(changes.program_type or ProgramType.CUSTOMER_REFERRAL).value,
    )
    _apply(program, changes)
    session.add(program)
    await session.flush()
    return program


async def update_program(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, changes: ProgramChanges
) -> Program:
    changes = _validated(changes)
    program = await require_program(session, merchant_id=merchant_id, program_id=program_id, field="id", for_update=True)
    new_status = changes.status
    if (
        new_status is not None
        and new_status is not program.program_status
        and new_status not in _TRANSITIONS[program.program_status]
    ):
        raise DomainError(
            "status", ErrorCode.INVALID_STATUS_TRANSITION, f"a {program.status.value} program cannot become {new_status.value}"
        )
    if program.program_status is ProgramStatus.ARCHIVED:
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, "an archived program cannot be changed")
    if changes.program_type is not None and changes.program_type is not program.program_type:
        raise DomainError("programType", ErrorCode.INVALID_INPUT, "a program's type is chosen when it is created")
    _apply(program, changes)
    await session.flush()
    return program


def _apply(program: Program, changes: ProgramChanges) -> None:
    if changes.name is not None:
        program.name = changes.name
    if changes.status is not None:
        program.status = changes.status
    if changes.attribution_window_days is not None:
        program.attribution_window_days = changes.attribution_window_days
    if changes.claim_window_days is not None:
        program.claim_window_days = changes.claim_window_days
    if changes.share_url_template is not None:
        program.share_url_template = changes.share_url_template
    if changes.code_style is not None:
        program.code_style = changes.code_style
    if changes.code_length is not None:
        program.code_length = changes.code_length


async def get_program(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, for_update: bool = False
) -> Program | None:
    if not for_update:  # a program already read in this transaction costs no round trip
        return await get_scoped(session, Program, program_id, merchant_id)
    query = select(Program).where(Program.id == program_id, Program.merchant_id == merchant_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def require_program(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    field: str | None = "programId",
    for_update: bool = False,
) -> Program:
    """The merchant's program; another merchant's (or no) program is NOT_FOUND on `field` (None: on no
    input field, as a query's own argument)."""
    program = await get_program(session, merchant_id=merchant_id, program_id=program_id, for_update=for_update)
    if program is None:
        raise NotFound(field, "program")
    return program


async def get_programs_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Program]:
    return await merchant_rows(session, Program, merchant_id, Program.id, ids)


async def list_programs(
    session: AsyncSession, *, merchant_id: uuid.UUID, status: ProgramStatus | None, first: int | None, after: str | None
) -> Page[Program]:
    query = select(Program).where(Program.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Program.status == status)
    return await paginate(session, query, Program.id, first=first, after=after)
