"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

Each backend gets a fresh database per test session, built by the alembic migrations (never
by `create_all`), and every table is emptied after each test. PostgreSQL comes from
TEST_POSTGRES_URL (default: the local server); when it is unreachable the PostgreSQL half is
skipped, unless REQUIRE_SERVICES=1, which makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.config import Settings
from app.db import Base, create_engine, create_session_factory
from app.main import create_app
from app.merchants import service as merchants
from app.merchants.models import ApiKeyKind
from app.migrations import grant_app_role, upgrade
from app.models import load_all_models
from app.webhooks import service as webhook_service

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

load_all_models()
# Every webhook payload is built and checked for plain JSON types, also without endpoints.
webhook_service.CHECK_EVERY_PAYLOAD = True


async def _create_postgres_database() -> str:
    name = f"referral_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def _drop_postgres_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


APP_ROLE = "referral_test_app"  # the API's login in tests: no superuser, no BYPASSRLS, owns nothing


async def _ensure_app_role() -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        pass  # made by an earlier run (roles belong to the whole server)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def owner_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The database as its owner sees it: migrations run here (and tests empty it here)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'referral.db'}"
        return
    try:
        name = await _create_postgres_database()
        await _ensure_app_role()
    except (OSError, asyncpg.PostgresError) as error:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL is required (REQUIRE_SERVICES=1) but unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    await _drop_postgres_database(name)


@pytest.fixture(scope="session")
def database_url(owner_database_url: str) -> str:
    """What the API, the workers and the fixtures use: on PostgreSQL the application's role, so
    row-level security is enforced in every test (requests see their merchant, jobs and
    fixtures run in the system scope)."""
    if not owner_database_url.startswith("postgresql"):
        return owner_database_url
    scheme, rest = owner_database_url.split("://", 1)
    return f"{scheme}://{APP_ROLE}@{rest.split('@', 1)[1]}"


@pytest.fixture(scope="session")
async def owner_engine(owner_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(owner_database_url, pool_size=2)
    await upgrade(engine)
    if engine.dialect.name == "postgresql":
        await grant_app_role(engine, APP_ROLE)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def engine(owner_engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    if owner_engine.dialect.name == "sqlite":
        yield owner_engine
        return
    engine = create_engine(database_url, pool_size=25)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def _backend_marks(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("postgresql_only")
    if marker is not None and "backend" in request.fixturenames and request.getfixturevalue("backend") != "postgresql":
        why = marker.kwargs.get("reason", "SQLite serialises writers, so there is no race to test")
        pytest.skip(f"PostgreSQL only: {why}")


async def _empty_all_tables(engine: AsyncEngine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@asynccontextmanager
async def system_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A raw connection that sees every merchant (row-level security's system scope, for this
    transaction only), for tests that inspect or change what was stored; commits at the end."""
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT set_config('app.scope', 'system', true)"))
        yield connection


@pytest.fixture
async def db(engine: AsyncEngine, owner_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The migrated engine, emptied after the test."""
    yield engine
    await _empty_all_tables(owner_engine)


@pytest.fixture
async def session(db: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_session_factory(db)() as session:
        yield session


def test_settings(**overrides: Any) -> Settings:
    # Rate limits are off unless a test turns them on (tests/test_rate_limits.py): the suite
    # sends thousands of requests from one address. Argon2 at its cheapest: tests hash many
    # passwords; production keeps RFC 9106's parameters.
    values: dict[str, Any] = {
        "app_env": "test",
        "secret_key": "test-secret",
        "rate_limits_enabled": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings() -> Settings:
    return test_settings()


@pytest.fixture
async def client(db: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=db)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@dataclass
class Tenant:
    """A merchant with a secret and a publishable key, and a GraphQL caller using them."""

    id: uuid.UUID
    secret_key: str
    publishable_key: str
    client: httpx.AsyncClient
    engine: AsyncEngine

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        """Run an operation; fail the test on any top-level GraphQL error."""
        body = await self.raw(query, variables, key=key)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def raw(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key or self.secret_key}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


async def create_tenant(engine: AsyncEngine, client: httpx.AsyncClient, name: str) -> Tenant:
    async with create_session_factory(engine)() as session:
        merchant = await merchants.create_merchant(session, name=name)
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        publishable = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.PUBLISHABLE)
        await session.commit()
    return Tenant(
        id=merchant.id, secret_key=secret.plaintext, publishable_key=publishable.plaintext, client=client, engine=engine
    )


@pytest.fixture
async def tenant(db: AsyncEngine, client: httpx.AsyncClient) -> Tenant:
    return await create_tenant(db, client, "Shop A")


@pytest.fixture
async def other_tenant(db: AsyncEngine, client: httpx.AsyncClient) -> Tenant:
    return await create_tenant(db, client, "Shop B")


class StatementCounter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.through_sqlalchemy: list[str] = []

    def __enter__(self) -> StatementCounter:
        # Count what production runs: payloads are built only for listening endpoints there.
        webhook_service.CHECK_EVERY_PAYLOAD = False
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)
        webhook_service.CHECK_EVERY_PAYLOAD = True

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)
        if cursor is not None:  # app.prepared runs a statement on the driver and passes no cursor
            self.through_sqlalchemy.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(db: AsyncEngine):
    return lambda: StatementCounter(db)


class Clock:
    """The time second factors (TOTP) are checked at; starts mid-step, so codes never straddle two."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.now = now.replace(second=10 if now.second < 30 else 40, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    from app.merchants import totp

    found = Clock()
    monkeypatch.setattr(totp, "current_time", found)
    return found
