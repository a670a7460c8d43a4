"""A Core statement the process runs again is run straight on the driver (app.prepared,
through `app.db.AppSession`): an asyncpg prepared statement on PostgreSQL, one call in
aiosqlite's thread or, when quick, on the event loop's thread on SQLite. What a caller gets
back must not change: the same keys, values and types as SQLAlchemy's own path (enum members,
decrypted columns, JSON, UTC datetimes), the same row counts, the same errors, in the same
transaction, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app import db as app_db
from app.db import create_session_factory, is_transient, new_id, one_of, table_of, utcnow
from app.referrals.models import Customer
from app.worker.models import JobStatus, OutboxJob

jobs = table_of(OutboxJob)
customers = table_of(Customer)

INSERT_JOB = insert(jobs).values({key: bindparam(key) for key in ("id", "actor", "args", "status", "attempts", "created_at")})
INSERT_JOB_RETURNING = INSERT_JOB.returning(jobs.c.id, jobs.c.status, jobs.c.args, jobs.c.created_at)
JOBS_OF_ACTOR = (
    select(jobs.c.id, jobs.c.status, jobs.c.args, jobs.c.created_at, OutboxJob.attempts.label("tries"))
    .where(jobs.c.actor == bindparam("actor"))
    .order_by(jobs.c.id)
)
FIRST_JOB = select(jobs.c.id).where(jobs.c.status == JobStatus.PENDING).order_by(jobs.c.id).limit(1)  # literal binds
COUNT_BY_STATUS = select(jobs.c.status, func.count()).group_by(jobs.c.status).order_by(jobs.c.status)
MARK_DONE = update(jobs).where(jobs.c.actor == bindparam("who")).values(status=JobStatus.DONE, finished_at=bindparam("finished"))
DELETE_ACTOR = delete(jobs).where(jobs.c.actor == bindparam("who"))
CUSTOMER_EMAILS = select(customers.c.external_id, customers.c.email, customers.c.metadata).where(
    customers.c.merchant_id == bindparam("merchant_id")
)


def _job(actor: str, **changes) -> dict:
    return {
        "id": new_id(),
        "actor": actor,
        "args": {"n": 1, "list": [1, "two"]},
        "status": JobStatus.PENDING,
        "attempts": 0,
        "created_at": utcnow(),
    } | changes


def _prepared(engine, statement) -> bool:
    """Whether this engine runs `statement` on the driver."""
    statements = app_db._prepared_statements.get(engine)
    return statements is not None and statements.prepared.get(statement) is not None


async def _twice(session, statement, params=None):
    """What SQLAlchemy's path returns (the first run) and what the prepared path returns (a
    later one). On SQLite the first prepared run is in aiosqlite's thread and the next ones,
    quick, on the event loop's thread (app.prepared._on_sqlite): those two must agree too."""
    first = await session.execute(statement, params)
    in_thread, on_loop = await session.execute(statement, params), await session.execute(statement, params)
    assert list(in_thread.keys()) == list(on_loop.keys()) and in_thread.all() == on_loop.all()
    return first, await session.execute(statement, params)


async def test_a_select_run_again_returns_what_sqlalchemy_returned(db):
    async with create_session_factory(db)() as session:
        await session.execute(insert(jobs), [_job("a.one"), _job("a.one", status=JobStatus.DEAD, attempts=3)])
        first, second = await _twice(session, JOBS_OF_ACTOR, {"actor": "a.one"})
        before, after = first.all(), second.all()
        assert list(first.keys()) == list(second.keys()) == ["id", "status", "args", "created_at", "tries"]
        assert before == after and len(after) == 2
        assert after[1].status is JobStatus.DEAD and after[1].tries == 3  # members and labels, by attribute
        assert after[0].args == {"n": 1, "list": [1, "two"]}  # JSON decoded
        assert after[0].created_at.tzinfo is not None and abs(after[0].created_at - utcnow()) < timedelta(minutes=1)
        assert (await session.execute(FIRST_JOB)).scalar() == after[0].id  # literal values bound
        assert (await session.scalar(FIRST_JOB)) == after[0].id
        assert (await session.scalars(JOBS_OF_ACTOR, {"actor": "a.one"})).all() == [row.id for row in after]
        counted = (await _twice(session, COUNT_BY_STATUS))[1]
        assert list(counted.keys()) == ["status", "count_1"]
        assert counted.all() == [(JobStatus.DEAD, 1), (JobStatus.PENDING, 1)]
        await session.rollback()
    assert _prepared(db, JOBS_OF_ACTOR) and _prepared(db, COUNT_BY_STATUS)


