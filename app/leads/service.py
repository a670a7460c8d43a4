"""Business referrals (leads): a referrer names a company; the merchant's staff move it
SUBMITTED -> CONTACTED -> QUALIFIED -> WON, or to LOST from any open step. WON and LOST are
final; no step is skipped or taken back. Every step is recorded with who made it and its
notes, and announced by the `lead.status_changed` webhook.

The referral fee is granted at WON, exactly once: the lead's row is locked for the move (a
second concurrent WON then finds the lead WON and is refused), and the fee's reward has the
grant key `lead:<id>:fee` (app.campaigns.grants), so not even a bug could grant it twice. It
is held for the program's `hold_days` like any reward, then paid through payouts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.campaigns import grants
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.leads.models import Lead, LeadEvent, LeadSettings, LeadStatus
from app.merchants import audit
from app.pagination import Page, paginate
from app.personal import lookup_hash
from app.referrals import programs
from app.referrals.models import Customer
from app.rewards.models import Reward, RewardKind
from app.webhooks import events as webhook_events
from app.webhooks.service import emit

NEXT_STEPS: dict[LeadStatus, frozenset[LeadStatus]] = {
    LeadStatus.SUBMITTED: frozenset({LeadStatus.CONTACTED, LeadStatus.LOST}),
    LeadStatus.CONTACTED: frozenset({LeadStatus.QUALIFIED, LeadStatus.LOST}),
    LeadStatus.QUALIFIED: frozenset({LeadStatus.WON, LeadStatus.LOST}),
    LeadStatus.WON: frozenset(),
    LeadStatus.LOST: frozenset(),
}
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


@dataclass(frozen=True)
class LeadInput:
    program_id: uuid.UUID
    company: str
    company_domain: str | None = None  # "acme.com" or "https://www.acme.com/"
    contact_name: str | None = None
    contact_email: str | None = None
    notes: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Submitted:
    lead: Lead
    replayed: bool


def company_domain(value: str | None) -> str | None:
    """ "https://www.Acme.com/about" -> "acme.com": what two leads of one company share."""
    value = validation.text(value, "companyDomain", 255)
    if value is None:
        return None
    domain = re.sub(r"^[a-z]+://", "", value.lower()).split("/")[0].split(":")[0].removeprefix("www.")
    if not _DOMAIN.match(domain):
        raise DomainError("companyDomain", ErrorCode.INVALID_INPUT, "companyDomain is a domain name such as acme.com")
    return domain


async def set_settings(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    kind: RewardKind,
    fee_amount: int | None,
    fee_percent_bps: int | None,
    currency: str,
    hold_days: int,
) -> LeadSettings:
    """The program's referral fee: a fixed `fee_amount`, or `fee_percent_bps` of the
    contract value given at WON (exactly one of them)."""
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    if kind not in (RewardKind.COMMISSION, RewardKind.CREDIT):
        raise DomainError("kind", ErrorCode.INVALID_INPUT, "the fee is COMMISSION (paid out) or CREDIT")
    if (fee_amount is None) == (fee_percent_bps is None):
        raise DomainError("feeAmount", ErrorCode.INVALID_INPUT, "give either feeAmount or feePercentBps")
    fee_amount, code = (
        money.amount_with_currency(fee_amount, currency, "feeAmount", "currency")
        if fee_amount is not None
        else (None, money.currency(currency, "currency"))
    )
    if code is None:
        raise DomainError("currency", ErrorCode.REQUIRED, "currency is required")
    values = dict(
        merchant_id=merchant_id,
        kind=kind.value,
        fee_amount=fee_amount,
        fee_percent_bps=validation.int_range(fee_percent_bps, "feePercentBps", 1, 10_000),
        currency=code,
        hold_days=validation.int_range(hold_days, "holdDays", 0, 365) or 0,
        updated_at=utcnow(),
    )
    settings = await session.scalar(
        select(LeadSettings)
        .where(LeadSettings.merchant_id == merchant_id, LeadSettings.program_id == program_id)
        .with_for_update()
    )
    if settings is None:
        settings = LeadSettings(program_id=program_id, **values)
        session.add(settings)
    else:
        for name, value in values.items():
            setattr(settings, name, value)
    await session.flush()
    return settings


async def get_settings(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> LeadSettings | None:
    """The program's fee (None: no fee is paid for won leads); another merchant's program is NOT_FOUND."""
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    return await session.scalar(
        select(LeadSettings).where(LeadSettings.program_id == program_id, LeadSettings.merchant_id == merchant_id)
    )


async def submit_lead(
    session: AsyncSession, *, merchant_id: uuid.UUID, referrer: Customer, data: LeadInput, actor: audit.Actor
) -> Submitted:
    """Record the referrer's lead, flagged as a duplicate when an earlier lead of the program
    names the same company domain or contact email. With an idempotency key, a retry returns
    the first lead."""
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=data.program_id)
    key = validation.text(data.idempotency_key, "idempotencyKey", 255, strip=False)
    if key is not None:
        existing = await session.scalar(select(Lead).where(Lead.merchant_id == merchant_id, Lead.idempotency_key == key))
        if existing is not None:
            return Submitted(existing, replayed=True)
    company = validation.required_text(data.company, "company", 200)
    email = validation.email(data.contact_email, "contactEmail")
    email = email.lower() if email else None
    email_hash = contact_email_hash(merchant_id, email) if email else None
    domain = company_domain(data.company_domain)
    now = utcnow()
    values = dict(
        id=new_id(),
        merchant_id=merchant_id,
        program_id=program.id,
        referrer_id=referrer.id,
        status=LeadStatus.SUBMITTED,
        company=company,
        company_domain=domain,
        contact_name=validation.text(data.contact_name, "contactName", 200),
        contact_email=email,
        contact_email_hash=email_hash,
        notes=validation.text(data.notes, "notes", 2000),
        duplicate_of_id=await _earlier_lead(session, program.id, domain, email_hash),
        contract_value=None,
        contract_currency=None,
        fee_reward_id=None,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )
    lead = await session.scalar(
        insert_ignoring_conflicts(session, Lead, ["merchant_id", "idempotency_key"]).values(**values).returning(Lead)
    )
    if lead is None:  # a concurrent retry with the key won
        winner = await session.scalar(select(Lead).where(Lead.merchant_id == merchant_id, Lead.idempotency_key == key))
        assert winner is not None
        return Submitted(winner, replayed=True)
    # submitted by (or for) the referrer: their own notes are theirs to see
    await _record_step(session, lead, None, actor=actor, customer_id=referrer.id, notes=lead.notes, visible=True)
    return Submitted(lead, replayed=False)


def contact_email_hash(merchant_id: uuid.UUID, email: str) -> str:
    """What a lead's contact email is matched by: its keyed hash (the email itself is encrypted)."""
    return lookup_hash(merchant_id, "LEAD_EMAIL", email)


