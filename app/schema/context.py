"""Per-request context: one database session, the authenticated caller, and DataLoaders.

Loaders are built per request and scoped to the caller's merchant, so a cached object can
never leak to another tenant or another request.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from app.clientip import client_ip
from app.config import Settings
from app.fraud import reviews as fraud_reviews
from app.merchants import audit
from app.merchants.models import ApiKeyKind
from app.merchants.service import Caller
from app.ratelimits import Budget, RateLimiter, Refusal
from app.referrals import codes, customers, programs, queries
from app.rewards import queries as reward_queries
from app.rewards import rules as reward_rules
from app.schema import auth
from app.schema.errors import PublicError

logger = logging.getLogger("app.graphql")
T = TypeVar("T")


class RequestFinished(RuntimeError):
    """Work asked for the session after the response was built (an abandoned DataLoader batch)."""


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
    # be used by two coroutines at once: every use goes through `run`, one at a time.
    _session_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _in_flight: set[asyncio.Future[Any]] = field(default_factory=set)
    _closed: bool = False
    loaders: Loaders | None = field(default=None)
    rate_limiter: RateLimiter | None = None  # None: not limited (tests that count on no budgets)

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` with the request's session, alone, to its end.

        graphql-core cancels the sibling resolvers of a field that failed. A database call
        cancelled half-way leaves its connection unusable (and a mutation's answer lost after
        its commit), so the work runs in a task of its own that a cancelled resolver stops
        waiting for but does not interrupt; `close` waits for every such task."""
        if self._closed:
            raise RequestFinished("the request has been answered; its session is closed")
        task = asyncio.ensure_future(self._run_locked(work))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(task)

    async def _run_locked(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._session_lock:
            if self._closed:
                raise RequestFinished("the request has been answered; its session is closed")
            if self._session is None:
                self._session = self.session_factory()
            return await work(self._session)

    async def close(self) -> None:
        """After the response is built: wait for work still running, then close the session.
        Never raises: the answer is already decided, and a failed close only costs the pool
        a connection (logged). The loaders are let go, so what they hold (a page's customers,
        their futures) is freed at once by reference counting rather than left to the cyclic
        garbage collector (see `Loaders`)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        async with self._session_lock:
            self._closed = True
            if self._session is not None:
                try:
                    await self._session.close()
                except Exception:
                    logger.warning("closing the request's session failed", exc_info=True)
            self.loaders = None

    async def caller(self) -> Caller | None:
        """The merchant behind the request's API key (`Authorization: Bearer sk_...`) or
        admin session (`Bearer sess_...`, see app.schema.auth)."""
        if not self._authenticated:
            token = self.bearer_token()
            if token is not None:
                caller = await self.run(lambda session: auth.authenticate_bearer(self, session, token))
                if not self._authenticated:
                    self._caller = caller
            self._authenticated = True
        return self._caller

    def bearer_token(self) -> str | None:
        scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    async def admit(self) -> Refusal | None:
        """Spend this request's budgets (per client IP, per key); a Refusal when one is spent.
        Authenticates the caller as it goes, so the operation reuses the lookup."""
        limiter = self.rate_limiter
        if limiter is None:
            return None
        ip = self.client_ip or "unknown"
        if self.bearer_token() is None:
            return await limiter.spend(Budget.ANONYMOUS_IP, ip)
        refusal = await limiter.exhausted(Budget.FAILED_AUTH_IP, ip)
        if refusal is not None:
            return refusal  # the key is not even looked up: no guessing at any speed
        caller = await self.caller()
        if caller is None:
            await limiter.spend(Budget.FAILED_AUTH_IP, ip)
            return await limiter.spend(Budget.ANONYMOUS_IP, ip)
        own = await limiter.merchant_items(self.run, caller.merchant_id)
        if caller.kind is ApiKeyKind.PUBLISHABLE:
            key_budget, ip_budget = Budget.PUBLISHABLE_KEY, Budget.PUBLISHABLE_IP
        else:
            key_budget, ip_budget = Budget.SECRET_KEY, Budget.SECRET_IP
        credential = caller.key_id or caller.session_id  # an API key, or an admin's session
        return await limiter.spend(ip_budget, f"{caller.merchant_id}:{ip}", item=own.get(ip_budget)) or await limiter.spend(
            key_budget, str(credential), item=own.get(key_budget)
        )

    async def credential_check(self, attempt: Callable[[], Awaitable[T]], *, failed: Callable[[T], bool]) -> T:
        """A password or a one-time token checked by a mutation spends the IP's failed
        authentication budget when wrong, like a wrong key; once that is spent, such checks
        are refused unchecked (no guessing at any speed)."""
        limiter = self.rate_limiter
        ip = self.client_ip or "unknown"
        if limiter is not None:
            refusal = await limiter.exhausted(Budget.FAILED_AUTH_IP, ip)
            if refusal is not None:
                self.request.state.refusal = refusal
                raise PublicError(refusal.message, "RATE_LIMITED")
        result = await attempt()
        if limiter is not None and failed(result):
            await limiter.spend(Budget.FAILED_AUTH_IP, ip)
        return result

    async def code_lookup(self, lookup: Callable[[], Awaitable[T]]) -> T:
        """A publishable lookup of a code tells whether it exists: a small budget per IP for
        lookups, a smaller one for misses (`lookup` returning None). Secret keys are not limited."""
        limiter = self.rate_limiter
        if limiter is None or self._caller is None or self._caller.kind is not ApiKeyKind.PUBLISHABLE:
            return await lookup()
        ip = self.client_ip or "unknown"
        refusal = await limiter.exhausted(Budget.CODE_MISS_IP, ip) or await limiter.spend(Budget.CODE_LOOKUP_IP, ip)
        if refusal is not None:
            self.request.state.refusal = refusal
            raise PublicError(refusal.message, "RATE_LIMITED")
        found = await lookup()
        if found is None:
            await limiter.spend(Budget.CODE_MISS_IP, ip)
        return found

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
    def config_version(self) -> int | None:
        """The merchant's configuration version read with the caller's key (app.config_cache)."""
        return self._caller.config_version if self._caller is not None else None

    @property
    def key_id(self) -> uuid.UUID | None:
        """The caller's API key (None: an admin's session): who did it, for the audit log."""
        if self._caller is None:
            raise PublicError("a valid API key is required", "UNAUTHENTICATED")
        return self._caller.key_id

    def get_loaders(self) -> Loaders:
        if self.loaders is None:
            self.loaders = Loaders(self)
        return self.loaders

    @cached_property
    def client_ip(self) -> str | None:
        peer = self.request.client.host if self.request.client else None
        return client_ip(peer, self.request.headers.get("x-forwarded-for", ""), self.settings.trusted_proxies)


R = TypeVar("R")


def loaded_or_later(loader: DataLoader[Any, R], key: Hashable, convert: Callable[[R], T]) -> T:
    """`convert(row)` at once when this request has loaded `key` already (a list resolver
    preloads what its page's nodes refer to, `preload`), else an awaitable of it, which
    graphql-core awaits like an async resolver's result. A field answered at once costs no
    coroutine and no task: a page of 50 referrals with referrer and referee made 150 tasks."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return convert(future.result())

    async def later() -> T:
        return convert(await loader.load(key))

    return cast(T, later())


async def preload(info: Info[Any, Any], relations: Sequence[tuple[str, DataLoader[Any, Any], list[Hashable]]]) -> None:
    """Load, before the nodes resolve, the keys of each relation the query asks for somewhere
    below this field (`relations`: field name, its loader, the keys it would load): one batch
    per loader, the loaders at once."""
    wanted = _selected_names(info.selected_fields)
    keys: dict[DataLoader[Any, Any], dict[Hashable, None]] = {}
    for name, loader, field_keys in relations:
        if name in wanted:
            keys.setdefault(loader, {}).update(dict.fromkeys(field_keys))
    await asyncio.gather(*(_into_cache(loader, list(loader_keys)) for loader, loader_keys in keys.items() if loader_keys))


async def _into_cache(loader: DataLoader[Any, Any], keys: list[Hashable]) -> None:
    """What `loader.load_many(keys)` leaves in the loader's cache, without a future per key
    gathered (100 of them on a page of 50 referrals, a tenth of its CPU): the batch function
    called once for the keys not cached or in flight yet, its answers primed."""
    missing = [key for key in keys if loader.cache_map.get(key) is None]
    if missing:
        loader.prime_many(dict(zip(missing, await loader.load_fn(missing), strict=True)))


def _selected_names(selections: Sequence[Any]) -> set[str]:
    """Every field name selected at any depth below (fragments included)."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        names |= _selected_names(selection.selections)
    return names


def _by_key(rows: Sequence[Any], keys: Sequence[Hashable], key: Callable[[Any], Hashable]) -> list[Any]:
    found = {key(row): row for row in rows}
    return [found.get(k) for k in keys]


def _grouped(rows: Sequence[Any], keys: Sequence[Hashable], key: Callable[[Any], Hashable]) -> list[list[Any]]:
    groups: dict[Hashable, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


class Loaders:
    """Batch loaders for the relations that list fields resolve (no N+1 queries).

    Their batch functions refer to the request's context, not to this object: a loader whose
    function referred back to its `Loaders` made a reference cycle, so every row a request
    loaded (100 customers with their ORM state on a page of 50 referrals, some 1,650 objects)
    outlived the request until a full collection of the cyclic collector found it."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self.customer = DataLoader(self._one(customers.customer_records_by_ids, "ids", lambda r: r.id))
        self.program = DataLoader(self._one(programs.get_programs_by_ids, "ids", lambda r: r.id))
        self.referral_code = DataLoader(self._one(codes.get_codes_by_ids, "ids", lambda r: r.id))
        self.referral = DataLoader(self._one(queries.get_referrals_by_ids, "ids", lambda r: r.id))
        self.codes_by_customer = DataLoader(self._many(codes.get_codes_by_customer_ids, "customer_ids", lambda r: r.customer_id))
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

    def _one(
        self, fetch: Callable[..., Awaitable[list[Any]]], argument: str, key: Callable[[Any], Hashable]
    ) -> Callable[[list[uuid.UUID]], Awaitable[list[Any]]]:
        context = self._context

        async def load(keys: list[uuid.UUID]) -> list[Any]:
            merchant_id = context.merchant_id
            rows = await context.run(lambda session: fetch(session, merchant_id=merchant_id, **{argument: keys}))
            return _by_key(rows, keys, key)

        return load

    def _many(
        self, fetch: Callable[..., Awaitable[list[Any]]], argument: str, key: Callable[[Any], Hashable]
    ) -> Callable[[list[uuid.UUID]], Awaitable[list[list[Any]]]]:
        context = self._context

        async def load(keys: list[uuid.UUID]) -> list[list[Any]]:
            merchant_id = context.merchant_id
            rows = await context.run(lambda session: fetch(session, merchant_id=merchant_id, **{argument: keys}))
            return _grouped(rows, keys, key)

        return load
