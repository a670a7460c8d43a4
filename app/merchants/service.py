"""Creating merchants and managing their API keys."""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, column, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import bind_tenant, table_of, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants.models import AdminRole, ApiKey, ApiKeyKind, Merchant

_KEY_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = 32  # 62^32 ~ 2^190


@dataclass(frozen=True)
class IssuedKey:
    """A key as it is created: the only moment its plaintext exists."""

    api_key: ApiKey
    plaintext: str


@dataclass(frozen=True)
class Caller:
    """Who is calling: a merchant's API key, or one of its admins through a session
    (`app.merchants.sessions`); never both."""

    merchant_id: uuid.UUID
    key_id: uuid.UUID | None
    kind: ApiKeyKind | None
    admin_id: uuid.UUID | None = None
    admin_role: AdminRole | None = None
    session_id: uuid.UUID | None = None
    # merchants.config_version when the key was read (app.config_cache); None for sessions
    config_version: int | None = None


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_merchant(session: AsyncSession, *, name: str) -> Merchant:
    merchant = Merchant(name=validation.required_text(name, "name", 200))
    session.add(merchant)
    await session.flush()
    return merchant


async def get_merchant(session: AsyncSession, *, merchant_id: uuid.UUID) -> Merchant | None:
    return await session.get(Merchant, merchant_id)


async def list_merchants(session: AsyncSession) -> list[Merchant]:
    return list((await session.scalars(select(Merchant).order_by(Merchant.id))).all())


async def create_api_key(
    session: AsyncSession, *, merchant_id: uuid.UUID, kind: ApiKeyKind, name: str | None = None
) -> IssuedKey:
    plaintext = kind.prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))
    api_key = ApiKey(
        merchant_id=merchant_id,
        kind=kind.value,
        name=validation.text(name, "name", 100),
        key_hash=hash_key(plaintext),
        last4=plaintext[-4:],
    )
    session.add(api_key)
    await session.flush()
    return IssuedKey(api_key=api_key, plaintext=plaintext)


async def set_rate_limits(session: AsyncSession, *, merchant_id: uuid.UUID, changes: dict[str, str | None]) -> dict[str, str]:
    """The operator's budgets for one merchant's keys (`None` returns one to the default)."""
    from app.ratelimits import validated_overrides

    merchant = await session.scalar(select(Merchant).where(Merchant.id == merchant_id).with_for_update())
    if merchant is None:
        raise NotFound("merchant", "merchant")
    try:
        merchant.rate_limits = validated_overrides(changes, merchant.rate_limits) or None
    except ValueError as error:
        raise DomainError("limits", ErrorCode.INVALID_INPUT, str(error)) from None
    await session.flush()
    return dict(merchant.rate_limits or {})


async def list_api_keys(session: AsyncSession, *, merchant_id: uuid.UUID) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(ApiKey.id)
    return list((await session.scalars(query)).all())


async def _active_secret_keys(session: AsyncSession, merchant_id: uuid.UUID, now: datetime) -> list[ApiKey]:
    keys = await list_api_keys(session, merchant_id=merchant_id)
    return [k for k in keys if k.key_kind is ApiKeyKind.SECRET and k.is_active(now)]


async def get_api_key(session: AsyncSession, *, merchant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    api_key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id))
    if api_key is None:
        raise NotFound("id", "API key")
    return api_key


async def revoke_api_key(session: AsyncSession, *, merchant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoke at once. The last active secret key cannot go: it would lock the merchant out."""
    now = utcnow()
    api_key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id).with_for_update())
    if api_key is None:
        raise NotFound("id", "API key")
    if api_key.revoked_at is not None:
        raise DomainError("id", ErrorCode.ALREADY_REVOKED, "this API key is already revoked")
    if api_key.key_kind is ApiKeyKind.SECRET:
        others = [k for k in await _active_secret_keys(session, merchant_id, now) if k.id != api_key.id]
        if not others:
            raise DomainError("id", ErrorCode.LAST_SECRET_KEY, "create another secret key before revoking the last one")
    api_key.revoked_at = now
    await session.flush()
    return api_key


async def rotate_api_keys(
    session: AsyncSession, *, merchant_id: uuid.UUID, kind: ApiKeyKind, grace: timedelta = timedelta(0)
) -> IssuedKey:
    """Issue a new key and retire every active key of the same kind after `grace`,
    so deployments can switch over without downtime."""
    now = utcnow()
    if await get_merchant(session, merchant_id=merchant_id) is None:
        raise NotFound("merchant", "merchant")
    issued = await create_api_key(session, merchant_id=merchant_id, kind=kind, name="rotated")
    for api_key in await list_api_keys(session, merchant_id=merchant_id):
        if api_key.id != issued.api_key.id and api_key.key_kind is kind and api_key.is_active(now):
            if grace:
                api_key.expires_at = min(api_key.expires_at or now + grace, now + grace)
            else:
                api_key.revoked_at = now
    await session.flush()
    return issued


# The key lookup of every request, built once: on PostgreSQL the function (cross-tenant read and
# tenant scope in one), on SQLite the join it stands for.
# Its columns are typed (not text): read as the join's columns are, and runnable prepared (app.prepared).
_AUTHENTICATE_POSTGRESQL = select(
    *(
        column(name, table_of(model).c[source].type)
        for name, model, source in [
            ("key_id", ApiKey, "id"),
            ("key_merchant_id", ApiKey, "merchant_id"),
            ("key_kind", ApiKey, "kind"),
            ("key_expires_at", ApiKey, "expires_at"),
            ("key_revoked_at", ApiKey, "revoked_at"),
            ("config_version", Merchant, "config_version"),
        ]
    )
).select_from(func.referral_authenticate(bindparam("key_hash", type_=String)))
_AUTHENTICATE = (
    select(
        ApiKey.id.label("key_id"),
        ApiKey.merchant_id.label("key_merchant_id"),
        ApiKey.kind.label("key_kind"),
        ApiKey.expires_at.label("key_expires_at"),
        ApiKey.revoked_at.label("key_revoked_at"),
        Merchant.config_version,
    )
    .join(Merchant, Merchant.id == ApiKey.merchant_id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


async def authenticate(session: AsyncSession, *, plaintext: str) -> Caller | None:
    """The caller behind an API key, or None. On PostgreSQL the lookup is the database function
    `referral_authenticate` (migration 0006): it may read the key across tenants, and it scopes
    the rest of the transaction to the key's merchant, in one round trip; `bind_tenant` keeps
    the scope for the session's later transactions."""
    if not plaintext.startswith(("sk_", "pk_")) or len(plaintext) > 64:
        return None
    postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"
    lookup = _AUTHENTICATE_POSTGRESQL if postgresql else _AUTHENTICATE
    row = (await session.execute(lookup, {"key_hash": hash_key(plaintext)})).one_or_none()
    if row is None or row.key_revoked_at is not None or (row.key_expires_at is not None and row.key_expires_at <= utcnow()):
        return None
    bind_tenant(session, row.key_merchant_id)
    return Caller(
        merchant_id=row.key_merchant_id, key_id=row.key_id, kind=ApiKeyKind(row.key_kind), config_version=row.config_version
    )