async def _earlier_lead(
    session: AsyncSession, program_id: uuid.UUID, domain: str | None, email_hash: str | None
) -> uuid.UUID | None:
    matches = [
        column == value for column, value in ((Lead.company_domain, domain), (Lead.contact_email_hash, email_hash)) if value
    ]
    if not matches:
        return None
    return await session.scalar(select(Lead.id).where(Lead.program_id == program_id, or_(*matches)).order_by(Lead.id).limit(1))


async def get_lead(session: AsyncSession, *, merchant_id: uuid.UUID, lead_id: uuid.UUID, lock: bool = False) -> Lead:
    query = select(Lead).where(Lead.id == lead_id, Lead.merchant_id == merchant_id)
    lead = await session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if lead is None:
        raise NotFound("id", "lead")
    return lead


async def move_lead(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    lead_id: uuid.UUID,
    to: LeadStatus,
    actor: audit.Actor,
    notes: str | None = None,
    notes_visible_to_referrer: bool = False,
    contract_value: int | None = None,
    contract_currency: str | None = None,
) -> Lead:
    """One step of the lead, by the merchant's staff; at WON the referral fee is granted."""
    notes = validation.text(notes, "notes", 2000)
    contract_value, contract_currency = money.amount_with_currency(
        contract_value, contract_currency, "contractValue", "contractCurrency"
    )
    lead = await get_lead(session, merchant_id=merchant_id, lead_id=lead_id, lock=True)
    current = LeadStatus(lead.status)
    if to not in NEXT_STEPS[current]:
        allowed = ", ".join(sorted(s.value for s in NEXT_STEPS[current])) or "none: it is final"
        raise DomainError(
            "status", ErrorCode.INVALID_STATUS_TRANSITION, f"a {current.value} lead cannot become {to.value} (next: {allowed})"
        )
    if to is not LeadStatus.WON and contract_value is not None:
        raise DomainError("contractValue", ErrorCode.INVALID_INPUT, "the contract value is given when the lead is WON")
    if to is LeadStatus.WON:
        lead.contract_value, lead.contract_currency = contract_value, contract_currency
        fee = await _grant_fee(session, lead)
        lead.fee_reward_id = fee.id if fee is not None else None
    lead.status = to
    lead.updated_at = utcnow()
    await session.flush()
    await _record_step(session, lead, current, actor=actor, customer_id=None, notes=notes, visible=notes_visible_to_referrer)
    return lead


