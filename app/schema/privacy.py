"""Customers' data rights: exports, erasure, retention settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.db import utcnow
from app.privacy import downloads, erasure, export, retention
from app.privacy import models as privacy_models
from app.schema.errors import UserError, not_found
from app.schema.permissions import SecretKey
from app.schema.referral_types import Customer
from app.schema.scalars import JSON
from app.schema.transactions import mutate, query

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
ExportStatus: TypeAlias = privacy_models.ExportStatus
strawberry.enum(ExportStatus, name="CustomerDataExportStatus")


@strawberry.type(description="A customer's data as one JSON document, built by a job; downloadable once.")
class CustomerDataExport:
    id: strawberry.ID
    status: ExportStatus
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="The download link works until then.")
    downloaded_at: datetime | None
    size_bytes: int | None
    download_url: str | None = strawberry.field(
        description="While READY: a signed link that downloads the document once (no API key needed; keep it private)."
    )
    customer_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: privacy_models.CustomerDataExport, info: Info) -> CustomerDataExport:
        context = info.context
        return cls(
            id=strawberry.ID(str(m.id)),
            status=privacy_models.ExportStatus(m.status),
            requested_at=m.requested_at,
            ready_at=m.ready_at,
            expires_at=m.expires_at,
            downloaded_at=m.downloaded_at,
            size_bytes=m.document_bytes,
            download_url=downloads.link_of(context.settings, m, str(context.request.base_url), utcnow()),
            customer_id=m.customer_id,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return Customer.from_model(await info.context.get_loaders().customer.load(self.customer_id))


@strawberry.type
class CustomerDataExportPayload:
    export: CustomerDataExport | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="What erasing a customer did, and the pseudonym they go by since.")
class CustomerErasure:
    customer_id: strawberry.ID
    pseudonym: str = strawberry.field(description="The customer's externalId from now on (erased-...).")
    reason: str
    erased_at: datetime
    changes: JSON = strawberry.field(description="Rows changed per table.")


@strawberry.type
class EraseCustomerPayload:
    erasure: CustomerErasure | None = None
    customer: Customer | None = None
    replayed: bool = strawberry.field(default=False, description="The customer was erased before; nothing changed now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PrivacySettings:
    retention_months: int = strawberry.field(
        description="Clicks', actions' and fraud evidence's networks and browsers are coarsened after this many months."
    )
    retention_applied_through: datetime | None = strawberry.field(description="What the retention job has coarsened so far.")


@strawberry.type
class PrivacySettingsPayload:
    settings: PrivacySettings | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _settings(m: privacy_models.PrivacySettings) -> PrivacySettings:
    return PrivacySettings(retention_months=m.retention_months, retention_applied_through=m.retention_applied_through)


@strawberry.type
class PrivacyQuery:
    @strawberry.field(permission_classes=[SecretKey], description="An export and, while it is ready, its download link.")
    async def customer_data_export(self, info: Info, id: strawberry.ID) -> CustomerDataExport:
        async def work(session: AsyncSession) -> CustomerDataExport:
            found = await export.get_export(
                session, merchant_id=info.context.merchant_id, export_id=validation.parse_id(id, "id")
            )
            if found is None:
                raise not_found("export")
            return CustomerDataExport.from_model(found, info)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey])
    async def privacy_settings(self, info: Info) -> PrivacySettings:
        async def work(session: AsyncSession) -> PrivacySettings:
            return _settings(await retention.get_settings(session, merchant_id=info.context.merchant_id))

        return await query(info, work)


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="Start building everything stored about a customer as one JSON document (see customerDataExport).",
    )
    async def export_customer_data(self, info: Info, customer_external_id: str) -> CustomerDataExportPayload:
        async def work(session: AsyncSession) -> CustomerDataExportPayload:
            item = await export.request_export(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=customer_external_id,
                actor=info.context.actor,
            )
            return CustomerDataExportPayload(export=CustomerDataExport.from_model(item, info))

        return await mutate(info, CustomerDataExportPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="Erase a customer's personal data; amounts, rewards, referrals and the ledger stay. Idempotent.",
    )
    async def erase_customer(self, info: Info, customer_external_id: str, reason: str) -> EraseCustomerPayload:
        async def work(session: AsyncSession) -> EraseCustomerPayload:
            done = await erasure.erase_customer(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=customer_external_id,
                reason=reason,
                actor=info.context.actor,
            )
            record = done.record
            return EraseCustomerPayload(
                erasure=CustomerErasure(
                    customer_id=strawberry.ID(str(record.customer_id)),
                    pseudonym=record.pseudonym,
                    reason=record.reason,
                    erased_at=record.erased_at,
                    changes=record.changes,
                ),
                customer=Customer.from_model(done.customer),
                replayed=done.replayed,
            )

        return await mutate(info, EraseCustomerPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey])
    async def set_privacy_settings(self, info: Info, retention_months: int) -> PrivacySettingsPayload:
        async def work(session: AsyncSession) -> PrivacySettingsPayload:
            settings = await retention.set_retention(
                session, merchant_id=info.context.merchant_id, months=retention_months, actor=info.context.actor
            )
            return PrivacySettingsPayload(settings=_settings(settings))

        return await mutate(info, PrivacySettingsPayload, work)
