"""Partners of an affiliate program: applying, inviting, the merchant's decisions, groups.

A partner is one of the merchant's customers (the referrer) enrolled in an AFFILIATE program;
their referral code is their tracking link. Every status change is kept with who made it,
when and why (`PartnerStatusChange`); only an ACTIVE partner's sales earn commission
(app.partners.sales).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.config import Settings
from app.db import insert_one, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants.audit import Actor
from app.merchants.models import ApiKeyKind
from app.partners.models import Partner, PartnerGroup, PartnerStatus, PartnerStatusChange
from app.referrals import codes, customers, programs
from app.referrals.models import Program, ReferralCode
from app.rewards.rules import MAX_BPS
from app.widget import identity
from app.widget import service as widget_service
from app.widget.identity import SignedCustomer

PARTNER_ACTOR = "partner"  # the partner themselves, through a signed partner session


class Decision(enum.Enum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    SUSPEND = "SUSPEND"
    REACTIVATE = "REACTIVATE"


# decision -> (the statuses it applies to, the status it leads to)
_DECISIONS = {
    Decision.APPROVE: ({PartnerStatus.APPLIED, PartnerStatus.REJECTED}, PartnerStatus.ACTIVE),
    Decision.REJECT: ({PartnerStatus.APPLIED}, PartnerStatus.REJECTED),
    Decision.SUSPEND: ({PartnerStatus.ACTIVE}, PartnerStatus.SUSPENDED),
    Decision.REACTIVATE: ({PartnerStatus.SUSPENDED}, PartnerStatus.ACTIVE),
}


@dataclass(frozen=True)
class Enrolment:
    partner: Partner
    code: ReferralCode  # the partner's tracking link
    created: bool  # False: they had applied (or been invited) before


def actor_label(actor: Actor | None) -> str:
    if actor is None:
        return PARTNER_ACTOR
    if actor.admin_id is not None:
        return f"admin:{actor.admin_id}"
    if actor.key_id is not None:
        return f"key:{actor.key_id}"
    return "system"


async def affiliate_program(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> Program:
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    if not program.is_affiliate:
        raise DomainError("programId", ErrorCode.INVALID_INPUT, "partners join AFFILIATE programs only")
    return program


async def apply_as_partner(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    customer_external_id: str,
    note: str | None = None,
    email: str | None = None,
    name: str | None = None,
    invited: bool = False,
    actor: Actor | None = None,
) -> Enrolment:
    """The customer applies (or is invited) to the affiliate program: APPLIED, with a code of
    their own. Idempotent: applying again returns the partner as they are."""
    note = validation.text(note, "note", 1000)
    email = validation.email(email, "email")
    name = validation.text(name, "name", 200)
    program = await affiliate_program(session, merchant_id=merchant_id, program_id=program_id)
    customer = await customers.ensure_customer(
        session,
        merchant_id=merchant_id,
        external_id=customers.external_id(customer_external_id),
        email=email,
        name=name,
    )
    now = utcnow()
    values = {
        "id": new_id(),
        "merchant_id": merchant_id,
        "program_id": program.id,
        "customer_id": customer.id,
        "group_id": None,
        "status": PartnerStatus.APPLIED,
        "invited": invited,
        "application_note": note,
        "applied_at": now,
        "decided_at": None,
        "created_at": now,
        "updated_at": now,
    }
    partner = await insert_one(session, Partner, values, ignoring_conflicts=("program_id", "customer_id"))
    created = partner is not None
    if partner is None:
        partner = await session.scalar(
            select(Partner).where(Partner.program_id == program.id, Partner.customer_id == customer.id)
        )
        assert partner is not None
    else:
        session.add(
            PartnerStatusChange(
                merchant_id=merchant_id,
                partner_id=partner.id,
                from_status=None,
                to_status=PartnerStatus.APPLIED,
                actor=actor_label(actor),
                reason="invited" if invited else note,
                created_at=now,
            )
        )
        await session.flush()
    code = await codes.active_code_of(
        session, merchant_id=merchant_id, program_id=program.id, customer_external_id=customer.external_id
    ) or await codes.issue_referral_code(
        session, merchant_id=merchant_id, program_id=program.id, customer_external_id=customer.external_id
    )
    return Enrolment(partner=partner, code=code, created=created)


async def get_partner(
    session: AsyncSession, *, merchant_id: uuid.UUID, partner_id: uuid.UUID, for_update: bool = False
) -> Partner:
    query = select(Partner).where(Partner.id == partner_id, Partner.merchant_id == merchant_id)
    partner = await session.scalar(query.with_for_update() if for_update else query)
    if partner is None:
        raise NotFound("partnerId", "partner")
    return partner


async def partner_of_customer(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, customer_external_id: str
) -> Partner:
    """The signed-in customer's own partner record in the program (NOT_FOUND if they never applied)."""
    customer = await customers.get_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id)
    )
    partner = (
        None
        if customer is None
        else await session.scalar(
            select(Partner).where(
                Partner.merchant_id == merchant_id, Partner.program_id == program_id, Partner.customer_id == customer.id
            )
        )
    )
    if partner is None:
        raise NotFound("programId", "partner")
    return partner


