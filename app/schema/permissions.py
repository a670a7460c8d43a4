"""Who may call what, declared on each operation.

Two kinds of credentials: API keys (`sk_...` secret keys for the merchant's server, `pk_...`
publishable keys in a browser) and admin sessions (`sess_...`, a person logged in, with a
role). An operation names what it accepts; anything else is FORBIDDEN. Money never moves on
a key alone: approving payouts accepts FINANCE and OWNER sessions only, and also needs the
admin's second factor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.permission import BasePermission

from app.merchants.models import AdminRole, ApiKeyKind
from app.schema.errors import PublicError


class Credentials(BasePermission):
    """Accepts the API key kinds in `keys` and admin sessions with a role in `roles`."""

    keys: frozenset[ApiKeyKind] = frozenset()
    roles: frozenset[AdminRole] = frozenset()

    async def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        caller = await info.context.caller()
        if caller is None:
            raise PublicError("a valid API key or session is required (Authorization: Bearer <key>)", "UNAUTHENTICATED")
        if caller.admin_role is not None:
            if caller.admin_role not in self.roles:
                raise PublicError(f"this operation is not open to admins with the {caller.admin_role.value} role", "FORBIDDEN")
        elif caller.kind not in self.keys:
            raise PublicError(f"this operation needs {self.needs()}", "FORBIDDEN")
        return True

    @classmethod
    def needs(cls) -> str:
        what = [
            {ApiKeyKind.SECRET: "a secret API key (sk_...)", ApiKeyKind.PUBLISHABLE: "a publishable key"}[k]
            for k in sorted(cls.keys, key=lambda k: k.value)
        ]
        if cls.roles:
            what.append("an admin session (" + "/".join(sorted(r.value for r in cls.roles)) + ")")
        return " or ".join(what)


def accepts(name: str, *, keys: Iterable[ApiKeyKind] = (), roles: Iterable[AdminRole] = ()) -> type[Credentials]:
    return type(name, (Credentials,), {"keys": frozenset(keys), "roles": frozenset(roles)})


ALL_ROLES = tuple(AdminRole)

# Server-to-server operations: anything that reads or changes a merchant's data.
SecretKey = accepts("SecretKey", keys=[ApiKeyKind.SECRET])
# Widget operations, callable from a browser with a publishable key.
AnyKey = accepts("AnyKey", keys=[ApiKeyKind.SECRET, ApiKeyKind.PUBLISHABLE])
# The merchant's server, or any of its people in the console.
SecretKeyOrAdmin = accepts("SecretKeyOrAdmin", keys=[ApiKeyKind.SECRET], roles=ALL_ROLES)
# Fraud reviews: the server, or people who review.
SecretKeyOrReviewer = accepts(
    "SecretKeyOrReviewer", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER, AdminRole.ADMIN, AdminRole.REVIEWER]
)
# Payouts the server may handle without moving money (reject, mark paid or failed).
SecretKeyOrFinance = accepts(
    "SecretKeyOrFinance", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER, AdminRole.ADMIN, AdminRole.FINANCE]
)
# The program's configuration (reward rules, webhook endpoints): the server, or its owners and
# admins in the console.
SecretKeyOrManager = accepts("SecretKeyOrManager", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER, AdminRole.ADMIN])
# The merchant's credentials, listed (masked): the server, or an owner in the console.
SecretKeyOrOwner = accepts("SecretKeyOrOwner", keys=[ApiKeyKind.SECRET], roles=[AdminRole.OWNER])
# A person in a session, whatever the role (their own profile, second factor, sessions).
AnyAdmin = accepts("AnyAdmin", roles=ALL_ROLES)
# Managing admins and the merchant's money controls.
Owner = accepts("Owner", roles=[AdminRole.OWNER])
# Holds are fraud controls: released by people only.
HoldReleaser = accepts("HoldReleaser", roles=[AdminRole.OWNER, AdminRole.ADMIN, AdminRole.FINANCE, AdminRole.REVIEWER])
# Moving money and reading bank details: FINANCE or OWNER, in a session.
Finance = accepts("Finance", roles=[AdminRole.FINANCE, AdminRole.OWNER])
