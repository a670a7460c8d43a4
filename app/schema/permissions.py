"""Who may call what. Secret keys can do everything for their merchant; publishable keys
(in a browser) only the widget's operations."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.merchants.models import ApiKeyKind
from app.schema.errors import PublicError


class _KeyRequired(BasePermission):
    allowed: frozenset[ApiKeyKind] = frozenset()

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        caller = await info.context.caller()
        if caller is None:
            raise PublicError("a valid API key is required (Authorization: Bearer <key>)", "UNAUTHENTICATED")
        if caller.kind not in self.allowed:
            raise PublicError("this operation needs a secret API key (sk_...)", "FORBIDDEN")
        return True


class SecretKey(_KeyRequired):
    """Server-to-server operations: anything that reads or changes a merchant's data."""

    allowed = frozenset({ApiKeyKind.SECRET})


class AnyKey(_KeyRequired):
    """Widget operations, callable from a browser with a publishable key."""

    allowed = frozenset({ApiKeyKind.SECRET, ApiKeyKind.PUBLISHABLE})