async def test_encrypted_columns_read_back_decrypted(db, tenant):
    async with create_session_factory(db)() as session:
        now = utcnow()
        row = {
            "id": new_id(),
            "merchant_id": tenant.id,
            "external_id": "c-1",
            "email": "ada@example.com",
            "name": "Ada",
            "metadata": {"tier": "gold"},
            "created_at": now,
            "updated_at": now,
        }
        await session.execute(insert(customers).values(row))
        first, second = await _twice(session, CUSTOMER_EMAILS, {"merchant_id": tenant.id})
        assert first.all() == second.all() == [("c-1", "ada@example.com", {"tier": "gold"})]
        stored = (await session.execute(sa.text("SELECT email FROM customers WHERE external_id = 'c-1'"))).scalar()
        assert stored != "ada@example.com"  # what the database holds is sealed
        await session.rollback()


async def test_inserts_updates_and_deletes_report_rows_as_sqlalchemy_does(db):
    async with create_session_factory(db)() as session:
        for n in range(3):  # the first through SQLAlchemy, then prepared
            returned = (await session.execute(INSERT_JOB_RETURNING, _job("b.one", args={"n": n}))).one()
            assert returned.status is JobStatus.PENDING and returned.args == {"n": n}
        await session.execute(INSERT_JOB, [_job("b.many"), _job("b.many")])  # several rows, no RETURNING
        await session.execute(INSERT_JOB, [_job("b.many"), _job("b.many")])
        at = utcnow()
        first = await session.execute(MARK_DONE, {"who": "b.one", "finished": at})
        second = await session.execute(MARK_DONE, {"who": "b.many", "finished": at})
        assert (app_db.changed_rows(first), app_db.changed_rows(second)) == (3, 4)
        assert app_db.changed_rows(await session.execute(MARK_DONE, {"who": "nobody", "finished": at})) == 0
        done = (await session.execute(select(jobs.c.status, jobs.c.finished_at).where(jobs.c.actor == "b.many"))).all()
        assert {row.status for row in done} == {JobStatus.DONE} and {row.finished_at for row in done} == {at}
        assert app_db.changed_rows(await session.execute(DELETE_ACTOR, {"who": "b.one"})) == 3
        assert app_db.changed_rows(await session.execute(DELETE_ACTOR, {"who": "b.many"})) == 4
        await session.rollback()
    assert _prepared(db, MARK_DONE) and _prepared(db, INSERT_JOB) and _prepared(db, INSERT_JOB_RETURNING)


async def test_a_prepared_write_belongs_to_the_sessions_transaction(db):
    factory = create_session_factory(db)
    async with factory() as session:  # seen once, so prepared from now on
        await session.execute(INSERT_JOB, _job("c.seen"))
        await session.rollback()
    async with factory() as session:
        await session.execute(INSERT_JOB, _job("c.rolled-back"))  # the transaction's first statement
        await session.rollback()
        await session.execute(INSERT_JOB, _job("c.kept"))
        await session.commit()
    async with factory() as session:
        actors = (await session.execute(select(jobs.c.actor).where(jobs.c.actor.like("c.%")))).scalars().all()
    assert actors == ["c.kept"]


async def test_a_clash_raises_sqlalchemys_integrity_error_and_nothing_is_kept(db):
    job = _job("d.one")
    async with create_session_factory(db)() as session:
        await session.execute(INSERT_JOB, job)
        await session.execute(INSERT_JOB, _job("d.two"))  # now prepared
        with pytest.raises(IntegrityError) as raised:
            await session.execute(INSERT_JOB, job | {"actor": "d.clash"})
        assert not is_transient(raised.value)
        await session.rollback()
        assert (await session.execute(select(func.count()).select_from(jobs))).scalar() == 0


@pytest.mark.postgresql_only
async def test_a_deadlock_raised_by_a_prepared_statement_reads_as_transient(db, owner_engine, backend):
    """unit_of_work runs a transaction again after a deadlock or serialisation failure: it must
    still recognise one (by its SQLSTATE) when the statement ran prepared."""
    async with owner_engine.begin() as connection:
        await connection.execute(
            sa.text(
                "CREATE OR REPLACE FUNCTION referral_test_raise(code text) RETURNS int LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'raised for a test' USING ERRCODE = code; END $$"
            )
        )
    raising = select(func.referral_test_raise(bindparam("code", type_=sa.String)))
    try:
        async with create_session_factory(db)() as session:
            for code, transient in [("40P01", True), ("40P01", True), ("40001", True), ("22012", False)]:
                with pytest.raises(sa.exc.DBAPIError) as raised:
                    await session.execute(raising, {"code": code})
                assert is_transient(raised.value) is transient
                await session.rollback()
        assert _prepared(db, raising)
    finally:
        async with owner_engine.begin() as connection:
            await connection.execute(sa.text("DROP FUNCTION referral_test_raise(text)"))


