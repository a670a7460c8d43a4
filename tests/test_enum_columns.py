"""Statuses and kinds are typed columns (app.db.enum_column): members in Python, their value
strings in the same VARCHAR columns as before, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Uuid, bindparam, select, text, update
from sqlalchemy.exc import StatementError

from app.db import create_session_factory
from app.worker.models import JobStatus, OutboxJob
from tests.conftest import system_connection


async def _job(db, **values) -> OutboxJob:
    async with create_session_factory(db)() as session:
        job = OutboxJob(actor="tests.enum_columns", args={}, **values)
        session.add(job)
        await session.commit()
    return job


async def test_a_member_is_stored_as_its_value_and_read_back_as_the_member(db):
    job = await _job(db, status=JobStatus.DEAD)

    async with system_connection(db) as connection:
        raw = text("SELECT status FROM outbox_jobs WHERE id = :id").bindparams(bindparam("id", type_=Uuid()))
        stored = await connection.scalar(raw, {"id": job.id})
        read_by_core = await connection.scalar(select(OutboxJob.status).where(OutboxJob.id == job.id))
    assert stored == "DEAD"  # the column still holds the plain string
    assert read_by_core is JobStatus.DEAD
    async with create_session_factory(db)() as session:
        loaded = await session.get(OutboxJob, job.id)
        assert loaded is not None and loaded.status is JobStatus.DEAD
        found = await session.scalar(select(OutboxJob.id).where(OutboxJob.status == JobStatus.DEAD))
        by_string = await session.scalar(select(OutboxJob.id).where(OutboxJob.status == "DEAD"))  # Core callers may bind values
    assert found == by_string == job.id


async def test_a_value_string_assigned_becomes_the_member_and_an_unknown_one_is_refused_at_once(db):
    job = await _job(db, status="DONE")  # as code written for string columns does
    assert job.status is JobStatus.DONE  # in memory too, before any reload

    with pytest.raises(ValueError, match="'PAUSED' is not a valid JobStatus"):
        job.status = "PAUSED"  # type: ignore[assignment]


async def test_an_unknown_value_stored_by_hand_is_reported_with_the_column_s_values(db):
    """A row written by SQL or by a newer version of the code: reading it fails loudly, naming
    the value and the ones the code knows, instead of handing a string to code that compares
    members (which would then silently match nothing)."""
    job = await _job(db)
    async with system_connection(db) as connection:
        await connection.execute(
            update(OutboxJob.__table__).where(OutboxJob.__table__.c.id == job.id).values(status=text("'PAUSED'"))
        )

    async with create_session_factory(db)() as session:
        with pytest.raises(LookupError) as raised:
            await session.get(OutboxJob, job.id)
    message = str(raised.value)
    assert "'PAUSED' is not among the defined enum values" in message
    assert "Enum name: jobstatus. Possible values: PENDING, DONE, DEAD" in message


async def test_a_misspelt_value_in_a_query_fails_instead_of_matching_nothing(db):
    await _job(db)
    async with create_session_factory(db)() as session:
        with pytest.raises(StatementError, match="'pending' is not among the defined enum values"):
            await session.scalar(select(OutboxJob.id).where(OutboxJob.status == "pending"))
