"""Settings, read once from the environment.

Every knob a deployment needs is an environment variable; the defaults give the embedded
development setup (a SQLite file next to the code, an in-process worker).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import lru_cache

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./referral.db"
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = "stub://"
    app_env: str = "development"  # development | test | production
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    max_body_bytes: int = 256 * 1024
    trusted_proxies: tuple = field(default_factory=tuple)
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 4000
    database_pool_size: int = 10
    embedded_worker: bool = False  # run dramatiq worker threads inside the API process
    # Webhooks may target loopback/private/link-local addresses (a receiver on your own
    # machine). ALLOW_PRIVATE_WEBHOOK_TARGETS; by default on only when APP_ENV=development.
    allow_private_webhook_targets: bool = False
    # The HTTP server (`referral serve`): see app/server.py.
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: int = 5
    max_connections: int = 1000  # per API process; beyond it, 503
    # Rate limits (app/ratelimits.py): budgets by name overriding the defaults, e.g.
    # {"publishable_ip": "60/minute"} from RATE_LIMIT_PUBLISHABLE_IP=60/minute.
    rate_limits_enabled: bool = True
    rate_limits: dict = field(default_factory=dict)
    redis_url: str = ""  # rate limit counters; a redis:// BROKER_URL is used when empty
    rate_limit_key_prefix: str = "referral-rl"
    # --- merchant admins, second factor and payouts (see `_admin_and_payout_settings`) ---
    encryption_keys: str = ""  # ENCRYPTION_KEYS: "id:base64(32 bytes),..."; the first encrypts (app/crypto.py)
    public_url: str = ""  # PUBLIC_URL: the API's public base URL, for signed download links
    admin_session_minutes: int = 12 * 60  # an admin session's absolute lifetime
    admin_idle_minutes: int = 30  # an admin session unused this long ends
    argon2_time_cost: int = 3  # Argon2id parameters for admin passwords (RFC 9106, second choice)
    argon2_memory_kib: int = 64 * 1024
    payout_download_minutes: int = 15  # how long a signed batch-file link works
    # --- privacy: exports (see `_privacy_settings`); personal data at rest uses ENCRYPTION_KEYS above ---
    export_link_hours: int = 24  # how long a customer data export can be downloaded (once)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        app_env = env.get("APP_ENV", "development")
        secret_key = env.get("SECRET_KEY", "")
        if not secret_key:
            if app_env == "production":
                raise RuntimeError("SECRET_KEY must be set when APP_ENV=production")
            # Development and tests only: a fixed, public key, so that what is encrypted with
            # it (webhook signing secrets) can still be read after a restart. Never secret.
            secret_key = DEVELOPMENT_SECRET_KEY
        return cls(
            database_url=env.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            broker_url=env.get("BROKER_URL", "stub://"),
            app_env=app_env,
            secret_key=secret_key,
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT", "8000")),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(256 * 1024))),
            trusted_proxies=_networks(env.get("TRUSTED_PROXIES", "")),
            max_query_depth=int(env.get("GRAPHQL_MAX_DEPTH", "12")),
            max_aliases=int(env.get("GRAPHQL_MAX_ALIASES", "30")),
            max_tokens=int(env.get("GRAPHQL_MAX_TOKENS", "4000")),
            database_pool_size=int(env.get("DATABASE_POOL_SIZE", "10")),
            embedded_worker=_embedded_worker(env),
            allow_private_webhook_targets=_flag(env.get("ALLOW_PRIVATE_WEBHOOK_TARGETS"), default=app_env == "development"),
            max_header_bytes=int(env.get("MAX_HEADER_BYTES", str(32 * 1024))),
            header_timeout_seconds=float(env.get("HEADER_TIMEOUT_SECONDS", "10")),
            keepalive_timeout_seconds=int(env.get("KEEPALIVE_TIMEOUT_SECONDS", "5")),
            max_connections=int(env.get("MAX_CONNECTIONS", "1000")),
            rate_limits_enabled=_flag(env.get("RATE_LIMITS_ENABLED"), default=True),
            rate_limits={
                name.removeprefix("RATE_LIMIT_").lower(): value
                for name, value in env.items()
                if name.startswith("RATE_LIMIT_") and value.strip()
            },
            redis_url=env.get("REDIS_URL", ""),
            **_admin_and_payout_settings(env),
            **_privacy_settings(env),
        )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _admin_and_payout_settings(env: dict[str, str]) -> dict:
    """Merchant admins, their sessions and second factor, payouts (issue 10)."""
    return {
        "encryption_keys": env.get("ENCRYPTION_KEYS", ""),
        "public_url": env.get("PUBLIC_URL", ""),
        "admin_session_minutes": int(env.get("ADMIN_SESSION_MINUTES", str(12 * 60))),
        "admin_idle_minutes": int(env.get("ADMIN_IDLE_MINUTES", "30")),
        "argon2_time_cost": int(env.get("ARGON2_TIME_COST", "3")),
        "argon2_memory_kib": int(env.get("ARGON2_MEMORY_KIB", str(64 * 1024))),
        "payout_download_minutes": int(env.get("PAYOUT_DOWNLOAD_MINUTES", "15")),
    }


def _privacy_settings(env: dict[str, str]) -> dict:
    """Customer data exports (ENCRYPTION_KEYS and PUBLIC_URL are read with the admins' settings)."""
    return {"export_link_hours": int(env.get("EXPORT_LINK_HOURS", "24"))}


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _embedded_worker(env: dict[str, str]) -> bool:
    """EMBEDDED_WORKER=1/0; by default on with the in-process (stub) broker, off otherwise."""
    value = env.get("EMBEDDED_WORKER", "auto")
    if value == "auto":
        return env.get("BROKER_URL", "stub://").startswith("stub://")
    return value in ("1", "true", "yes")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
