"""The caller's merchant and its API keys."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app import validation
from app.db import utcnow
from app.merchants import service
from app.schema.errors import UserError, not_found
from app.schema.permissions import SecretKey
from app.schema.transactions import mutate, query
from app.schema.types import ApiKey, ApiKeyKind, Merchant


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None = None
    key: str | None = strawberry.field(default=None, description="The full key. Shown only in this response.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MerchantQuery:
    @strawberry.field(permission_classes=[SecretKey], description="The merchant that owns the API key.")
    async def viewer(self, info: Info) -> Merchant:
        async def work(session):
            merchant = await service.get_merchant(session, merchant_id=info.context.merchant_id)
            if merchant is None:
                raise not_found("merchant")
            return Merchant.from_model(merchant)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey])
    async def api_keys(self, info: Info) -> list[ApiKey]:
        async def work(session):
            now = utcnow()
            return [ApiKey.from_model(k, now) for k in await service.list_api_keys(session, merchant_id=info.context.merchant_id)]

        return await query(info, work)


@strawberry.type
class MerchantMutation:
    @strawberry.mutation(permission_classes=[SecretKey])
    async def create_api_key(self, info: Info, kind: ApiKeyKind, name: str | None = None) -> CreateApiKeyPayload:
        async def work(session):
            issued = await service.create_api_key(session, merchant_id=info.context.merchant_id, kind=kind, name=name)
            return CreateApiKeyPayload(api_key=ApiKey.from_model(issued.api_key, utcnow()), key=issued.plaintext)

        return await mutate(info, CreateApiKeyPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Revoke at once. The last active secret key cannot be revoked.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKeyPayload:
        async def work(session):
            key_id = validation.parse_id(id, "id")
            api_key = await service.revoke_api_key(session, merchant_id=info.context.merchant_id, key_id=key_id)
            return ApiKeyPayload(api_key=ApiKey.from_model(api_key, utcnow()))

        return await mutate(info, ApiKeyPayload, work)
