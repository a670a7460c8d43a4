"""Customers, identified by the merchant's own external id."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app.referrals import customers as service
from app.schema.errors import UserError, not_found
from app.schema.permissions import SecretKey
from app.schema.referral_types import Customer
from app.schema.scalars import JSON
from app.schema.transactions import mutate, query


@strawberry.input
class UpsertCustomerInput:
    external_id: str
    email: str | None = None
    name: str | None = None
    metadata: JSON | None = None


@strawberry.type
class CustomerPayload:
    customer: Customer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerQuery:
    @strawberry.field(permission_classes=[SecretKey])
    async def customer(self, info: Info, external_id: str) -> Customer | None:
        async def work(session: AsyncSession) -> Customer | None:
            customer = await service.get_customer(
                session, merchant_id=info.context.merchant_id, external_id=service.external_id(external_id, "externalId")
            )
            if customer is None:
                raise not_found("customer")
            return Customer.from_model(customer)

        return await query(info, work)


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(permission_classes=[SecretKey], description="Create or update; omitted fields keep their value.")
    async def upsert_customer(self, info: Info, input: UpsertCustomerInput) -> CustomerPayload:
        async def work(session: AsyncSession) -> CustomerPayload:
            details = service.CustomerDetails(email=input.email, name=input.name, metadata=input.metadata).validated()
            customer = await service.upsert_customer(
                session,
                merchant_id=info.context.merchant_id,
                external_id=service.external_id(input.external_id, "externalId"),
                details=details,
            )
            return CustomerPayload(customer=Customer.from_model(customer))

        return await mutate(info, CustomerPayload, work)