async def decide(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    partner_id: uuid.UUID,
    decision: Decision,
    reason: str | None,
    actor: Actor,
) -> Partner:
    """Approve, reject, suspend or reactivate; the partner row is locked so two decisions
    apply one after the other, and each is audited."""
    reason = validation.text(reason, "reason", 1000)
    if decision in (Decision.REJECT, Decision.SUSPEND) and reason is None:
        raise DomainError("reason", ErrorCode.REQUIRED, "say why: the partner and your colleagues will read it")
    partner = await get_partner(session, merchant_id=merchant_id, partner_id=partner_id, for_update=True)
    allowed_from, to_status = _DECISIONS[decision]
    current = PartnerStatus(partner.status)
    if current not in allowed_from:
        raise DomainError(
            "decision", ErrorCode.INVALID_STATUS_TRANSITION, f"a {current.value} partner cannot be {decision.value.lower()}d"
        )
    now = utcnow()
    partner.status = to_status
    partner.decided_at = now
    session.add(
        PartnerStatusChange(
            merchant_id=merchant_id,
            partner_id=partner.id,
            from_status=current.value,
            to_status=to_status.value,
            actor=actor_label(actor),
            reason=reason,
            created_at=now,
        )
    )
    await session.flush()
    return partner


async def status_history(
    session: AsyncSession, *, merchant_id: uuid.UUID, partner_ids: list[uuid.UUID]
) -> list[PartnerStatusChange]:
    return list(
        (
            await session.scalars(
                select(PartnerStatusChange)
                .where(PartnerStatusChange.merchant_id == merchant_id, PartnerStatusChange.partner_id.in_(partner_ids))
                .order_by(PartnerStatusChange.created_at, PartnerStatusChange.id)
            )
        ).all()
    )


async def list_partners(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    status: PartnerStatus | None = None,
) -> list[Partner]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = select(Partner).where(Partner.merchant_id == merchant_id, Partner.program_id == program_id)
    if status is not None:
        query = query.where(Partner.status == status)
    return list((await session.scalars(query.order_by(Partner.applied_at, Partner.id).limit(500))).all())


def _commission_bps(value: int | None) -> int | None:
    return validation.int_range(value, "commissionBps", 1, MAX_BPS)


