"""PostgreSQL plans the hot reads once per connection, not on every execution: here the code
lookup of a click, a widget read and a referred purchase, whose planning cost six times its
running, and the fraud check's prefetch, whose planning cost ten times its running. PostgreSQL plans a prepared statement afresh each time unless its generic plan looks
no dearer than the plans it made for the values given, so a statement whose parameter hides how
many values it holds (an array) stays on per-call planning once the table holds a few thousand
rows. (The referrals page's `LIMIT $n` did the same at the benchmark's 10k referrals, not at the
10k of a test: `bench/` shows it, with pg_stat_statements.)"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from app.db import create_engine, create_session_factory, utcnow
from app.fraud import case as fraud_case
from app.referrals import clicks, codes
from app.referrals.models import Customer
from tests.conftest import system_connection

pytestmark = pytest.mark.postgresql_only(reason="what PostgreSQL's plan cache does")

ROWS = 3000


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


@pytest.fixture
async def thousands(db, owner_engine, tenant) -> str:
    """ROWS customers of the tenant, each with a code (BULK1, ...), analysed; returns the program's id."""
    program = await tenant.gql('mutation { createProgram(input: {name: "P", status: ACTIVE}) { program { id } } }')
    program_id = program["createProgram"]["program"]["id"]
    async with system_connection(db) as connection:
        await connection.execute(
            text(
                "INSERT INTO customers (id, merchant_id, external_id, created_at, updated_at) "
                "SELECT gen_random_uuid(), :m, 'bulk' || g, now(), now() FROM generate_series(1, :n) g"
            ),
            {"m": tenant.id, "n": ROWS},
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
    return program_id


@pytest.fixture
async def one_connection(database_url):
    """A session on a new connection (nothing prepared on it yet), in one transaction."""
    engine = create_engine(database_url, pool_size=1)
    async with create_session_factory(engine)() as session:
        yield session
    await engine.dispose()


# PostgreSQL's rule: the first five executions are planned for their values; from the sixth
# on, the generic plan is used if it looks no dearer. The first of eight runs takes
# SQLAlchemy's path, so the prepared statement runs seven times: five plans, then two reuses.
PLANNED_ONCE = (2, 5)


async def test_a_code_lookup_is_planned_once_per_connection_at_thousands_of_codes(thousands, one_connection, tenant):
    for i in range(1, 9):
        found = await codes.find_code_and_program(one_connection, merchant_id=tenant.id, code=f"bulk-{i * 7}")
        assert found is not None and found[0].code == f"BULK{i * 7}"
    assert await _plans(one_connection, "FROM referral_codes JOIN programs") == PLANNED_ONCE


async def test_a_click_is_planned_once_per_connection_at_thousands_of_codes(thousands, one_connection, tenant):
    """The click's one statement (the code and its program found, the click written) keeps its
    generic plan too: a click folded into one statement while the code lookup was still planned
    on every execution was slower than two statements."""
    for i in range(1, 9):
        tracked = await clicks.track_click(
            one_connection,
            merchant_id=tenant.id,
            code=f"bulk-{i * 7}",
            device_id=f"device-{i}",
            landing_url=None,
            context=clicks.ClickContext(ip=None, user_agent=None),
        )
        assert tracked.referral_code.code == f"BULK{i * 7}" and not tracked.repeated
    assert await _plans(one_connection, "WITH found AS") == PLANNED_ONCE


async def test_the_fraud_checks_prefetch_is_planned_once_on_its_generic_plan_which_reads_by_index(
    thousands, owner_engine, one_connection, tenant
):
    """The prefetch's lists reach it unseen by the planner (`app.db.one_of`), so PostgreSQL
    takes its generic plan after the five plans for values, made once per connection, and finds
    the customers seen with the referee's identifiers through the index, not by reading every
    identifier of the merchant; no setting of the transaction changes for it."""
    async with system_connection(one_connection.bind) as connection:
        await connection.execute(
            text(
                "INSERT INTO customer_identifiers (id, merchant_id, customer_id, kind, value_hash, first_seen_at, "
                "last_seen_at) SELECT gen_random_uuid(), merchant_id, id, kind, md5(kind || external_id), now(), now() "
                "FROM customers, unnest(ARRAY['DEVICE', 'PAYMENT', 'IP']) AS kind WHERE merchant_id = :m"
            ),
            {"m": tenant.id},
        )
    async with owner_engine.connect() as connection:
        await connection.execute(text("ANALYZE customer_identifiers"))

    session = one_connection
    referrer, referee = (
        await session.scalars(select(Customer).where(Customer.external_id.in_(["bulk1", "bulk2"])).order_by(Customer.external_id))
    ).all()
    for _ in range(8):
        check = fraud_case.Case(session, tenant.id, uuid.UUID(thousands), uuid.uuid4(), referrer, referee, utcnow())
        await check.prefetch()
        assert sorted(r.kind for r in await check.referee_identifiers()) == ["DEVICE", "IP", "PAYMENT"]
    assert await _plans(session, "AS part") == PLANNED_ONCE
    scans = (
        await session.execute(text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'customer_identifiers'"))
    ).scalar()
    assert scans == 0
    assert (await session.execute(text("SELECT current_setting('plan_cache_mode')"))).scalar() == "auto"
