"""GraphQL types of merchants: the merchant itself and its API keys."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import strawberry

from app.merchants import models as merchant_models
from app.schema.common import gid

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
ApiKeyKind: TypeAlias = merchant_models.ApiKeyKind
strawberry.enum(ApiKeyKind, name="ApiKeyKind")


@strawberry.type
class Merchant:
    id: strawberry.ID
    name: str
    created_at: datetime

    @classmethod
    def from_model(cls, m: merchant_models.Merchant) -> Merchant:
        return cls(id=gid(m.id), name=m.name, created_at=m.created_at)


@strawberry.type(description="An API key as listed: never the key itself, only its kind and last 4 characters.")
class ApiKey:
    id: strawberry.ID
    kind: ApiKeyKind
    name: str | None
    masked_key: str = strawberry.field(description='e.g. "sk_…a1B2"')
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def from_model(cls, m: merchant_models.ApiKey, now: datetime) -> ApiKey:
        return cls(
            id=gid(m.id),
            kind=m.key_kind,
            name=m.name,
            masked_key=m.masked,
            last4=m.last4,
            created_at=m.created_at,
            expires_at=m.expires_at,
            revoked_at=m.revoked_at,
            active=m.is_active(now),
        )
