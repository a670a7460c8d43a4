"""Business referrals (leads): submitted by referrers, moved through their statuses by the merchant's staff."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.leads import models, service
from app.merchants.models import AdminRole, ApiKeyKind
from app.referrals import customers
from app.schema.campaigns import referrer_of
from app.schema.common import gid
from app.schema.errors import UserError
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import AnyKey, SecretKey, accepts
from app.schema.reward_types import RewardKind
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query

LeadStatus: TypeAlias = models.LeadStatus
strawberry.enum(LeadStatus, description="SUBMITTED -> CONTACTED -> QUALIFIED -> WON; LOST from any open step.")
# Moving leads: the merchant's server, or its sales people in the console (not FINANCE-only or REVIEWER-only staff).
LeadStaff = accepts("LeadStaff", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER, AdminRole.ADMIN])


@strawberry.type(description="One step of a lead, with who made it.")
class LeadStep:
    from_status: LeadStatus | None
    to_status: LeadStatus
    notes: str | None
    notes_visible_to_referrer: bool
    actor_key_id: strawberry.ID | None
    actor_admin_id: strawberry.ID | None
    by_referrer: bool
    at: datetime

    @classmethod
    def from_model(cls, m: models.LeadEvent) -> LeadStep:
        return cls(
            from_status=models.LeadStatus(m.from_status) if m.from_status else None,
            to_status=models.LeadStatus(m.to_status),
            notes=m.notes,
            notes_visible_to_referrer=m.notes_visible_to_referrer,
            actor_key_id=gid(m.actor_key_id) if m.actor_key_id else None,
            actor_admin_id=gid(m.actor_admin_id) if m.actor_admin_id else None,
            by_referrer=m.actor_customer_id is not None,
            at=m.created_at,
        )


@strawberry.type(description="A lead as the merchant's staff see it.")
class Lead:
    id: strawberry.ID
    program_id: strawberry.ID
    referrer_external_id: str
    status: LeadStatus
    company: str
    company_domain: str | None
    contact_name: str | None
    contact_email: str | None
    notes: str | None
    duplicate_of_id: strawberry.ID | None = strawberry.field(
        description="An earlier lead of the program with the same company domain or contact email."
    )
    contract_value: BigInt | None
    contract_currency: str | None
    fee_reward_id: strawberry.ID | None
    history: list[LeadStep]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: models.Lead, referrer_external_id: str, steps: list[models.LeadEvent]) -> Lead:
        return cls(
            id=gid(m.id),
            program_id=gid(m.program_id),
            referrer_external_id=referrer_external_id,
            status=models.LeadStatus(m.status),
            company=m.company,
            company_domain=m.company_domain,
            contact_name=m.contact_name,
            contact_email=m.contact_email,
            notes=m.notes,
            duplicate_of_id=gid(m.duplicate_of_id) if m.duplicate_of_id else None,
            contract_value=m.contract_value,
            contract_currency=m.contract_currency,
            fee_reward_id=gid(m.fee_reward_id) if m.fee_reward_id else None,
            history=[LeadStep.from_model(s) for s in steps],
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


@strawberry.type(description="A step as the referrer sees it: staff notes only when marked visible to them.")
class ReferrerLeadStep:
    status: LeadStatus
    notes: str | None
    at: datetime


@strawberry.type(description="A lead as its referrer sees it.")
class ReferrerLead:
    id: strawberry.ID
    program_id: strawberry.ID
    status: LeadStatus
    company: str
    fee_granted: bool
    steps: list[ReferrerLeadStep]
    created_at: datetime

    @classmethod
    def of(cls, m: models.Lead, steps: list[models.LeadEvent]) -> ReferrerLead:
        return cls(
            id=gid(m.id),
            program_id=gid(m.program_id),
            status=models.LeadStatus(m.status),
            company=m.company,
            fee_granted=m.fee_reward_id is not None,
            created_at=m.created_at,
            steps=[
                ReferrerLeadStep(
                    status=models.LeadStatus(s.to_status), notes=s.notes if s.notes_visible_to_referrer else None, at=s.created_at
                )
                for s in steps
            ],
        )


@strawberry.type
class LeadSettings:
    program_id: strawberry.ID
    kind: RewardKind
    fee_amount: BigInt | None
    fee_percent_bps: int | None
    currency: str
    hold_days: int

    @classmethod
    def from_model(cls, m: models.LeadSettings) -> LeadSettings:
        return cls(
            program_id=gid(m.program_id),
            kind=RewardKind(m.kind),
            fee_amount=m.fee_amount,
            fee_percent_bps=m.fee_percent_bps,
            currency=m.currency,
            hold_days=m.hold_days,
        )


@strawberry.input
class SubmitLeadInput:
    program_id: strawberry.ID
    customer_external_id: str = strawberry.field(description="The referrer.")
    company: str
    timestamp: BigInt | None = strawberry.field(default=None, description="The widget's signed customer (publishable key).")
    signature: str | None = None
    company_domain: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    notes: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description="A retry with the same key returns the first lead.")


@strawberry.input
class MoveLeadInput:
    id: strawberry.ID
    status: LeadStatus
    notes: str | None = None
    notes_visible_to_referrer: bool = False
    contract_value: BigInt | None = strawberry.field(
        default=None, description="At WON: the first contract's value (minor units)."
    )
    contract_currency: str | None = None


@strawberry.input
class LeadSettingsInput:
    kind: RewardKind = RewardKind.COMMISSION
    fee_amount: BigInt | None = None
    fee_percent_bps: int | None = strawberry.field(default=None, description="Of the contract value given at WON.")
    currency: str = "USD"
    hold_days: int = 0


@strawberry.type
class SubmitLeadPayload:
    lead: ReferrerLead | None = None
    replayed: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LeadPayload:
    lead: Lead | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LeadSettingsPayload:
    settings: LeadSettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


async def _staff_views(session: AsyncSession, merchant_id: uuid.UUID, leads: list[models.Lead]) -> dict[uuid.UUID, Lead]:
    """The leads with their history and referrers, in two statements whatever their number."""
    steps = await service.history(session, merchant_id=merchant_id, lead_ids=[lead.id for lead in leads])
    external_ids = await customers.external_ids(session, merchant_id=merchant_id, ids=[lead.referrer_id for lead in leads])
    return {lead.id: Lead.of(lead, external_ids[lead.referrer_id], steps[lead.id]) for lead in leads}


@strawberry.type
class LeadQuery:
    @strawberry.field(permission_classes=[LeadStaff], description="The merchant's leads, newest first.")
    async def leads(
        self,
        info: Info,
        program_id: strawberry.ID | None = None,
        status: LeadStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Lead]:
        async def work(session: AsyncSession) -> Connection[Lead]:
            page = await service.list_leads(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId") if program_id else None,
                status=models.LeadStatus(status.value) if status else None,
                first=first,
                after=after,
            )
            views = await _staff_views(session, info.context.merchant_id, page.items)
            return to_connection(page, lambda lead: views[lead.id])

        return await query(info, work)

    @strawberry.field(permission_classes=[LeadStaff])
    async def lead(self, info: Info, id: strawberry.ID) -> Lead:
        async def work(session: AsyncSession) -> Lead:
            lead = await service.get_lead(session, merchant_id=info.context.merchant_id, lead_id=validation.parse_id(id, "id"))
            return (await _staff_views(session, info.context.merchant_id, [lead]))[lead.id]

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyKey],
        description="The referrer's own leads, newest first (publishable key: the widget's signed customer).",
    )
    async def referrer_leads(
        self,
        info: Info,
        customer_external_id: str,
        timestamp: BigInt | None = None,
        signature: str | None = None,
        first: int | None = 20,
    ) -> list[ReferrerLead]:
        async def work(session: AsyncSession) -> list[ReferrerLead]:
            referrer = await referrer_of(info, session, customer_external_id, timestamp, signature)
            page = await service.list_leads(
                session, merchant_id=info.context.merchant_id, referrer_id=referrer.id, first=first, after=None
            )
            steps = await service.history(
                session, merchant_id=info.context.merchant_id, lead_ids=[lead.id for lead in page.items]
            )
            return [ReferrerLead.of(lead, steps[lead.id]) for lead in page.items]

        return await query(info, work)

    @strawberry.field(permission_classes=[LeadStaff])
    async def lead_settings(self, info: Info, program_id: strawberry.ID) -> LeadSettings | None:
        async def work(session: AsyncSession) -> LeadSettings | None:
            found = await service.get_settings(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(program_id, "programId")
            )
            return LeadSettings.from_model(found) if found else None

        return await query(info, work)


@strawberry.type
class LeadMutation:
    @strawberry.mutation(
        permission_classes=[AnyKey],
        description="A referrer names a company (publishable key: the widget's signed customer; secret key: any referrer).",
    )
    async def submit_lead(self, info: Info, input: SubmitLeadInput) -> SubmitLeadPayload:
        async def work(session: AsyncSession) -> SubmitLeadPayload:
            referrer = await referrer_of(info, session, input.customer_external_id, input.timestamp, input.signature)
            submitted = await service.submit_lead(
                session,
                merchant_id=info.context.merchant_id,
                referrer=referrer,
                actor=info.context.actor,
                data=service.LeadInput(
                    program_id=validation.parse_id(input.program_id, "programId"),
                    company=input.company,
                    company_domain=input.company_domain,
                    contact_name=input.contact_name,
                    contact_email=input.contact_email,
                    notes=input.notes,
                    idempotency_key=input.idempotency_key,
                ),
            )
            steps = await service.history(session, merchant_id=info.context.merchant_id, lead_ids=[submitted.lead.id])
            return SubmitLeadPayload(lead=ReferrerLead.of(submitted.lead, steps[submitted.lead.id]), replayed=submitted.replayed)

        return await mutate(info, SubmitLeadPayload, work)

    @strawberry.mutation(
        permission_classes=[LeadStaff],
        description="Move a lead one step (WON and LOST are final). At WON the program's referral fee is granted, once.",
    )
    async def move_lead(self, info: Info, input: MoveLeadInput) -> LeadPayload:
        async def work(session: AsyncSession) -> LeadPayload:
            lead = await service.move_lead(
                session,
                merchant_id=info.context.merchant_id,
                lead_id=validation.parse_id(input.id, "id"),
                to=models.LeadStatus(input.status.value),
                actor=info.context.actor,
                notes=input.notes,
                notes_visible_to_referrer=input.notes_visible_to_referrer,
                contract_value=input.contract_value,
                contract_currency=input.contract_currency,
            )
            return LeadPayload(lead=(await _staff_views(session, info.context.merchant_id, [lead]))[lead.id])

        return await mutate(info, LeadPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="The program's referral fee for won leads.")
    async def set_lead_settings(self, info: Info, program_id: strawberry.ID, input: LeadSettingsInput) -> LeadSettingsPayload:
        async def work(session: AsyncSession) -> LeadSettingsPayload:
            settings = await service.set_settings(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                kind=RewardKind(input.kind.value),
                fee_amount=input.fee_amount,
                fee_percent_bps=input.fee_percent_bps,
                currency=input.currency,
                hold_days=input.hold_days,
            )
            return LeadSettingsPayload(settings=LeadSettings.from_model(settings))

        return await mutate(info, LeadSettingsPayload, work)
