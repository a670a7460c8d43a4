"""The write path's rows go in through `app.db.insert_one` / `insert_many` (a Core INSERT, the
ORM object made as if loaded): what such an object says must be what the database holds, a
change to it must reach the database, and a clash must write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import String, bindparam, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db import (
    RowsOf,
    create_session_factory,
    insert_at_commit,
    insert_many,
    insert_one,
    new_id,
    rows_inserted_at_commit,
    scope_to_merchant,
    update_row,
    utcnow,
)
from app.referrals.models import Customer
from app.worker.models import JobStatus, OutboxJob


def _customer(merchant_id, external_id: str, email: str | None = "Ada@Example.com") -> dict:
    now = utcnow()
    return {
        "id": new_id(),
        "merchant_id": merchant_id,
        "external_id": external_id,
        "email": email,
        "email_canonical": email.lower() if email else None,
        "name": "Ada",
        "created_at": now,
        "updated_at": now,
    }


async def test_the_object_returned_is_the_row_stored_and_its_changes_are_written(db, tenant):
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        customer = await insert_one(session, Customer, _customer(tenant.id, "c-1"))
        assert customer is not None
        # left to their Python defaults: filled in, not left for a lazy load (which async cannot do)
        assert customer.erased_at is None
        customer.name = "Ada Lovelace"
        await session.commit()

    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        stored = await session.scalar(select(Customer).where(Customer.external_id == "c-1"))
        assert stored is not None
        assert (stored.id, stored.email, stored.name) == (customer.id, "Ada@Example.com", "Ada Lovelace")
        assert stored.created_at == customer.created_at


async def test_a_clash_on_the_named_key_writes_nothing_and_returns_none(db, tenant):
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        first = await insert_one(
            session, Customer, _customer(tenant.id, "c-1"), ignoring_conflicts=("merchant_id", "external_id")
        )
        again = await insert_one(
            session,
            Customer,
            _customer(tenant.id, "c-1", email="other@example.com"),
            ignoring_conflicts=("merchant_id", "external_id"),
        )
        assert first is not None and again is None
        rows = await insert_many(
            session,
            Customer,
            [_customer(tenant.id, "c-1"), _customer(tenant.id, "c-2")],
            ignoring_conflicts=("merchant_id", "external_id"),
        )
        assert [row.external_id for row in rows] == ["c-2"]  # the rows written, the clashing one left out
        await session.commit()
        stored = (await session.scalars(select(Customer.email).order_by(Customer.external_id))).all()
        assert stored == ["Ada@Example.com", "Ada@Example.com"]


async def test_columns_left_out_get_their_python_defaults_in_the_row_and_the_object(db):
    async with create_session_factory(db)() as session:
        job = await insert_one(session, OutboxJob, {"id": new_id(), "merchant_id": None, "actor": "noop", "args": {}})
        assert job is not None
        assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
        created_at = job.created_at
        await session.commit()
        stored = await session.get(OutboxJob, job.id, populate_existing=True)
        assert stored is not None and stored.created_at == created_at and stored.status is JobStatus.PENDING


class _OtherBase(DeclarativeBase):  # not the app's metadata: the migrations know nothing of this table
    pass


class _OnlyTheDatabaseKnows(_OtherBase):
    __tablename__ = "test_only_the_database_knows"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    label: Mapped[str] = mapped_column(String(10), server_default="x")


async def test_a_column_whose_default_only_the_database_knows_must_be_given(session):
    with pytest.raises(TypeError, match="label"):
        await insert_one(session, _OnlyTheDatabaseKnows, {"id": "1"})  # type: ignore[type-var]


async def test_an_enum_column_written_as_its_value_string_reads_as_its_member(db, tenant):
    """Callers write typed columns as value strings (Core parameters); the object says what a
    load would: the member (a comparison with the member must not be False for a string)."""
    async with create_session_factory(db)() as session:
        job = await insert_one(
            session, OutboxJob, {"id": new_id(), "merchant_id": None, "actor": "noop", "args": {}, "status": "DEAD"}
        )
        assert job.status is JobStatus.DEAD


async def test_update_row_writes_the_changes_and_leaves_nothing_for_the_orm_to_flush(db, tenant):
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        customer = await insert_one(session, Customer, _customer(tenant.id, "c-1"))
        job = await insert_one(session, OutboxJob, {"id": new_id(), "merchant_id": None, "actor": "noop", "args": {}})
        await session.commit()
        before = customer.updated_at
        customer.email = "pending@example.com"  # a change of another column stays the ORM's to flush
        await update_row(session, customer, {"name": "Ada Lovelace"})
        await update_row(session, job, {"status": "DEAD", "attempts": 3})  # a value string: the member, as loaded
        assert customer.name == "Ada Lovelace" and customer.updated_at > before  # onupdate renewed, as the ORM does
        assert job.status is JobStatus.DEAD and job.attempts == 3
        assert list(session.dirty) == [customer]  # only the email is left to flush
        await session.commit()

    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        stored = await session.scalar(select(Customer).where(Customer.external_id == "c-1"))
        assert stored is not None
        assert (stored.name, stored.email, stored.updated_at) == ("Ada Lovelace", "pending@example.com", customer.updated_at)
        stored_job = await session.get(OutboxJob, job.id)
        assert stored_job is not None and (stored_job.status, stored_job.attempts) == (JobStatus.DEAD, 3)


async def test_update_row_of_a_row_not_stored_under_that_merchant_raises_and_changes_nothing(db, tenant, other_tenant):
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        customer = await insert_one(session, Customer, _customer(tenant.id, "c-1"))
        await session.commit()
        stranger = Customer(id=customer.id, merchant_id=other_tenant.id)  # the same row claimed for another merchant
        with pytest.raises(LookupError):
            await update_row(session, stranger, {"name": "Mallory"})
        with pytest.raises(LookupError):
            await update_row(session, Customer(id=new_id(), merchant_id=tenant.id), {"name": "Nobody"})
        stored_id = customer.id
        await session.rollback()
        assert await session.scalar(select(Customer.name).where(Customer.id == stored_id)) == "Ada"


async def test_rows_of_several_models_become_the_sessions_objects(db, tenant):
    """`RowsOf`: a join read as plain columns gives the objects a load would, the session's own
    object for a row it holds already (never a second copy of one row)."""
    owners = RowsOf(OutboxJob, Customer)
    statement = (
        select(*owners.columns)
        .select_from(OutboxJob)
        .join(Customer, Customer.merchant_id == OutboxJob.merchant_id)
        .where(OutboxJob.actor == bindparam("actor"))
    )
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        customer = await insert_one(session, Customer, _customer(tenant.id, "c-1"))
        job = await insert_one(session, OutboxJob, {"id": new_id(), "merchant_id": tenant.id, "actor": "a", "args": {"n": 1}})
        await session.commit()
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        held = await session.get(Customer, customer.id)
        for _ in range(3):  # through SQLAlchemy, then prepared (PostgreSQL)
            row = (await session.execute(statement, {"actor": "a"})).one()
            loaded_job, loaded_customer = owners.objects(session, row)
            assert loaded_customer is held
            assert (loaded_job.id, loaded_job.status, loaded_job.args) == (job.id, JobStatus.PENDING, {"n": 1})
            assert loaded_job is await session.get(OutboxJob, job.id)  # in the session: no second read, no copy
        loaded_job.attempts = 2  # and its changes are flushed like a loaded object's
        await session.commit()
        assert await session.scalar(select(OutboxJob.attempts).where(OutboxJob.id == job.id)) == 2


async def test_a_written_row_is_the_sessions_own_object_as_a_loaded_one_is(db, tenant, count_statements):
    """`attach` puts the object in the session's identity map the way loading does: the session
    answers for it without a statement, reads it again on refresh, and deletes it."""
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        customer = await insert_one(session, Customer, _customer(tenant.id, "c-1"))
        assert customer is not None
        with count_statements() as counter:
            assert await session.get(Customer, customer.id) is customer
        assert counter.count == 0
        customer.name = "changed in memory only"
        await session.refresh(customer)
        assert customer.name == "Ada"
        await session.delete(customer)
        await session.flush()
        assert await session.scalar(select(Customer.id).where(Customer.id == customer.id)) is None
        await session.commit()


async def _stored_customers(db, tenant) -> list[str]:
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        return list((await session.scalars(select(Customer.external_id).order_by(Customer.external_id))).all())


async def test_a_row_inserted_at_commit_is_written_by_the_commit_or_not_at_all(db, tenant, backend):
    """On PostgreSQL the row waits for the commit (a statement that writes anyway may take it
    along: app/rewards/granting.py); on SQLite it is written at once. Either way it is stored
    with its transaction, and a rollback leaves nothing."""
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        waiting = await insert_at_commit(session, Customer, _customer(tenant.id, "c-kept"))
        seen_before_commit = await session.scalar(select(func.count()).select_from(Customer))
        await session.commit()
    assert seen_before_commit == (0 if backend == "postgresql" else 1)
    assert await _stored_customers(db, tenant) == ["c-kept"]

    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        await insert_at_commit(session, Customer, _customer(tenant.id, "c-dropped"))
        await session.rollback()
        await insert_at_commit(session, Customer, _customer(tenant.id, "c-next"))  # the next transaction's own
        await session.commit()
    assert await _stored_customers(db, tenant) == ["c-kept", "c-next"]
    assert waiting.external_id == "c-kept"


@pytest.mark.postgresql_only(reason="rows are taken along by a statement on PostgreSQL only")
async def test_rows_taken_along_are_not_inserted_again_at_commit(db, tenant):
    async with create_session_factory(db)() as session:
        await scope_to_merchant(session, tenant.id)
        await insert_at_commit(session, Customer, _customer(tenant.id, "c-1"))
        taken = rows_inserted_at_commit(session)
        assert [row["external_id"] for row in taken[Customer]] == ["c-1"]
        await insert_many(session, Customer, taken[Customer])  # what a statement taking them along does
        await session.commit()  # would fail on the customer's unique key if it inserted them again
    assert await _stored_customers(db, tenant) == ["c-1"]
