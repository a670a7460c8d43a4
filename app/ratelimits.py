"""Request budgets per API key and per client IP (the `limits` library, sliding windows).

Separate budgets for secret keys (the shop's server), publishable keys (browsers: a low budget
per visitor IP, a high one per key shared by all visitors), requests without a key, failed
authentication, and publishable lookups of codes (an existence oracle: lookups and misses are
counted per IP). Counters live in Redis when REDIS_URL (or a redis:// BROKER_URL) is set, so
every API process shares them; in memory otherwise (the embedded mode: per process).

A refused request gets 429 with `Retry-After` and `RateLimit-*` headers. Once an IP has spent
its failed-authentication budget, every request from it that carries a key is refused without
looking the key up, so guessing keys is not possible at any speed. The operator can raise or
lower the key budgets of one merchant (`referral merchants limits`).
"""

from __future__ import annotations

import enum
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings

logger = logging.getLogger("app.ratelimits")


class Budget(enum.Enum):
    SECRET_KEY = "secret_key"
    SECRET_IP = "secret_ip"
    PUBLISHABLE_KEY = "publishable_key"
    PUBLISHABLE_IP = "publishable_ip"
    ANONYMOUS_IP = "anonymous_ip"
    FAILED_AUTH_IP = "failed_auth_ip"
    CODE_LOOKUP_IP = "code_lookup_ip"
    CODE_MISS_IP = "code_miss_ip"


DEFAULT_BUDGETS: dict[Budget, str] = {
    Budget.SECRET_KEY: "3000/minute",
    Budget.SECRET_IP: "3000/minute",
    Budget.PUBLISHABLE_KEY: "6000/minute",  # every visitor of the shop shares the key
    Budget.PUBLISHABLE_IP: "120/minute",  # one visitor's browser
    Budget.ANONYMOUS_IP: "120/minute",
    Budget.FAILED_AUTH_IP: "20/10minutes",
    Budget.CODE_LOOKUP_IP: "30/minute",
    Budget.CODE_MISS_IP: "10/10minutes",
}
# What the operator may set per merchant (the others protect the deployment, not a merchant).
MERCHANT_BUDGETS = (Budget.SECRET_KEY, Budget.SECRET_IP, Budget.PUBLISHABLE_KEY, Budget.PUBLISHABLE_IP)
_OVERRIDES_TTL = 60.0  # seconds a process keeps a merchant's budgets before reading them again


def parse_budget(value: str, field: str = "limit") -> RateLimitItem:
    """`"120/minute"`, `"20/10minutes"`, ... (the `limits` notation); a ValueError otherwise."""
    try:
        item = parse(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a rate limit such as 120/minute") from None
    if item.amount < 1:
        raise ValueError(f"{field}: {value!r} allows nothing")
    return item


@dataclass(frozen=True)
class Refusal:
    """A spent budget: what the 429 says."""

    budget: Budget
    limit: RateLimitItem
    retry_after: int

    @property
    def message(self) -> str:
        return (
            f"rate limit exceeded ({self.budget.value}: {self.limit.amount} per {self.window} s); retry in {self.retry_after} s"
        )

    @property
    def window(self) -> int:
        return self.limit.get_expiry()

    def headers(self) -> dict[str, str]:
        return {
            "retry-after": str(self.retry_after),
            "ratelimit-limit": str(self.limit.amount),
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(self.retry_after),
            "ratelimit-policy": f'{self.limit.amount};w={self.window};comment="{self.budget.value}"',
        }


def storage_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return "memory://"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        url = storage_url(settings)
        if url.startswith(("redis://", "rediss://")):
            storage: Any = RedisStorage(f"async+{url}", implementation="redispy", key_prefix=settings.rate_limit_key_prefix)
        else:
            storage = MemoryStorage()
        self.shared = not isinstance(storage, MemoryStorage)
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        unknown = set(settings.rate_limits) - {b.value for b in Budget}
        if unknown:
            raise ValueError(f"unknown rate limit budgets: {', '.join(sorted(unknown))}")
        budgets = {**{b: v for b, v in DEFAULT_BUDGETS.items()}, **{Budget(n): v for n, v in settings.rate_limits.items()}}
        self.items = {budget: parse_budget(value, f"RATE_LIMIT_{budget.name}") for budget, value in budgets.items()}
        self._overrides: dict[uuid.UUID, tuple[float, dict[Budget, RateLimitItem]]] = {}
        self._storage_failed_at = 0.0

    async def spend(self, budget: Budget, identifier: str, *, item: RateLimitItem | None = None) -> Refusal | None:
        """Count one request against `budget` for `identifier`; a Refusal when it is spent."""
        item = item or self.items[budget]
        try:
            if await self.limiter.hit(item, budget.value, identifier):
                return None
            stats = await self.limiter.get_window_stats(item, budget.value, identifier)
        except Exception:  # the counters' store is down: serve rather than fail every request
            self._storage_down()
            return None
        return Refusal(budget, item, max(1, math.ceil(stats.reset_time - time.time())))

    async def exhausted(self, budget: Budget, identifier: str) -> Refusal | None:
        """A Refusal if `budget` is spent for `identifier`, without counting a request."""
        item = self.items[budget]
        try:
            if await self.limiter.test(item, budget.value, identifier):
                return None
            stats = await self.limiter.get_window_stats(item, budget.value, identifier)
        except Exception:
            self._storage_down()
            return None
        return Refusal(budget, item, max(1, math.ceil(stats.reset_time - time.time())))

    async def merchant_items(self, session_run: Any, merchant_id: uuid.UUID) -> dict[Budget, RateLimitItem]:
        """The merchant's own budgets where the operator set them, read at most once a minute."""
        cached = self._overrides.get(merchant_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        raw = await session_run(lambda session: merchant_overrides(session, merchant_id))
        items = {}
        for name, value in (raw or {}).items():
            try:
                items[Budget(name)] = parse_budget(value, name)
            except ValueError:
                logger.warning("ignoring an invalid rate limit", extra={"merchant_id": str(merchant_id), "budget": name})
        self._overrides[merchant_id] = (now + _OVERRIDES_TTL, items)
        return items

    def _storage_down(self) -> None:
        now = time.monotonic()
        if now - self._storage_failed_at > 60:
            logger.warning("rate limit storage unreachable: requests are not being limited", exc_info=True)
            self._storage_failed_at = now


async def merchant_overrides(session: AsyncSession, merchant_id: uuid.UUID) -> dict[str, str] | None:
    from app.merchants.models import Merchant

    return await session.scalar(select(Merchant.rate_limits).where(Merchant.id == merchant_id))


def validated_overrides(values: dict[str, str | None], current: dict[str, str] | None) -> dict[str, str]:
    """The merchant's budgets after a change (`None` clears one); a ValueError names a bad one."""
    result = dict(current or {})
    for name, value in values.items():
        budget = Budget(name)
        if budget not in MERCHANT_BUDGETS:
            raise ValueError(f"{name} cannot be set per merchant")
        if value is None:
            result.pop(name, None)
        else:
            parse_budget(value, name)
            result[name] = value
    return result
