"""PostgreSQL row-level security, the second wall behind the application's merchant filters.

The suite runs the API as a role that owns nothing and cannot bypass the policies (see
conftest.py), so every PostgreSQL test already exercises the wall; these tests attack it
directly: raw SQL and a service whose merchant filter was removed, inside merchant A's request,
must not see or touch merchant B."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.db import TENANT, create_session_factory
from app.merchants import service as merchants
from app.migrations import row_level_security_gaps
from app.referrals import customers
from app.referrals.models import Customer
from tests import graphql_ops as ops
from tests.scenarios import active_program, code_for


@pytest.fixture(autouse=True)
def _postgresql(backend):
    if backend != "postgresql":
        pytest.skip("row-level security is PostgreSQL's; SQLite (embedded mode) has the application's filters only")


@pytest.fixture
async def two_shops(tenant, other_tenant, backend):
    for shop, name in ((tenant, "alice"), (other_tenant, "bella")):
        program = await active_program(shop)
        await code_for(shop, program["id"], name)
        data = await shop.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": f"{name}-friend", "email": f"{name}@example.com"}})
        assert data["upsertCustomer"]["userErrors"] == []
    return tenant, other_tenant


async def request_session(db, key: str):
    """A session as the API opens one for a request, after authenticating `key`."""
    session = create_session_factory(db, scope=TENANT)()
    assert await merchants.authenticate(session, plaintext=key) is not None
    return session


async def test_the_api_role_cannot_pass_the_policies_and_every_tenant_table_has_one(db, backend):
    assert await row_level_security_gaps(db) == []


async def test_raw_sql_in_a_request_of_merchant_a_sees_no_row_of_merchant_b(db, two_shops):
    shop_a, shop_b = two_shops
    async with await request_session(db, shop_a.secret_key) as session:
        tables = (
            (
                await session.execute(
                    text(
                        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'merchant_id' "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
                    )
                )
            )
            .scalars()
            .all()
        )
        assert "customers" in tables and len(tables) >= 24
        for table in tables:  # no WHERE clause at all: the policy is the only filter
            merchants_seen = set((await session.execute(text(f"SELECT DISTINCT merchant_id FROM {table}"))).scalars())
            assert merchants_seen <= {shop_a.id}, table
        assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 2
        assert (await session.execute(text("SELECT id FROM merchants"))).scalars().all() == [shop_a.id]

        changed = await session.execute(text("UPDATE customers SET name = 'taken' WHERE merchant_id = :b"), {"b": shop_b.id})
        assert changed.rowcount == 0
        deleted = await session.execute(text("DELETE FROM referral_codes WHERE merchant_id = :b"), {"b": shop_b.id})
        assert deleted.rowcount == 0
        await session.commit()

        session.add(Customer(merchant_id=shop_b.id, external_id="planted"))
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.flush()  # writing into B's rows is refused too (WITH CHECK)
        await session.rollback()


async def test_a_service_without_its_merchant_filter_still_cannot_read_another_merchant(two_shops, monkeypatch):
    shop_a, shop_b = two_shops

    async def unfiltered(session, *, merchant_id, external_id):  # the bug the wall is for
        return await session.scalar(select(Customer).where(Customer.external_id == external_id))

    async with create_session_factory(shop_a.engine)() as system:  # without the wall, it would find B's customer
        assert await unfiltered(system, merchant_id=shop_a.id, external_id="bella-friend") is not None
    monkeypatch.setattr(customers, "get_customer", unfiltered)
    body = await shop_a.raw('{ customer(externalId: "bella-friend") { id email } }')

    assert body["data"] == {"customer": None} and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    mine = await shop_a.gql('{ customer(externalId: "alice-friend") { email } }')
    assert mine["customer"]["email"] == "alice@example.com"  # the request itself still works


async def test_a_request_session_sees_nothing_before_authentication(db, two_shops):
    async with create_session_factory(db, scope=TENANT)() as session:
        assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 0
        assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar() == 0
        assert await merchants.authenticate(session, plaintext="sk_" + "x" * 32) is None
        assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 0  # a failed lookup opens nothing


async def test_a_revoked_key_does_not_open_its_merchant(db, two_shops):
    shop_a, _ = two_shops
    async with create_session_factory(db)() as system:
        await system.execute(text("UPDATE api_keys SET revoked_at = now() WHERE merchant_id = :a"), {"a": shop_a.id})
        await system.commit()
    async with create_session_factory(db, scope=TENANT)() as session:
        assert await merchants.authenticate(session, plaintext=shop_a.secret_key) is None
        assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 0


async def test_the_system_scope_of_jobs_and_commands_sees_every_merchant(db, two_shops):
    shop_a, shop_b = two_shops
    async with create_session_factory(db, reason="test: a job spanning merchants")() as session:
        seen = set((await session.execute(text("SELECT DISTINCT merchant_id FROM customers"))).scalars())
        reason = (await session.execute(text("SELECT current_setting('app.scope_reason')"))).scalar()
    assert seen == {shop_a.id, shop_b.id}
    assert reason == "test: a job spanning merchants"