async def test_statements_built_per_call_and_orm_statements_keep_sqlalchemys_path(db, tenant):
    async with create_session_factory(db)() as session:
        for _ in range(3):
            built = select(jobs.c.id).where(jobs.c.actor == "e.one")
            await session.execute(built)
            assert not _prepared(db, built)
        alias = aliased(Customer)
        objects = select(alias).where(alias.merchant_id == bindparam("m"))
        orm_update = update(Customer).where(Customer.merchant_id == bindparam("m")).values(name="B")
        for _ in range(3):
            assert (await session.scalars(objects, {"m": tenant.id})).all() == []
            await session.execute(orm_update, {"m": tenant.id})
        assert not _prepared(db, objects) and not _prepared(db, orm_update)
        columns = select(Customer.id, Customer.external_id).where(Customer.merchant_id == bindparam("m"))
        for _ in range(3):
            assert (await session.execute(columns, {"m": tenant.id})).all() == []
        assert _prepared(db, columns)  # mapped columns, no objects: prepared
        await session.rollback()


ACTORS_AMONG = select(jobs.c.actor).where(one_of(jobs.c.actor, "actors")).order_by(jobs.c.actor)
ACTORS_AND_COUNTS = sa.union_all(
    select(jobs.c.actor.label("name"), sa.literal(1).label("n")).where(jobs.c.actor == bindparam("first")),
    select(sa.literal("total").label("name"), func.count().label("n")).select_from(jobs),
)


async def test_a_list_parameter_and_a_union_run_prepared_with_the_same_answers(db, backend):
    async with create_session_factory(db)() as session:
        await session.execute(insert(jobs), [_job("f.one"), _job("f.two"), _job("f.three")])
        for listed, expected in [(["f.two", "f.one"], ["f.one", "f.two"]), ([], []), (["f.three", "nobody"], ["f.three"])]:
            first, second = await _twice(session, ACTORS_AMONG, {"actors": listed})
            assert first.scalars().all() == second.scalars().all() == expected
        first, second = await _twice(session, ACTORS_AND_COUNTS, {"first": "f.two"})
        assert sorted(first.all()) == sorted(second.all()) == [("f.two", 1), ("total", 3)]
        await session.rollback()
    assert _prepared(db, ACTORS_AND_COUNTS)
    assert _prepared(db, ACTORS_AMONG) == (backend == "postgresql")  # SQLite's IN list is expanded per call


async def test_a_list_of_strings_matches_whole_values_not_their_first_characters(db):
    """A list parameter of a VARCHAR(100) column is cast as `VARCHAR[]`: cast as
    `VARCHAR(100)[]`, PostgreSQL cut each longer value to 100 characters, so a value that only
    began like a stored one matched it (and, in a plan made once, the cast kept the index out)."""
    stored = "h." + "x" * 98
    async with create_session_factory(db)() as session:
        await session.execute(insert(jobs), [_job(stored)])
        for listed, expected in [([stored + "y"], []), ([stored], [stored])]:
            first, second = await _twice(session, ACTORS_AMONG, {"actors": listed})
            assert first.scalars().all() == second.scalars().all() == expected
        await session.rollback()


JOBS_AMONG_IDS_AND_STATUSES = (
    select(jobs.c.actor).where(one_of(jobs.c.id, "ids"), one_of(jobs.c.status, "statuses")).order_by(jobs.c.actor)
)


async def test_array_parameters_of_ids_and_of_enum_members_run_prepared_with_the_same_answers(db, backend):
    """On PostgreSQL a list parameter is one array; an array of a type the driver takes as it is
    (UUID) is passed as a plain list, one of a type with a processor (the enum) item by item."""
    async with create_session_factory(db)() as session:
        rows = [_job("g.one"), _job("g.two"), _job("g.three", status=JobStatus.DEAD)]
        await session.execute(insert(jobs), rows)
        for ids, statuses, expected in [
            (tuple(row["id"] for row in rows), [JobStatus.PENDING], ["g.one", "g.two"]),  # a tuple, not a list
            ([rows[2]["id"], new_id()], [JobStatus.DEAD, JobStatus.PENDING], ["g.three"]),
            ([], [JobStatus.DEAD], []),
        ]:
            first, second = await _twice(session, JOBS_AMONG_IDS_AND_STATUSES, {"ids": ids, "statuses": statuses})
            assert first.scalars().all() == second.scalars().all() == expected
        await session.rollback()
    assert _prepared(db, JOBS_AMONG_IDS_AND_STATUSES) == (backend == "postgresql")


