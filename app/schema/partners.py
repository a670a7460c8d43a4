"""Affiliate programs over GraphQL: partners and decisions, groups, splits, sales, reports.

The merchant (secret key, or an owner/admin in the console) manages and reads everything; a
partner reads their own report and statement, and applies, through a signed partner session:
the publishable key plus the customer id signed by the shop's server, as the widget does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.merchants.models import AdminRole, ApiKeyKind
from app.partners import reports, splits
from app.partners import service as partner_service
from app.partners.models import Partner as PartnerModel
from app.referrals import codes as code_service
from app.referrals import customers
from app.schema.auth import actor_of
from app.schema.partner_types import (
    CommissionSplit,
    CommissionSplitPayload,
    Partner,
    PartnerDecision,
    PartnerGroup,
    PartnerGroupPayload,
    PartnerPayload,
    PartnerReportRow,
    PartnerSale,
    PartnerStatement,
    PartnerStatus,
    ReportGroupBy,
    money_list,
)
from app.schema.permissions import AnyKey, SecretKeyOrAdmin, accepts
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query
from app.widget.identity import SignedCustomer

# Deciding about partners and their money: the server, or an owner or admin in the console.
PartnerManager = accepts("PartnerManager", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER, AdminRole.ADMIN])


@strawberry.input(description="A partner session: the customer id signed by the shop's server, as for the widget.")
class PartnerSignatureInput:
    customer_external_id: str
    timestamp: BigInt = strawberry.field(description="Unix seconds when the shop's server signed.")
    signature: str = strawberry.field(
        description='HMAC-SHA256 of "{customerExternalId}.{timestamp}" with the widget secret, hex.'
    )

    def signed(self) -> SignedCustomer:
        return SignedCustomer(external_id=self.customer_external_id, timestamp=self.timestamp, signature=self.signature)


@strawberry.input
class SplitPartyInput:
    customer_external_id: str
    share_bps: int = strawberry.field(description="Basis points of the order amount (1-10000).")


async def _partners(session: AsyncSession, merchant_id: uuid.UUID, found: list[PartnerModel]) -> list[Partner]:
    history = await partner_service.status_history(session, merchant_id=merchant_id, partner_ids=[p.id for p in found])
    external_ids = await customers.external_ids(session, merchant_id=merchant_id, ids=[p.customer_id for p in found])
    return [Partner.of(p, external_ids, history) for p in found]


async def _payload(
    session: AsyncSession, merchant_id: uuid.UUID, partner: PartnerModel, link_code: str | None = None
) -> PartnerPayload:
    (converted,) = await _partners(session, merchant_id, [partner])
    return PartnerPayload(partner=converted, link_code=link_code)


async def _partner_caller(
    info: Info, session: AsyncSession, signature: PartnerSignatureInput | None, named: str | None
) -> partner_service.PartnerCaller:
    caller = await info.context.caller()
    return await partner_service.partner_caller(
        session,
        merchant_id=info.context.merchant_id,
        key_kind=caller.kind,
        signed=signature.signed() if signature is not None else None,
        named=named,
        app_settings=info.context.settings,
    )


async def _report_rows(session: AsyncSession, merchant_id: uuid.UUID, rows: list[reports.ReportRow]) -> list[PartnerReportRow]:
    external_ids = await customers.external_ids(session, merchant_id=merchant_id, ids=[r.affiliate_id for r in rows])
    code_ids = [r.code_id for r in rows if r.code_id]
    codes = (
        {c.id: c.code for c in await code_service.get_codes_by_ids(session, merchant_id=merchant_id, ids=code_ids)}
        if code_ids
        else {}
    )
    return [PartnerReportRow.of(r, external_ids, codes) for r in rows]


async def _statement(
    session: AsyncSession, merchant_id: uuid.UUID, program_id: uuid.UUID, external_id: str, start: datetime, end: datetime
) -> PartnerStatement:
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=external_id, field="customerExternalId"
    )
    found = await reports.statement(
        session, merchant_id=merchant_id, customer_id=customer.id, program_id=program_id, start=start, end=end
    )
    external_ids = await customers.external_ids(
        session, merchant_id=merchant_id, ids=[line.sale.affiliate_id for line in found.lines] + [customer.id]
    )
    return PartnerStatement(
        customer_external_id=customer.external_id,
        lines=[PartnerSale.of(line.sale, [line.share], external_ids) for line in found.lines],
        totals=money_list(found.totals),
    )


@strawberry.type
class PartnerQuery:
    @strawberry.field(
        permission_classes=[SecretKeyOrAdmin], description="The program's partners (up to 500), with their history."
    )
    async def partners(self, info: Info, program_id: strawberry.ID, status: PartnerStatus | None = None) -> list[Partner]:
        async def work(session: AsyncSession) -> list[Partner]:
            merchant_id = info.context.merchant_id
            found = await partner_service.list_partners(
                session, merchant_id=merchant_id, program_id=validation.parse_id(program_id, "programId"), status=status
            )
            return await _partners(session, merchant_id, found)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin])
    async def partner_groups(self, info: Info, program_id: strawberry.ID) -> list[PartnerGroup]:
        async def work(session: AsyncSession) -> list[PartnerGroup]:
            found = await partner_service.list_groups(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(program_id, "programId")
            )
            return [PartnerGroup.of(g) for g in found]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Every version of the program's (or a SKU's) split.")
    async def commission_split_history(
        self, info: Info, program_id: strawberry.ID, sku: str | None = None
    ) -> list[CommissionSplit]:
        async def work(session: AsyncSession) -> list[CommissionSplit]:
            merchant_id = info.context.merchant_id
            versions = await splits.split_history(
                session, merchant_id=merchant_id, program_id=validation.parse_id(program_id, "programId"), sku=sku
            )
            ids = [uuid.UUID(p["customer_id"]) for v in versions for p in v.parties]
            external_ids = await customers.external_ids(session, merchant_id=merchant_id, ids=ids)
            return [CommissionSplit.of(v, external_ids) for v in versions]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Each sale of the period with every party's share.")
    async def partner_sales(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        order_id: str | None = None,
    ) -> list[PartnerSale]:
        async def work(session: AsyncSession) -> list[PartnerSale]:
            merchant_id = info.context.merchant_id
            found = await reports.sales(
                session,
                merchant_id=merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                start=from_,
                end=to,
                order_id=order_id,
            )
            ids = [s.affiliate_id for s, _ in found] + [share.customer_id for _, shares in found for share in shares]
            external_ids = await customers.external_ids(session, merchant_id=merchant_id, ids=ids)
            return [PartnerSale.of(sale, shares, external_ids) for sale, shares in found]

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyKey],
        description="Clicks, conversions, revenue and commission per partner, link or sub-id, read live. The merchant's "
        "secret key reads every partner (or one: partnerExternalId); a partner session (publishable key + signature) "
        "reads its own rows only.",
    )
    async def partner_report(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        group_by: ReportGroupBy = reports.GroupBy.PARTNER,
        partner_external_id: str | None = None,
        signature: PartnerSignatureInput | None = None,
    ) -> list[PartnerReportRow]:
        async def work(session: AsyncSession) -> list[PartnerReportRow]:
            merchant_id = info.context.merchant_id
            program = validation.parse_id(program_id, "programId")
            external_id = (await _partner_caller(info, session, signature, partner_external_id)).external_id
            affiliate_id = None
            if external_id is not None:
                partner = await partner_service.partner_of_customer(
                    session, merchant_id=merchant_id, program_id=program, customer_external_id=external_id
                )
                affiliate_id = partner.customer_id
            rows = await reports.partner_report(
                session,
                merchant_id=merchant_id,
                program_id=program,
                start=from_,
                end=to,
                group_by=group_by,
                affiliate_id=affiliate_id,
            )
            return await _report_rows(session, merchant_id, rows)

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyKey],
        description="A party's own shares (affiliate or co-producer) of the period's sales. Secret key: any customer "
        "(customerExternalId); partner session: the signed customer only.",
    )
    async def partner_statement(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        customer_external_id: str | None = None,
        signature: PartnerSignatureInput | None = None,
    ) -> PartnerStatement:
        async def work(session: AsyncSession) -> PartnerStatement:
            who = await _partner_caller(info, session, signature, customer_external_id)
            external_id = who.required("whose statement?")
            return await _statement(
                session, info.context.merchant_id, validation.parse_id(program_id, "programId"), external_id, from_, to
            )

        return await query(info, work)


@strawberry.type
class PartnerMutation:
    @strawberry.mutation(
        permission_classes=[AnyKey],
        description="Apply to an AFFILIATE program (status APPLIED, with a tracking code). The merchant's secret key "
        "applies for any customer; a partner session (publishable key + signature) for the signed customer only.",
    )
    async def apply_as_partner(
        self,
        info: Info,
        program_id: strawberry.ID,
        customer_external_id: str | None = None,
        note: str | None = None,
        email: str | None = None,
        name: str | None = None,
        signature: PartnerSignatureInput | None = None,
    ) -> PartnerPayload:
        async def work(session: AsyncSession) -> PartnerPayload:
            merchant_id = info.context.merchant_id
            who = await _partner_caller(info, session, signature, customer_external_id)
            external_id = who.required("who applies?")
            enrolment = await partner_service.apply_as_partner(
                session,
                merchant_id=merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                customer_external_id=external_id,
                note=note,
                email=email,
                name=name,
                actor=None if who.signed_in else actor_of(info.context),
            )
            return await _payload(session, merchant_id, enrolment.partner, link_code=enrolment.code.code)

        return await mutate(info, PartnerPayload, work)

    @strawberry.mutation(permission_classes=[PartnerManager], description="Invite a customer: APPLIED until you approve.")
    async def invite_partner(
        self,
        info: Info,
        program_id: strawberry.ID,
        customer_external_id: str,
        email: str | None = None,
        name: str | None = None,
    ) -> PartnerPayload:
        async def work(session: AsyncSession) -> PartnerPayload:
            merchant_id = info.context.merchant_id
            enrolment = await partner_service.apply_as_partner(
                session,
                merchant_id=merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                customer_external_id=customer_external_id,
                email=email,
                name=name,
                invited=True,
                actor=actor_of(info.context),
            )
            return await _payload(session, merchant_id, enrolment.partner, link_code=enrolment.code.code)

        return await mutate(info, PartnerPayload, work)

    @strawberry.mutation(
        permission_classes=[PartnerManager],
        description="APPROVE (APPLIED/REJECTED -> ACTIVE), REJECT (APPLIED), SUSPEND (ACTIVE), REACTIVATE (SUSPENDED). "
        "REJECT and SUSPEND need a reason. Audited.",
    )
    async def decide_partner(
        self, info: Info, partner_id: strawberry.ID, decision: PartnerDecision, reason: str | None = None
    ) -> PartnerPayload:
        async def work(session: AsyncSession) -> PartnerPayload:
            merchant_id = info.context.merchant_id
            partner = await partner_service.decide(
                session,
                merchant_id=merchant_id,
                partner_id=validation.parse_id(partner_id, "partnerId"),
                decision=decision,
                reason=reason,
                actor=actor_of(info.context),
            )
            return await _payload(session, merchant_id, partner)

        return await mutate(info, PartnerPayload, work)

    @strawberry.mutation(permission_classes=[PartnerManager])
    async def create_partner_group(
        self, info: Info, program_id: strawberry.ID, name: str, commission_bps: int | None = None
    ) -> PartnerGroupPayload:
        async def work(session: AsyncSession) -> PartnerGroupPayload:
            group = await partner_service.create_group(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                name=name,
                commission_bps=commission_bps,
            )
            return PartnerGroupPayload(group=PartnerGroup.of(group))

        return await mutate(info, PartnerGroupPayload, work)

    @strawberry.mutation(permission_classes=[PartnerManager], description="A new rate for the group's sales from now on.")
    async def update_partner_group(self, info: Info, group_id: strawberry.ID, commission_bps: int | None) -> PartnerGroupPayload:
        async def work(session: AsyncSession) -> PartnerGroupPayload:
            group = await partner_service.update_group(
                session,
                merchant_id=info.context.merchant_id,
                group_id=validation.parse_id(group_id, "groupId"),
                commission_bps=commission_bps,
            )
            return PartnerGroupPayload(group=PartnerGroup.of(group))

        return await mutate(info, PartnerGroupPayload, work)

    @strawberry.mutation(permission_classes=[PartnerManager], description="Put a partner in a group (null: none).")
    async def assign_partner_group(self, info: Info, partner_id: strawberry.ID, group_id: strawberry.ID | None) -> PartnerPayload:
        async def work(session: AsyncSession) -> PartnerPayload:
            merchant_id = info.context.merchant_id
            partner = await partner_service.assign_group(
                session,
                merchant_id=merchant_id,
                partner_id=validation.parse_id(partner_id, "partnerId"),
                group_id=validation.parse_id(group_id, "groupId") if group_id else None,
            )
            return await _payload(session, merchant_id, partner)

        return await mutate(info, PartnerPayload, work)

    @strawberry.mutation(
        permission_classes=[PartnerManager],
        description="A new version of the program's (or a SKU's: the action's metadata.sku) commission split. Shares "
        "are basis points of the order amount, each above 0, together at most 10000; the rest stays with you.",
    )
    async def set_commission_split(
        self,
        info: Info,
        program_id: strawberry.ID,
        parties: list[SplitPartyInput],
        affiliate_bps: int | None = None,
        sku: str | None = None,
    ) -> CommissionSplitPayload:
        async def work(session: AsyncSession) -> CommissionSplitPayload:
            merchant_id = info.context.merchant_id
            split = await splits.set_split(
                session,
                merchant_id=merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                sku=sku,
                affiliate_bps=affiliate_bps,
                parties=[splits.SplitParty(p.customer_external_id, p.share_bps) for p in parties],
            )
            external_ids = await customers.external_ids(
                session, merchant_id=merchant_id, ids=[uuid.UUID(p["customer_id"]) for p in split.parties]
            )
            return CommissionSplitPayload(split=CommissionSplit.of(split, external_ids))

        return await mutate(info, CommissionSplitPayload, work)
