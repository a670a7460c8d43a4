"""The share panel's data for a signed-in customer (`widgetSession`, publishable key).

Personal data is only ever the signed customer's own: their code and link, how many people
they referred and what they earned. Never a referee's identity, never anyone else's numbers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.config import Settings
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.fraud import identifiers
from app.referrals import codes, customers, programs, queries
from app.referrals.models import Program, ProgramStatus, ReferralCode, ReferralStatus
from app.rewards import queries as reward_queries
from app.rewards.queries import RewardTotal
from app.widget import identity, service
from app.widget.identity import SignedCustomer
from app.widget.models import ProgramWidget


@dataclass(frozen=True)
class Visit:
    """The browser the panel was opened in: evidence for fraud checks (a referrer's own
    device later clicking their link is a self-referral)."""

    device_id: str | None
    device_fingerprint: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Panel:
    program: Program
    widget: ProgramWidget | None
    code: ReferralCode
    share_url: str | None
    successful_referrals: int  # qualified: the referee bought or subscribed
    pending_referrals: int  # signed up, nothing bought yet
    rewards: list[RewardTotal]
    expires_at: datetime  # when the signature stops being accepted


async def _program(session: AsyncSession, merchant_id: uuid.UUID, program_id: uuid.UUID | None) -> Program:
    """The named program, or the merchant's only active one."""
    if program_id is not None:
        program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
        if program.program_status is not ProgramStatus.ACTIVE:
            raise DomainError("programId", ErrorCode.PROGRAM_NOT_ACTIVE, "this referral program is not running")
        return program
    active = (
        await session.scalars(
            select(Program)
            .where(Program.merchant_id == merchant_id, Program.status == ProgramStatus.ACTIVE)
            .order_by(Program.id)
            .limit(2)
        )
    ).all()
    if not active:
        raise DomainError("programId", ErrorCode.PROGRAM_NOT_ACTIVE, "the merchant runs no active referral program")
    if len(active) > 1:
        raise DomainError("programId", ErrorCode.REQUIRED, "the merchant runs several programs: name one (programId)")
    return active[0]


async def open_panel(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer: SignedCustomer,
    program_id: uuid.UUID | None,
    visit: Visit,
    app_settings: Settings,
) -> Panel:
    customer = SignedCustomer(
        external_id=customers.external_id(customer.external_id),
        timestamp=customer.timestamp,
        signature=validation.required_text(customer.signature, "signature", 128),
    )
    visit = Visit(
        device_id=validation.text(visit.device_id, "deviceId", 255),
        device_fingerprint=validation.text(visit.device_fingerprint, "deviceFingerprint", 64),
        ip=visit.ip,
        user_agent=(visit.user_agent or "")[:512] or None,
    )
    now = utcnow()
    identity.verify(customer, await service.signing_secrets(session, merchant_id=merchant_id, app_settings=app_settings), now)
    program = await _program(session, merchant_id, program_id)
    code = await codes.active_code_of(
        session, merchant_id=merchant_id, program_id=program.id, customer_external_id=customer.external_id
    ) or await codes.issue_referral_code(
        session, merchant_id=merchant_id, program_id=program.id, customer_external_id=customer.external_id
    )
    await identifiers.record_visit(
        session,
        merchant_id=merchant_id,
        customer_id=code.customer_id,
        seen_at=now,
        device_id=visit.device_id,
        device_fingerprint=visit.device_fingerprint,
        ip=visit.ip,
        user_agent=visit.user_agent,
    )
    counts = await queries.referral_counts(session, merchant_id=merchant_id, referrer_id=code.customer_id, program_id=program.id)
    return Panel(
        program=program,
        widget=await service.get_program_widget(session, merchant_id=merchant_id, program_id=program.id),
        code=code,
        share_url=codes.share_url(program, code.code),
        successful_referrals=counts.get(ReferralStatus.QUALIFIED, 0),
        pending_referrals=counts.get(ReferralStatus.PENDING, 0),
        rewards=await reward_queries.reward_totals(
            session, merchant_id=merchant_id, customer_id=code.customer_id, program_id=program.id
        ),
        expires_at=customer.expires_at,
    )
