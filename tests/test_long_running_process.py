"""What a long-running API process does for itself: pooled connections the database server
closed (a restart, an idle timeout, an operator's pg_terminate_backend) are replaced at
checkout, so the next request is answered, not failed (the check reads the driver's state and
costs no round trip: app.db._closed_by_the_server); and what the process built at start is
taken out of the garbage collector's sight (app.main.freeze_what_start_built), the collector
runs at a pace for requests (app.main.collector_paced_for_requests), and a request's objects are
freed as it ends, by their last reference, not left in reference cycles for the collector
(whose pass over them stopped every request in flight: app.schema.execution, "Freed as it ends")."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import YOUNG_COLLECTION_EVERY, create_app
from app.schema.context import Context
from tests import graphql_ops as ops
from tests.conftest import APP_ROLE
from tests.rewards.helpers import create_rule
from tests.scenarios import active_program, click, code_for
from tests.schema.test_query_count import FIVE_RULES, HOT_PURCHASE


async def _end_the_app_connections(owner_engine) -> int:
    """What a server restart does to the API's connections, as seen by the pool: every one of
    them is closed by the server while it waits in the pool. Returns how many were ended."""
    async with owner_engine.connect() as admin:
        ended = await admin.scalar(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = :role"
            ),
            {"role": APP_ROLE},
        )
        for _ in range(200):  # until the backends have exited and closed their sockets
            left = await admin.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = :role"),
                {"role": APP_ROLE},
            )
            if left == 0:
                break
            await asyncio.sleep(0.01)
        await admin.rollback()
    await asyncio.sleep(0.05)  # the event loop reads the closed sockets
    return ended


@pytest.mark.postgresql_only(reason="a server that closes connections")
async def test_the_api_answers_after_the_server_closed_its_pooled_connections(backend, tenant, owner_engine):
    query = "{ apiKeys { kind } }"
    assert len((await tenant.gql(query))["apiKeys"]) == 2

    assert await _end_the_app_connections(owner_engine) >= 1

    for _ in range(3):  # more requests than the one connection that was in use
        assert len((await tenant.gql(query))["apiKeys"]) == 2


@pytest.mark.postgresql_only(reason="a server that closes connections")
async def test_a_closed_connection_is_replaced_by_a_new_one(backend, db, database_url, owner_engine):
    engine = create_engine(database_url, pool_size=1)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            before = await session.scalar(text("SELECT pg_backend_pid()"))
        async with sessions() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) == before  # pooled: the same one

        await _end_the_app_connections(owner_engine)

        async with sessions() as session:
            after = await session.scalar(text("SELECT pg_backend_pid()"))
        assert after != before
    finally:
        await engine.dispose()


async def test_what_the_process_built_at_start_is_out_of_the_collectors_sight(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", broker_url="stub://", app_env="test", secret_key="test-secret"
    )
    app = create_app(settings).app
    built_at_start = app.state.settings
    assert any(tracked is built_at_start for tracked in gc.get_objects())  # the collector walks it
    before = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            assert not any(tracked is built_at_start for tracked in gc.get_objects())
            made_later = {"a": [1]}
            assert any(tracked is made_later for tracked in gc.get_objects())  # requests' objects are collected as before
            # young collections at a serving process's pace, not every 700 new objects
            assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *before[1:])
        assert gc.get_threshold() == before  # the process that hosted the app gets its own back
    finally:
        gc.unfreeze()
        await app.state.engine.dispose()


async def test_the_hot_paths_leave_none_of_their_objects_to_the_collector(backend, tenant):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    for rule in FIVE_RULES:
        await create_rule(tenant, program["id"], **rule)

    async def purchase(customer: str) -> dict:
        variables = {
            "i": {
                "type": "PURCHASE",
                "customerExternalId": customer,
                "idempotencyKey": f"order-{customer}",
                "amount": 5000,
                "currency": "USD",
                "referralCode": code,
                "context": {"email": f"{customer}@example.com", "deviceId": f"d-{customer}", "ip": "10.1.2.3"},
            }
        }
        return (await tenant.gql(HOT_PURCHASE, variables))["recordAction"]

    assert (await purchase("first"))["userErrors"] == []  # what a process builds once is built
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # the collector keeps what it would free, to be looked at
    try:
        assert (await click(tenant, code))["attributionToken"]
        answer = await purchase("bob")
        page = await tenant.gql(ops.REFERRALS, {"first": 50})
        gc.collect()
        left = [
            type(o).__qualname__
            for o in gc.garbage
            if isinstance(o, (Session, SessionTransaction, AsyncSession, StrawberryGraphQLCoreExecutionContext, Context))
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()

    assert answer["userErrors"] == [] and len(answer["rewards"]) == 4
    assert len(page["referrals"]["edges"]) == 2
    assert left == []