async def test_more_rows_than_one_statement_can_bind_all_arrive(db):
    """A multi-row INSERT sends one value per column and row; past the drivers' limit (32,767
    on PostgreSQL, 32,766 on SQLite) the list goes to SQLAlchemy, which sends it in pages."""
    rows = 6_000  # x 6 columns: 36,000 values
    async with create_session_factory(db)() as session:
        for actor in ("g.first", "g.again"):  # the second time INSERT_JOB has been seen
            await session.execute(INSERT_JOB, [_job(actor) for _ in range(rows)])
        counted = select(jobs.c.actor, func.count()).group_by(jobs.c.actor).order_by(jobs.c.actor)
        assert (await session.execute(counted)).all() == [("g.again", rows), ("g.first", rows)]
        await session.rollback()


# A textual statement (app.rewards.granting's CTE) compiled once: every parameter given, by name,
# as often as the SQL names it; columns by position under the names given.
JOB_WITH_ITS_ACTOR = sa.text(
    "INSERT INTO outbox_jobs (id, actor, args, status, attempts, created_at) "
    "SELECT CAST(:id AS UUID), CAST(:actor AS VARCHAR), CAST(:args AS JSON), 'PENDING', 0, CAST(:at AS TIMESTAMP WITH TIME ZONE) "
    "RETURNING id, actor || '/' || CAST(:actor AS VARCHAR)"
)


@pytest.mark.postgresql_only(reason="a textual statement is written for one dialect: here PostgreSQL's, as granting's")
async def test_a_textual_statement_runs_on_the_driver_in_the_sessions_transaction(db, backend):
    from app import prepared

    async with create_session_factory(db)() as session:
        statement = prepared.of_text(JOB_WITH_ITS_ACTOR, session.bind.dialect, ["id", "named"])
        job_id, at = new_id(), utcnow()
        result = await prepared.run(session, statement, {"id": job_id, "actor": "t.one", "args": "{}", "at": at})
        assert [(row.id, row.named) for row in result] == [(job_id, "t.one/t.one")]
        assert await prepared.run(session, statement, {"id": new_id(), "actor": "t.two"}) is None  # a value missing
        with pytest.raises(IntegrityError):
            await prepared.run(session, statement, {"id": job_id, "actor": "t.clash", "args": "{}", "at": at})
        await session.rollback()
        assert (await session.execute(select(func.count()).select_from(jobs))).scalar() == 0  # the transaction's


_COUNTED = select(sa.literal(1, sa.Integer).label("i")).cte("counted", recursive=True)
_COUNTED = _COUNTED.union_all(select(_COUNTED.c.i + 1).where(_COUNTED.c.i < bindparam("n", type_=sa.Integer)))
COUNT_TO = select(func.count()).select_from(_COUNTED)  # 1, 2, ... n, counted: as slow as n is large


async def test_on_sqlite_a_statement_grown_slow_goes_back_to_the_thread_and_leaves_the_loop_free(db, backend):
    """A quick statement runs on the event loop's thread, which it holds while it runs; once
    one took long, the next runs in aiosqlite's thread again, and the loop serves others."""
    if backend != "sqlite":
        pytest.skip("SQLite: PostgreSQL's statements never run on the loop's thread")
    import asyncio
    import threading

    from app import prepared

    where: list[str] = []
    timed = prepared._on_sqlite_timed

    def spy(*args):
        where.append("loop" if threading.current_thread() is threading.main_thread() else "thread")
        return timed(*args)

    async def ticks_while(work) -> tuple[Any, int]:
        """`work`'s result, and how often a task on the loop got to run meanwhile."""
        ticks = 0
        done = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        try:
            return await work, ticks
        finally:
            done.set()
            await ticker

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepared, "_on_sqlite_timed", spy)
        async with create_session_factory(db)() as session:
            for _ in range(4):
                assert (await session.execute(COUNT_TO, {"n": 10})).scalar() == 10
            assert where == ["thread", "loop", "loop"]  # (SQLAlchemy's path first, then prepared)
            big = {"n": 2_000_000}
            assert (await session.execute(COUNT_TO, big)).scalar() == 2_000_000  # on the loop: judged quick
            assert where[-1] == "loop"
            counted, ticks = await ticks_while(session.execute(COUNT_TO, big))
            assert counted.scalar() == 2_000_000
            assert where[-1] == "thread" and ticks > 10  # the loop ran other work meanwhile