async def create_group(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    name: str,
    commission_bps: int | None,
) -> PartnerGroup:
    name = validation.required_text(name, "name", 100)
    commission_bps = _commission_bps(commission_bps)
    program = await affiliate_program(session, merchant_id=merchant_id, program_id=program_id)
    values = {
        "id": new_id(),
        "merchant_id": merchant_id,
        "program_id": program.id,
        "name": name,
        "commission_bps": commission_bps,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    group = await insert_one(session, PartnerGroup, values, ignoring_conflicts=("program_id", "name"))
    if group is None:
        raise DomainError("name", ErrorCode.INVALID_INPUT, "the program already has a group of this name")
    return group


async def update_group(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    group_id: uuid.UUID,
    commission_bps: int | None,
) -> PartnerGroup:
    """A new rate applies to sales from now on; sales already made keep the rate they were paid at."""
    commission_bps = _commission_bps(commission_bps)
    group = await session.scalar(
        select(PartnerGroup).where(PartnerGroup.id == group_id, PartnerGroup.merchant_id == merchant_id).with_for_update()
    )
    if group is None:
        raise NotFound("groupId", "partner group")
    group.commission_bps = commission_bps
    await session.flush()
    return group


async def assign_group(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    partner_id: uuid.UUID,
    group_id: uuid.UUID | None,
) -> Partner:
    partner = await get_partner(session, merchant_id=merchant_id, partner_id=partner_id, for_update=True)
    if group_id is not None:
        group = await session.scalar(
            select(PartnerGroup).where(PartnerGroup.id == group_id, PartnerGroup.merchant_id == merchant_id)
        )
        if group is None or group.program_id != partner.program_id:
            raise NotFound("groupId", "partner group")
    partner.group_id = group_id
    await session.flush()
    return partner


async def groups_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[PartnerGroup]:
    return list(
        (
            await session.scalars(select(PartnerGroup).where(PartnerGroup.merchant_id == merchant_id, PartnerGroup.id.in_(ids)))
        ).all()
    )


async def list_groups(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> list[PartnerGroup]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    return list(
        (
            await session.scalars(
                select(PartnerGroup)
                .where(PartnerGroup.merchant_id == merchant_id, PartnerGroup.program_id == program_id)
                .order_by(PartnerGroup.name)
            )
        ).all()
    )


async def signed_in_customer(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    signed: SignedCustomer,
    app_settings: Settings,
) -> str:
    """The external id of the customer the shop's server signed for (as the widget's signed
    customer: HMAC-SHA256 of "{externalId}.{timestamp}" with the widget secret); a partner's
    session reads and applies for that customer only."""
    external_id = customers.external_id(signed.external_id)
    signed = SignedCustomer(
        external_id=external_id,
        timestamp=signed.timestamp,
        signature=validation.required_text(signed.signature, "signature", 128),
    )
    identity.verify(
        signed, await widget_service.signing_secrets(session, merchant_id=merchant_id, app_settings=app_settings), utcnow()
    )
    return external_id


@dataclass(frozen=True)
class PartnerCaller:
    """Whom a partner operation is for."""

    external_id: str | None  # the customer; None when the merchant named nobody
    signed_in: bool  # a partner session (publishable key + the shop's signature), not the merchant's credentials

    def required(self, message: str) -> str:
        """The customer, or REQUIRED on customerExternalId (`message` asks whose)."""
        if self.external_id is None:
            raise DomainError("customerExternalId", ErrorCode.REQUIRED, message)
        return self.external_id


async def partner_caller(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    key_kind: ApiKeyKind | None,
    signed: SignedCustomer | None,
    named: str | None,
    app_settings: Settings,
) -> PartnerCaller:
    """Whom a partner operation is for. A publishable key is a partner session: never enough
    alone, it needs the customer id signed by the shop's server, and then acts for that customer
    only, whatever else was named. The merchant's own credentials act for the customer they name."""
    if key_kind is not ApiKeyKind.PUBLISHABLE:
        return PartnerCaller(external_id=named, signed_in=False)
    if signed is None:
        raise DomainError("signature", ErrorCode.REQUIRED, "a partner session needs the signed customer id")
    external_id = await signed_in_customer(session, merchant_id=merchant_id, signed=signed, app_settings=app_settings)
    return PartnerCaller(external_id=external_id, signed_in=True)
