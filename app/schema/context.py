"""Per-request context: one database session, the authenticated caller, and DataLoaders.

Loaders are built per request and scoped to the caller's merchant, so a cached object can
never leak to another tenant or another request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from strawberry.dataloader import DataLoader

from app.config import Settings
from app.fraud import reviews as fraud_reviews
from app.merchants import audit
from app.merchants.service import Caller
from app.referrals import codes, customers, programs, queries
from app.rewards import queries as reward_queries
from app.rewards import rules as reward_rules
from app.schema import auth
from app.schema.errors import PublicError


@dataclass
class Context:
    request: Request
    response: Any
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    _session: AsyncSession | None = None
    _caller: Caller | None = None
    _authenticated: bool = False
    # Root fields and DataLoader batches resolve concurrently, but one AsyncSession must not
    # be used by two coroutines at once: every use goes through `using_session`.
    _session_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaders: "Loaders | None" = field(default=None)

    @asynccontextmanager
    async def using_session(self) -> AsyncIterator[AsyncSession]:
        async with self._session_lock:
            if self._session is None:
                self._session = self.session_factory()
            yield self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def caller(self) -> Caller | None:
        """The merchant behind the request's API key (`Authorization: Bearer sk_...`) or
        admin session (`Bearer sess_...`, see app.schema.auth)."""
        if not self._authenticated:
            async with self.using_session() as session:
                if not self._authenticated:
                    scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
                    if scheme.lower() == "bearer" and token:
                        self._caller = await auth.authenticate_bearer(self, session, token.strip())
                    self._authenticated = True
        return self._caller

    @property
    def actor(self) -> audit.Actor:
        """Who is calling, for the audit log: the API key or the admin's session."""
        return auth.actor_of(self)

    @property
    def merchant_id(self) -> uuid.UUID:
        """Only valid behind a permission class, which has authenticated the caller."""
        if self._caller is None:
            raise PublicError("a valid API key is required", "UNAUTHENTICATED")
        return self._caller.merchant_id

    @property
    def key_id(self) -> uuid.UUID:
        """The caller's API key: who did it, for the audit log."""
        if self._caller is None:
            raise PublicError("a valid API key is required", "UNAUTHENTICATED")
        return self._caller.key_id

    def get_loaders(self) -> "Loaders":
        if self.loaders is None:
            self.loaders = Loaders(self)
        return self.loaders

    @cached_property
    def client_ip(self) -> str | None:
        """The visitor's address: X-Forwarded-For is believed only when the direct peer is
        one of TRUSTED_PROXIES, and then read from the right past every trusted hop."""
        peer = self.request.client.host if self.request.client else None
        if peer is None or not self._is_trusted(peer):
            return peer
        hops = [h.strip() for h in self.request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.settings.trusted_proxies)


def _is_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    # A zone id ("fe80::1%eth0") is unbounded in length and meaningless off the host.
    return getattr(ip, "scope_id", None) is None


def _by_key(rows: Sequence[Any], keys: Sequence[Hashable], key: Callable[[Any], Hashable]) -> list[Any]:
    found = {key(row): row for row in rows}
    return [found.get(k) for k in keys]


def _grouped(rows: Sequence[Any], keys: Sequence[Hashable], key: Callable[[Any], Hashable]) -> list[list[Any]]:
    groups: dict[Hashable, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


class Loaders:
    """Batch loaders for the relations that list fields resolve (no N+1 queries)."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self.customer = DataLoader(self._one(customers.get_customers_by_ids, "ids", lambda r: r.id))
        self.program = DataLoader(self._one(programs.get_programs_by_ids, "ids", lambda r: r.id))
        self.referral_code = DataLoader(self._one(codes.get_codes_by_ids, "ids", lambda r: r.id))
        self.referral = DataLoader(self._one(queries.get_referrals_by_ids, "ids", lambda r: r.id))
        self.codes_by_customer = DataLoader(
            self._many(codes.get_codes_by_customer_ids, "customer_ids", lambda r: r.customer_id)
        )
        self.referrals_by_referee = DataLoader(
            self._many(queries.get_referrals_by_referee_ids, "referee_ids", lambda r: r.referee_id)
        )
        self.actions_by_referral = DataLoader(
            self._many(queries.get_actions_by_referral_ids, "referral_ids", lambda r: r.referral_id)
        )
        self.rule_version = DataLoader(self._one(reward_rules.get_rule_versions_by_ids, "ids", lambda r: r.id))
        self.rewards_by_referral = DataLoader(
            self._many(reward_queries.get_rewards_by_referral_ids, "referral_ids", lambda r: r.referral_id)
        )
        self.fraud_decisions_by_referral = DataLoader(
            self._many(fraud_reviews.decisions_of_referrals, "referral_ids", lambda r: r.referral_id)
        )
        self.fraud_decisions_by_review = DataLoader(
            self._many(fraud_reviews.decisions_of_reviews, "review_ids", lambda r: r.review_id)
        )
        self.coupons_by_reward = DataLoader(
            self._many(reward_queries.get_coupons_by_reward_ids, "reward_ids", lambda r: r.reward_id)
        )

    def _one(self, fetch: Callable[..., Awaitable[list[Any]]], argument: str, key: Callable[[Any], Hashable]):
        async def load(keys: list[uuid.UUID]) -> list[Any]:
            context = self._context
            async with context.using_session() as session:
                rows = await fetch(session, merchant_id=context.merchant_id, **{argument: keys})
            return _by_key(rows, keys, key)

        return load

    def _many(self, fetch: Callable[..., Awaitable[list[Any]]], argument: str, key: Callable[[Any], Hashable]):
        async def load(keys: list[uuid.UUID]) -> list[list[Any]]:
            context = self._context
            async with context.using_session() as session:
                rows = await fetch(session, merchant_id=context.merchant_id, **{argument: keys})
            return _grouped(rows, keys, key)

        return load