async def _grant_fee(session: AsyncSession, lead: Lead) -> Reward | None:
    """The program's fee for a won lead (nothing when the program has no fee set)."""
    settings = await get_settings(session, merchant_id=lead.merchant_id, program_id=lead.program_id)
    if settings is None:
        return None
    if settings.fee_amount is not None:
        amount = settings.fee_amount
    else:
        assert settings.fee_percent_bps is not None
        if lead.contract_value is None:
            raise DomainError("contractValue", ErrorCode.REQUIRED, "the program's fee is a share of the first contract's value")
        if lead.contract_currency != settings.currency:
            raise DomainError("contractCurrency", ErrorCode.CURRENCY_MISMATCH, f"the program's fee is in {settings.currency}")
        amount = lead.contract_value * settings.fee_percent_bps // 10_000
    return await grants.grant_once(
        session,
        merchant_id=lead.merchant_id,
        program_id=lead.program_id,
        customer_id=lead.referrer_id,
        kind=RewardKind(settings.kind),
        amount=amount,
        currency=settings.currency,
        grant_key=f"lead:{lead.id}:fee",
        source=grants.LEAD,
        hold_days=settings.hold_days,
    )


async def _record_step(
    session: AsyncSession,
    lead: Lead,
    previous: LeadStatus | None,
    *,
    actor: audit.Actor,
    customer_id: uuid.UUID | None,
    notes: str | None,
    visible: bool,
) -> None:
    event = LeadEvent(
        id=new_id(),
        merchant_id=lead.merchant_id,
        lead_id=lead.id,
        from_status=previous.value if previous else None,
        to_status=lead.status,
        actor_key_id=actor.key_id,
        actor_admin_id=actor.admin_id,
        actor_customer_id=customer_id,
        notes=notes,
        notes_visible_to_referrer=visible,
        created_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    await audit.record(
        session,
        merchant_id=lead.merchant_id,
        actor=actor,
        action=f"lead.{lead.status.value.lower()}",
        subject_id=lead.id,
        note=notes,
        details={"from": event.from_status.value if event.from_status else None, "to": lead.status.value},
    )

    async def payload() -> dict[str, Any]:
        referrer = await session.get_one(Customer, lead.referrer_id)
        return webhook_events.lead_data(lead, event, referrer_external_id=referrer.external_id)

    await emit(session, lead.merchant_id, webhook_events.LEAD_STATUS_CHANGED, payload)


async def list_leads(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID | None = None,
    status: LeadStatus | None = None,
    referrer_id: uuid.UUID | None = None,
    first: int | None,
    after: str | None,
) -> Page[Lead]:
    query = select(Lead).where(Lead.merchant_id == merchant_id)
    if program_id is not None:
        query = query.where(Lead.program_id == program_id)
    if status is not None:
        query = query.where(Lead.status == status)
    if referrer_id is not None:
        query = query.where(Lead.referrer_id == referrer_id)
    return await paginate(session, query, Lead.id, first=first, after=after)


async def history(
    session: AsyncSession, *, merchant_id: uuid.UUID, lead_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[LeadEvent]]:
    rows = (
        await session.scalars(
            select(LeadEvent).where(LeadEvent.merchant_id == merchant_id, LeadEvent.lead_id.in_(lead_ids)).order_by(LeadEvent.id)
        )
    ).all()
    found: dict[uuid.UUID, list[LeadEvent]] = {lead_id: [] for lead_id in lead_ids}
    for row in rows:
        found[row.lead_id].append(row)
    return found
