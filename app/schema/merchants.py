"""The caller's merchant and its API keys."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.db import utcnow
from app.errors import DomainError
from app.merchants import service, totp
from app.schema.auth import caller_of
from app.schema.errors import UserError, not_found
from app.schema.merchant_types import ApiKey, ApiKeyKind, Merchant
from app.schema.permissions import SecretKey, SecretKeyOrOwner
from app.schema.transactions import mutate, query


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
        async def work(session: AsyncSession) -> Merchant:
            merchant = await service.get_merchant(session, merchant_id=info.context.merchant_id)
            if merchant is None:
                raise not_found("merchant")
            return Merchant.from_model(merchant)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrOwner])
    async def api_keys(self, info: Info) -> list[ApiKey]:
        async def work(session: AsyncSession) -> list[ApiKey]:
            now = utcnow()
            return [ApiKey.from_model(k, now) for k in await service.list_api_keys(session, merchant_id=info.context.merchant_id)]

        return await query(info, work)


@strawberry.type
class MerchantMutation:
    @strawberry.mutation(
        permission_classes=[SecretKeyOrOwner],
        description="A new key, shown only in this response. A secret key (your server), or an OWNER session with a "
        "code from their authenticator app (totpCode, or a recoveryCode): a stolen session alone issues none.",
    )
    async def create_api_key(
        self,
        info: Info,
        kind: ApiKeyKind,
        name: str | None = None,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> CreateApiKeyPayload:
        async def work(session: AsyncSession) -> CreateApiKeyPayload:
            refused = await _second_factor(session, info, totp_code, recovery_code, "create_api_key")
            if refused is not None:  # committed: a wrong code counts toward the lockout
                return CreateApiKeyPayload(user_errors=[UserError.from_domain(refused)])
            issued = await service.create_api_key(session, merchant_id=info.context.merchant_id, kind=kind, name=name)
            return CreateApiKeyPayload(api_key=ApiKey.from_model(issued.api_key, utcnow()), key=issued.plaintext)

        return await mutate(info, CreateApiKeyPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrOwner],
        description="Revoke at once. The last active secret key cannot be revoked. An OWNER session also gives a code "
        "from their authenticator app (totpCode, or a recoveryCode).",
    )
    async def revoke_api_key(
        self, info: Info, id: strawberry.ID, totp_code: str | None = None, recovery_code: str | None = None
    ) -> ApiKeyPayload:
        async def work(session: AsyncSession) -> ApiKeyPayload:
            key_id = validation.parse_id(id, "id")
            await service.get_api_key(session, merchant_id=info.context.merchant_id, key_id=key_id)  # no code spent on a wrong id
            refused = await _second_factor(session, info, totp_code, recovery_code, "revoke_api_key")
            if refused is not None:
                return ApiKeyPayload(user_errors=[UserError.from_domain(refused)])
            api_key = await service.revoke_api_key(session, merchant_id=info.context.merchant_id, key_id=key_id)
            return ApiKeyPayload(api_key=ApiKey.from_model(api_key, utcnow()))

        return await mutate(info, ApiKeyPayload, work)


async def _second_factor(
    session: AsyncSession, info: Info, totp_code: str | None, recovery_code: str | None, purpose: str
) -> DomainError | None:
    """None for a secret key (the merchant's server); a person's session must prove their second factor."""
    caller = caller_of(info.context)
    if caller.admin_id is None:
        return None
    return await totp.confirm(
        session,
        settings=info.context.settings,
        merchant_id=caller.merchant_id,
        admin_id=caller.admin_id,
        proof=totp.Proof(totp_code=totp_code, recovery_code=recovery_code),
        purpose=purpose,
        actor=info.context.actor,
    )
