"""PostgreSQL plans the code lookup of a click, a widget read and a referred purchase once per
connection, not on every execution: planning it cost six times running it. PostgreSQL plans a
prepared statement afresh each time unless its generic plan looks no dearer than the plans it
made for the values given, so a statement whose parameter hides how many values it holds (an
array) stays on per-call planning once the table has a few thousand codes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db import create_engine, create_session_factory
from app.referrals import codes
from tests.conftest import system_connection

CODES = 3000


async def _plans(session, fragment: str) -> tuple[int, int]:
    """(generic, custom) plans of the session connection's most executed prepared statement
    containing `fragment` (a statement's first run takes SQLAlchemy's path: another one)."""
    rows = (
        await session.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE :f "
                "ORDER BY generic_plans + custom_plans DESC LIMIT 1"
            ),
            {"f": f"%{fragment}%"},
        )
    ).all()
    assert rows, f"no prepared statement contains {fragment!r}"
    return rows[0][0], rows[0][1]


@pytest.mark.postgresql_only(reason="what PostgreSQL's plan cache does")
async def test_a_code_lookup_is_planned_once_per_connection_at_thousands_of_codes(db, owner_engine, database_url, tenant):
    program = await tenant.gql('mutation { createProgram(input: {name: "P", status: ACTIVE}) { program { id } } }')
    program_id = program["createProgram"]["program"]["id"]
    async with system_connection(db) as connection:
        await connection.execute(
            text(
                "INSERT INTO customers (id, merchant_id, external_id, created_at, updated_at) "
                "SELECT gen_random_uuid(), :m, 'bulk' || g, now(), now() FROM generate_series(1, :n) g"
            ),
            {"m": tenant.id, "n": CODES},
        )
        await connection.execute(
            text(
                "INSERT INTO referral_codes (id, merchant_id, program_id, customer_id, code, lookup_key, is_vanity, active, "
                "created_at) SELECT gen_random_uuid(), merchant_id, :p, id, 'BULK' || substr(external_id, 5), "
                "'bulk' || substr(external_id, 5), false, true, now() FROM customers WHERE merchant_id = :m"
            ),
            {"m": tenant.id, "p": program_id},
        )
    async with owner_engine.connect() as connection:
        await connection.execute(text("ANALYZE customers, referral_codes, programs"))

    engine = create_engine(database_url, pool_size=1)  # a new connection: nothing prepared on it yet
    async with create_session_factory(engine)() as session:  # one transaction: one connection
        for i in range(1, 9):
            found = await codes.find_code_and_program(session, merchant_id=tenant.id, code=f"bulk-{i * 7}")
            assert found is not None and found[0].code == f"BULK{i * 7}"
        generic, custom = await _plans(session, "FROM referral_codes JOIN programs")
        # PostgreSQL's rule: the first five executions are planned for their values; from
        # the sixth on, the generic plan is used if it looks no dearer.
        assert (generic, custom) == (2, 5)  # the first of the eight ran on SQLAlchemy's path
    await engine.dispose()
