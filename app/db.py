"""Database engine, sessions and the column types shared by every domain package.

The same models run on SQLite (embedded default) and PostgreSQL (production and tests).
SQLite gets WAL and a single pooled connection: concurrent writers then queue in the pool
instead of failing with "database is locked" (measured: p99 1.4 s -> 160 ms at 32 writers).
"""

from __future__ import annotations

import enum
import functools
import os
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast, overload

import sqlalchemy as sa
from sqlalchemy import JSON, CursorResult, DateTime, MetaData, Result, Select, Table, bindparam, event, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, instrumentation, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.types import TypeDecorator

from app import personal, prepared
from app.pool import ArrivalOrderPool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # asyncpg's timestamptz: UTC already, kept as is
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """None on asyncpg, which reads TIMESTAMP WITH TIME ZONE as datetimes in UTC already:
        a page of 50 referrals with their customers read 400 such values, each through two
        calls that returned it unchanged."""
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


_id_lock = threading.Lock()
_last_id = (0, 0)  # (milliseconds, 12-bit counter) of this process's latest id


def new_id() -> uuid.UUID:
    """A UUIDv7: random, but ordered by creation time, so `ORDER BY id` is a stable
    chronological order that cursor pagination can use on an index.

    Within one millisecond the 12 bits after the timestamp count up from a random start
    (RFC 9562, method 3): ids made in the same millisecond keep their creation order."""
    global _last_id
    with _id_lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_counter = _last_id
        if millis > last_millis:
            counter = int.from_bytes(os.urandom(2), "big") & 0x03FF  # leaves room to count up
        elif last_counter < 0x0FFF:
            millis, counter = last_millis, last_counter + 1
        else:
            millis, counter = last_millis + 1, 0
        _last_id = (millis, counter)
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    # uuid.UUID(int=value) without its range check and keyword handling (value is 128 bits by
    # construction): ids are made for every row written, several per request.
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


ModelT = TypeVar("ModelT", bound="Base")

AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")
"""A SELECT of any columns, for helpers that add conditions to it and hand it back."""


def changed_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE executed through a session changed (`session.execute`
    is typed as returning a plain Result; for these statements it is a CursorResult)."""
    return cast("CursorResult[Any]", result).rowcount or 0


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements (declarative types `__table__` as any FROM clause)."""
    return cast(Table, model.__table__)


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def per_dialect(build: Callable[[str], Any]) -> Callable[[AsyncSession], Any]:
    """Build a statement once per dialect and process, not once per request: constructing a
    SQLAlchemy statement (and its cache key) costs more than running it on the hot paths.
    `build(dialect)` returns the statement with `bindparam`s; call the result with the session."""
    built: dict[str, Any] = {}

    def statement(session: AsyncSession) -> Any:
        dialect = dialect_of(session)
        found = built.get(dialect)
        if found is None:
            found = built[dialect] = build(dialect)
        return found

    return statement


def insert_ignoring_conflicts(
    session: AsyncSession, model: type, index_elements: list[str] | None = None, *, returning: bool = False
) -> Any:
    """`INSERT ... ON CONFLICT [(cols)] DO NOTHING` [RETURNING the row] for the session's
    dialect; without columns, a clash with any unique constraint is ignored. No savepoints
    needed. Built once per process and shape.

    On PostgreSQL a conflicting insert waits for the competing transaction, so exactly one
    of N concurrent writers wins and the others see its row after it commits.
    """
    columns = tuple(index_elements) if index_elements is not None else None
    return _insert_ignoring(dialect_of(session), model, columns, returning)


@functools.cache
def _insert_ignoring(dialect: str, model: type, index_elements: tuple[str, ...] | None, returning: bool) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(model).on_conflict_do_nothing(
        index_elements=list(index_elements) if index_elements is not None else None
    )
    return statement.returning(model) if returning else statement


@functools.cache
def _insert_template(dialect: str, model: type, keys: tuple[str, ...], conflict: tuple[str, ...] | None) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(model).values({key: bindparam(key) for key in keys})
    if conflict is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict) or None)
    return statement


def insert_row(
    session: AsyncSession,
    model: type,
    values: dict[str, Any],
    *,
    ignoring_conflicts: tuple[str, ...] | None = None,
) -> Any:
    """`INSERT INTO model (keys of values) VALUES (...)` [ON CONFLICT (cols) DO NOTHING],
    built once per process and shape: run it with `values` as the parameters
    (`session.execute(statement, values)`). For the row back as an object: `insert_one`."""
    return _insert_template(dialect_of(session), model, tuple(values), ignoring_conflicts)


class _InsertShape:
    """A Core INSERT of every column of one model's table, and how to complete a caller's values
    (given for some attributes) into a full row: a column's Python default, else NULL."""

    def __init__(self, dialect: str, model: type[Base], keys: tuple[str, ...], conflict: tuple[str, ...] | None) -> None:
        table = table_of(model)
        columns = attribute_columns(model)
        self.fixed: dict[str, Any] = {}  # attribute -> value for the attributes the caller leaves out
        self.computed: dict[str, Callable[[Any], Any]] = {}
        for key, column in columns.items():
            if key in keys:
                continue
            if column.default is None and column.server_default is not None:
                raise TypeError(f"{model.__name__}.{key} has a default only the database knows: pass a value")
            default: Any = column.default
            if default is not None and default.is_callable:
                self.computed[key] = default.arg
            else:
                self.fixed[key] = default.arg if default is not None else None
        module = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(table).values({column.key: bindparam(key) for key, column in columns.items()})
        if conflict is not None:
            statement = statement.on_conflict_do_nothing(index_elements=[columns[key].key for key in conflict] or None)
            statement = statement.returning(table.c.id)  # the rows written (every model's key is `id`)
        self.statement = statement
        self.reports_conflicts = conflict is not None

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        row = {**self.fixed, **values}
        for key, default in self.computed.items():
            row[key] = default(None)
        return row


@functools.cache
def _insert_shape(dialect: str, model: type[Base], keys: tuple[str, ...], conflict: tuple[str, ...] | None) -> _InsertShape:
    return _InsertShape(dialect, model, keys, conflict)


@functools.cache
def _enum_attributes(model: type) -> tuple[tuple[str, type[enum.Enum]], ...]:
    """The model's typed enum attributes (`enum_column`) and their enums."""
    found = []
    mapper: Mapper[Any] = sa_inspect(model)
    for attribute in mapper.column_attrs:
        column_type = attribute.columns[0].type
        if isinstance(column_type, sa.Enum) and column_type.enum_class is not None:
            found.append((attribute.key, column_type.enum_class))
    return tuple(found)


def attach(session: AsyncSession, model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """The ORM object of a row this transaction has just written or read with `values` (every
    column), made persistent in the session as if loaded: no INSERT through the ORM's unit of
    work, no RETURNING of the whole row, no second read. Later changes to it are flushed as
    UPDATEs. With every column given, the object enters the identity map as SQLAlchemy's own
    loading does (`loading._instance`, a quarter of the CPU of detaching it and adding it);
    otherwise the columns left out are expired, to be read when first used."""
    instance = instrumentation.manager_of_class(model).new_instance()  # as a load makes it: no __init__
    instance.__dict__.update(values)
    for key, enum_class in _enum_attributes(model):  # what a load reads back: members, not value strings
        value = values.get(key)
        if isinstance(value, str):
            instance.__dict__[key] = enum_class(value)
    identity, columns = _identity_of(model)
    identity_key = (identity, (values.get("id"),), None)
    identity_map = session.sync_session.identity_map
    if len(values) == columns and identity_map.fast_get_state(identity_key) is None:
        state = instance_state(instance)
        state.key = identity_key
        state.identity_token = None
        state.session_id = session.sync_session.hash_key
        identity_map._add_unpresent(state, identity_key)
        return instance
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


@functools.cache
def _identity_of(model: type) -> tuple[type, int]:
    """The class an identity key names for `model`'s rows, and how many columns it maps (-1,
    never matched, when its primary key is not the one column `id`)."""
    mapper: Mapper[Any] = sa_inspect(model)
    keyed_by_id = [column.key for column in mapper.primary_key] == ["id"]
    return mapper._identity_class, len(mapper.column_attrs) if keyed_by_id else -1


class RowsOf:
    """Whole rows of several models in one SELECT, as plain labelled columns: a Core statement,
    so it runs prepared on PostgreSQL (app.prepared) where an ORM SELECT of the models costs
    three times the CPU. `objects(session, row)` makes a result row into the models' objects as
    a load would: the object the session holds for that row already, else the row attached as
    loaded (`attach`). Select `columns` first, then add more columns after them if needed: a
    row is read by position (a Row's mapping costs a microsecond or more per column)."""

    def __init__(self, *models: type[Base]) -> None:
        self.models = models
        self._attributes: list[tuple[str, ...]] = []  # per model, in the order of `columns`
        self._spans: list[tuple[int, int]] = []  # per model: where its columns are in a row
        self.columns: list[Any] = []
        for index, model in enumerate(models):
            mapper: Mapper[Any] = sa_inspect(model)
            start = len(self.columns)
            for attribute in mapper.column_attrs:
                self.columns.append(attribute.columns[0].label(f"m{index}_{attribute.key}"))
            self._attributes.append(tuple(attribute.key for attribute in mapper.column_attrs))
            self._spans.append((start, len(self.columns)))

    def objects(self, session: AsyncSession, row: Any) -> tuple[Any, ...]:
        return tuple(
            loaded(session, model, dict(zip(attributes, row[start:end], strict=True)))
            for model, attributes, (start, end) in zip(self.models, self._attributes, self._spans, strict=True)
        )


def loaded(session: AsyncSession, model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """The object of a whole row (`values` by attribute) that a statement of the caller's read,
    as a load makes it: the object the session holds for that row already, else the row
    attached as loaded (`attach`)."""
    held = session.identity_map.get(sa_inspect(model).identity_key_from_primary_key((values["id"],)))
    return cast(ModelT, held) if held is not None else attach(session, model, values)


def rows_of_entity(query: Select[Any]) -> RowsOf | None:
    """`RowsOf` the one model a SELECT of whole objects (`select(Model)...`) names, or None
    for any other SELECT, or one with execution options (populate_existing and the like are
    the ORM's to honour)."""
    if query._execution_options:
        return None
    described = query.column_descriptions
    if (
        len(described) != 1
        or not isinstance(described[0].get("type"), type)
        or described[0]["entity"] is not described[0]["type"]
    ):
        return None
    return _rows_of(described[0]["type"])


@functools.cache
def _rows_of(model: type[Base]) -> RowsOf:
    return RowsOf(model)


@functools.cache
def attribute_columns(model: type[Base]) -> dict[str, Any]:
    """The columns of the model's table by the name of the attribute mapping each (`metadata_`
    maps the column `metadata`), in the table's order."""
    mapper: Mapper[Any] = sa_inspect(model)
    return {attribute.key: attribute.columns[0] for attribute in mapper.column_attrs}


def bound_columns(model: type[Base], prefix: str) -> dict[Any, Any]:
    """Every column of the model's table bound to the parameter `prefix` + its attribute's name:
    the VALUES of an INSERT written inside a larger statement (a PostgreSQL CTE), whose
    parameter names must not be the other tables' column names. Pass `prefixed(row, prefix)`."""
    return {column: bindparam(prefix + key, type_=column.type) for key, column in attribute_columns(model).items()}


def prefixed(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + key: value for key, value in row.items()}


def complete_row(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """`values` for some of the model's attributes completed into a full row as `insert_one`
    writes it (a column's Python default, else NULL): for a caller that writes the row in a
    statement of its own (a PostgreSQL CTE) and then makes its object with `attach`."""
    return _insert_shape(dialect_of(session), model, tuple(values), None).complete(values)


@overload
async def insert_one(
    session: AsyncSession, model: type[ModelT], values: dict[str, Any], *, ignoring_conflicts: None = None
) -> ModelT: ...


@overload
async def insert_one(
    session: AsyncSession, model: type[ModelT], values: dict[str, Any], *, ignoring_conflicts: tuple[str, ...]
) -> ModelT | None: ...


async def insert_one(
    session: AsyncSession, model: type[ModelT], values: dict[str, Any], *, ignoring_conflicts: tuple[str, ...] | None = None
) -> ModelT | None:
    """INSERT one row whose every value this process knows (ids are made here), as a Core
    statement built once per shape, and return it as a persistent ORM object (`attach`).
    With `ignoring_conflicts` (the unique columns; () for any), a row that clashes is not
    written and None is returned. An ORM INSERT ... RETURNING of the model costs about four
    times as much CPU: on the write path that was a millisecond per row."""
    many = await insert_many(session, model, [values], ignoring_conflicts=ignoring_conflicts)
    return many[0] if many else None


async def insert_many(
    session: AsyncSession,
    model: type[ModelT],
    rows: list[dict[str, Any]],
    *,
    ignoring_conflicts: tuple[str, ...] | None = None,
) -> list[ModelT]:
    """`insert_one` for rows of the same keys in one multi-row statement; the rows written, in
    the order given (with `ignoring_conflicts`, the clashing ones left out)."""
    if not rows:
        return []
    shape = _insert_shape(dialect_of(session), model, tuple(rows[0]), ignoring_conflicts)
    complete = [shape.complete(row) for row in rows]
    parameters = complete if len(complete) > 1 else complete[0]  # one row: no executemany
    if shape.reports_conflicts:
        written = {row[0] for row in await session.execute(shape.statement, parameters)}
        complete = [row for row in complete if row["id"] in written]
    else:
        await session.execute(shape.statement, parameters)
    return [attach(session, model, row) for row in complete]


@functools.cache
def _update_template(model: type[Base], keys: tuple[str, ...]) -> tuple[Any, tuple[tuple[str, Callable[[Any], Any]], ...]]:
    """`UPDATE table SET (keys) WHERE id = :row_id [AND merchant_id = :row_merchant_id]` of the
    model's table, and the columns whose
    value the ORM would renew on every update (`onupdate`) that are not among the keys."""
    mapper: Mapper[Any] = sa_inspect(model)
    table = table_of(model)
    renewed = tuple(
        (attribute.key, attribute.columns[0].onupdate.arg)
        for attribute in mapper.column_attrs
        if attribute.key not in keys and attribute.columns[0].onupdate is not None
    )
    columns = attribute_columns(model)
    assigned: dict[str, Any] = {columns[key].key: bindparam(f"new_{key}") for key in (*keys, *(key for key, _ in renewed))}
    statement = update(table).where(table.c.id == bindparam("row_id"))
    if "merchant_id" in table.c:  # every statement on a tenant's table names the merchant (app.tenancy)
        statement = statement.where(table.c.merchant_id.is_not_distinct_from(bindparam("row_merchant_id")))  # system rows: NULL
    return statement.values(assigned), renewed


async def update_row(session: AsyncSession, instance: Any, changes: dict[str, Any]) -> None:
    """Write `changes` to the row of `instance` (UPDATE ... WHERE id, a Core statement built
    once per shape) and set them on the object as if loaded: nothing is left for the ORM to
    flush, which costs several times as much for a row the request only reads from then on.
    Columns with an `onupdate` are renewed as the ORM would."""
    model: type[Base] = type(instance)
    statement, renewed = _update_template(model, tuple(changes))
    values = dict(changes)
    for key, renew in renewed:
        values[key] = renew(None)
    enums = dict(_enum_attributes(model))
    for key, value in values.items():
        if key in enums and isinstance(value, str):
            values[key] = enums[key](value)
    parameters = {f"new_{key}": value for key, value in values.items()}
    parameters |= {"row_id": instance.id, "row_merchant_id": getattr(instance, "merchant_id", None)}
    if changed_rows(await session.execute(statement, parameters)) != 1:
        raise LookupError(f"{model.__name__} {instance.id} is not stored (or not its merchant's): nothing updated")
    for key, value in values.items():
        set_committed_value(instance, key, value)


class OneOf(sa.sql.expression.ColumnElement[bool]):
    """`column IN (a list bound as parameter `name`)`, see `one_of`."""

    inherit_cache = True
    _traverse_internals = [
        ("column", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("name", sa.sql.visitors.InternalTraversal.dp_string),
        ("unseen_by_planner", sa.sql.visitors.InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: Any, name: str, unseen_by_planner: bool) -> None:
        self.column = column
        self.name = name
        self.unseen_by_planner = unseen_by_planner


def any_of(column: Any, values: Any) -> Any:
    """`column` is one of a fixed set of values: `column = a OR column = b`, the values bound as
    parameters with the statement. A literal IN list is expanded by SQLAlchemy at execution,
    which keeps a statement from running prepared (app.prepared); PostgreSQL plans both alike."""
    return sa.or_(*(column == value for value in sorted(values)))


def one_of(column: Any, name: str, *, unseen_by_planner: bool = False) -> OneOf:
    """`column` is one of the values of the list given as parameter `name`. On PostgreSQL
    `column = ANY($n)`: one array parameter whatever the list's length, so the statement is
    the same text every time and can run prepared (app.prepared); on SQLite an IN list that
    SQLAlchemy expands at execution (a JSON array read with json_each would keep the text
    fixed too; its plans were not checked on a large SQLite file, so it was not taken). An
    empty list matches nothing on both.

    `unseen_by_planner`: on PostgreSQL the list reaches the statement through a scalar
    subquery, `column = ANY(CAST((SELECT $n) AS type[]))`, which the planner cannot look into,
    so a plan made for one call's values costs the list as the generic plan does (ten values,
    still read by index). PostgreSQL keeps a prepared statement on per-call plans while its
    generic plan looks dearer than those: with the values seen, a small list looks cheaper,
    and the fraud check's prefetch was planned afresh on every purchase (3.5-7 ms, ten times
    its running) until this."""
    return OneOf(column, name, unseen_by_planner)


@compiles(OneOf)
def _one_of_expanded(element: OneOf, compiler: Any, **kw: Any) -> str:
    listed = element.column.in_(bindparam(element.name, expanding=True, type_=element.column.type))
    return f"({compiler.process(listed, **kw)})"


@compiles(OneOf, "postgresql")
def _one_of_array(element: OneOf, compiler: Any, **kw: Any) -> str:
    array_type = postgresql.ARRAY(_unsized(element.column.type))
    array = bindparam(element.name, type_=array_type)
    if not element.unseen_by_planner:
        return f"({compiler.process(element.column == sa.any_(array), **kw)})"
    handed_over = compiler.process(sa.cast(array, array_type), **kw)
    return f"({compiler.process(element.column, **kw)} = ANY(CAST((SELECT {handed_over}) AS {array_type.compile(dialect=compiler.dialect)})))"


def _unsized(column_type: Any) -> Any:
    """A string column's type without its length, for an array parameter cast as `VARCHAR[]`,
    not `VARCHAR(64)[]`: in a generic plan (a prepared statement planned once, app.prepared)
    PostgreSQL cannot match `column = ANY($n::VARCHAR(64)[])` to an index, as the length check
    of every element stays in the expression, and reads the whole table instead (the fraud
    check's prefetch: every identifier of the merchant). And an explicit cast to VARCHAR(64)
    cuts a longer value to 64 characters, so a value that only began like a stored one matched
    it. An enum keeps its type, which binds members as their values."""
    return sa.String() if type(column_type) in (sa.String, sa.VARCHAR) else column_type


async def merchant_rows(session: AsyncSession, model: Any, merchant_id: uuid.UUID, column: Any, values: Any) -> list[Any]:
    """One merchant's rows whose `column` is in `values`, oldest first: a DataLoader batch.
    One statement per model and column, built once (`RowsOf`, `one_of`), so it runs on the
    driver (app.prepared) whatever the batch."""
    shape, statement = _merchant_rows_statement(model, column.key)
    rows = await session.execute(statement, {"merchant_id": merchant_id, "values": list(values)})
    return [shape.objects(session, row)[0] for row in rows]


@functools.cache
def _merchant_rows_statement(model: Any, key: str) -> tuple[RowsOf, Select[Any]]:
    shape = _rows_of(model)
    return shape, _merchant_batch(shape.columns, model, key)


def _merchant_batch(columns: Any, model: Any, key: str) -> Select[Any]:
    """SELECT `columns` of the merchant's rows of `model` whose attribute `key` is one of the
    parameter `values`, oldest first (`merchant_rows`, `merchant_records`)."""
    column = sa_inspect(model).column_attrs[key].columns[0]
    return select(*columns).where(model.merchant_id == bindparam("merchant_id"), one_of(column, "values")).order_by(model.id)


RecordT = TypeVar("RecordT", bound=tuple[Any, ...])


async def merchant_records(
    session: AsyncSession, record: type[RecordT], model: Any, merchant_id: uuid.UUID, column: Any, values: Any
) -> list[RecordT]:
    """`merchant_rows` for a batch that is only shown (a DataLoader that GraphQL types read):
    `record`s, a NamedTuple of the columns of `model` a view shows (see `record_columns`), no
    ORM object each. On a page of 50 referrals with referrer and referee, making the 100
    customers ORM objects (instance state, identity map) cost more than reading them, and a
    SQLAlchemy Row's attribute costs ten times a tuple's."""
    statement = _merchant_records_statement(record, model, column.key)
    make = cast(Any, record)._make
    return [make(row) for row in await session.execute(statement, {"merchant_id": merchant_id, "values": list(values)})]


@functools.cache
def record_columns(record: type[tuple[Any, ...]], model: Any) -> tuple[Any, ...]:
    """The columns of `model` that the NamedTuple `record` names by attribute (`metadata_`), in
    its order: a SELECT of them reads rows that `record._make` takes as they are. An encrypted
    column is read sealed (`personal.Sealed`): the view opens what it shows."""
    columns = sa_inspect(model).column_attrs
    return tuple(_as_shown(name, columns[name].columns[0]) for name in cast(Any, record)._fields)


def _as_shown(name: str, column: Any) -> Any:
    if isinstance(column.type, personal.Encrypted):
        return sa.type_coerce(column, personal.ReadSealed(column.type)).label(name)
    return column


@functools.cache
def _merchant_records_statement(record: type[tuple[Any, ...]], model: Any, key: str) -> Select[Any]:
    return _merchant_batch(record_columns(record, model), model, key)


# PostgreSQL: deadlock_detected, serialization_failure. Both mean "run the transaction again".
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def sqlstate(error: Exception) -> str | None:
    return getattr(getattr(error, "orig", None), "sqlstate", None)


def is_transient(error: Exception) -> bool:
    return sqlstate(error) in TRANSIENT_SQLSTATES


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(
            database_url,
            poolclass=ArrivalOrderPool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            # check_same_thread: app.prepared runs quick statements on the event loop's thread.
            connect_args={"timeout": 30, "check_same_thread": False},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # We begin transactions ourselves (below), not the driver.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            """Take the write lock at BEGIN. A deferred transaction that read first and then
            writes fails at once (SQLITE_BUSY_SNAPSHOT) if another connection, such as the
            embedded worker's, wrote in between; an immediate one waits its turn instead."""
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        _prepared_statements[engine] = prepared.PreparedStatements(engine.dialect)
        return engine
    # No overflow: SQLAlchemy closes an overflow connection when it is returned, so under more
    # concurrent requests than `pool_size` every overflow checkout was a new connection, each
    # costing PostgreSQL a backend, asyncpg's type introspection (6 ms of planning) and the
    # preparing and planning of every hot statement again. Requests beyond the pool wait their
    # turn for a kept connection instead (`wrk` at 32 connections on a pool of 10: trackClick's
    # p99 166 -> 91 ms), in the order they asked (app.pool).
    engine = create_async_engine(
        database_url,
        poolclass=ArrivalOrderPool,
        pool_size=pool_size,
        max_overflow=0,
    )
    if engine.dialect.driver == "asyncpg":
        _prepared_statements[engine] = prepared.PreparedStatements(engine.dialect)
        event.listen(engine.sync_engine, "checkout", _closed_by_the_server)
    return engine


def _closed_by_the_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout, an operator's
    pg_terminate_backend) is replaced at checkout. asyncpg notices the closed socket as it
    arrives, so this costs no round trip; SQLAlchemy's pool_pre_ping would cost three
    (BEGIN, a ping, ROLLBACK) on every checkout, as many as the rest of a click's statements.
    A connection that dies between this check and its first statement fails that statement,
    as after a ping; SQLAlchemy then replaces every connection of the pool that was older."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


class AppSession(AsyncSession):
    """The sessions of this app: an AsyncSession whose `execute`, `scalar` and `scalars` run a
    Core statement the process has run before straight on the driver: a prepared statement on
    asyncpg, one hop to aiosqlite's thread on SQLite (app.prepared: the same rows, types and
    errors, a third of the CPU). Everything else is SQLAlchemy's own path."""

    async def execute(
        self,
        statement: Any,
        params: Any = None,
        *,
        execution_options: Any = None,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Any:
        if not execution_options and bind_arguments is None and not kw:
            fast = await self._run_prepared(statement, params)
            if fast is not None:
                return fast
        return await super().execute(
            statement, params, execution_options=execution_options or {}, bind_arguments=bind_arguments, **kw
        )

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        fast = None if kw else await self._run_prepared(statement, params)
        return fast.scalar() if fast is not None else await super().scalar(statement, params, **kw)

    async def scalars(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        fast = None if kw else await self._run_prepared(statement, params)
        return fast.scalars() if fast is not None else await super().scalars(statement, params, **kw)

    async def _run_prepared(self, statement: Any, params: Any) -> prepared.PreparedResult | None:
        statements = _prepared_statements.get(self.bind) if self.bind is not None else None
        if statements is None or not (params is None or isinstance(params, dict | list)):
            return None
        found = statements.lookup(statement)
        return None if found is None else await prepared.run(self, found, params)


_prepared_statements: weakref.WeakKeyDictionary[Any, prepared.PreparedStatements] = weakref.WeakKeyDictionary()


# PostgreSQL row-level security (migration 0006): every tenant table shows a transaction only
# the rows of `app.merchant_id`, unless `app.scope` is 'system'. Both are set per transaction.
SYSTEM = "system"  # jobs, the scheduler and the CLI: work that spans merchants, named as such
TENANT = "tenant"  # API requests: nothing until the caller is known, then one merchant


def create_session_factory(
    engine: AsyncEngine, *, scope: str = SYSTEM, reason: str = "jobs and commands"
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose transactions run in `scope`. The API's requests use TENANT; everything
    else (worker, scheduler, CLI, test fixtures) uses SYSTEM, and says why in `reason`, which
    PostgreSQL can log (`app.scope_reason`)."""
    if scope not in (SYSTEM, TENANT):
        raise ValueError(f"unknown database scope {scope!r}")
    return async_sessionmaker(
        engine, class_=AppSession, expire_on_commit=False, autoflush=False, info={"db_scope": scope, "scope_reason": reason}
    )


_TRANSACTION_KEYS: set[str] = set()


def dropped_at_transaction_end(key: str) -> str:
    """Declare `key` of `session.info` as the current transaction's: it is dropped when the
    transaction commits or rolls back. Returns the key."""
    _TRANSACTION_KEYS.add(key)
    return key


_KEPT = dropped_at_transaction_end("kept_for_transaction")


def keep_for_transaction(session: AsyncSession, *objects: Any) -> None:
    """Hold `objects` until the transaction ends. The session's identity map holds rows weakly:
    a row loaded in passing (a code's program and owner, fetched with the code) is dropped as
    soon as nothing refers to it, and the next `session.get` for it queries again."""
    session.info.setdefault(_KEPT, []).extend(objects)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _drop_transaction_keys(session: Session, *args: object) -> None:
    for key in _TRANSACTION_KEYS:
        session.info.pop(key, None)


_INSERTED_AT_COMMIT = dropped_at_transaction_end("inserted_at_commit")


async def insert_at_commit(session: AsyncSession, model: type[ModelT], values: dict[str, Any]) -> ModelT:
    """Write a row (every column; the id made here) in this transaction, but not now: a
    statement that writes anyway takes it along (`rows_inserted_at_commit`), else it is
    inserted when the transaction commits. The object returned is transient. Only for a row
    that nothing reads back or points at within its transaction: a fraud check's ALLOW
    decision, whose own INSERT was one of a purchase's eleven round trips. On SQLite, where no
    statement takes rows along, it is inserted now."""
    if not is_postgresql(session):
        return await insert_one(session, model, values)
    session.info.setdefault(_INSERTED_AT_COMMIT, {}).setdefault(model, []).append(values)
    return model(**values)


def rows_inserted_at_commit(session: AsyncSession) -> dict[type[Base], list[dict[str, Any]]]:
    """The rows waiting for the commit (`insert_at_commit`), by model, handed over to the
    statement that writes them now: nothing else will."""
    return session.info.pop(_INSERTED_AT_COMMIT, None) or {}


@event.listens_for(Session, "before_commit")
def _insert_what_waited_for_the_commit(session: Session) -> None:
    """The rows no statement took along, in `insert_one`'s INSERT (built once per shape)."""
    for model, rows in (session.info.pop(_INSERTED_AT_COMMIT, None) or {}).items():
        shape = _insert_shape("postgresql", model, tuple(rows[0]), None)
        complete = [shape.complete(row) for row in rows]
        session.execute(shape.statement, complete if len(complete) > 1 else complete[0])


def bind_tenant(session: AsyncSession, merchant_id: uuid.UUID) -> None:
    """From now on the session's transactions see `merchant_id`'s rows (authentication set it
    for the current one already, see `merchants.authenticate`)."""
    session.info["tenant_id"] = merchant_id


def is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def scope_to_merchant(session: AsyncSession, merchant_id: uuid.UUID) -> None:
    """Scope the current transaction, and the session's later ones, to `merchant_id`: after a
    credential that names its merchant was checked (a session token, a signed link)."""
    bind_tenant(session, merchant_id)
    if is_postgresql(session):
        await session.execute(select(func.set_config("app.merchant_id", str(merchant_id), True)))


@asynccontextmanager
async def authenticating(session: AsyncSession) -> AsyncIterator[None]:
    """Reads of credentials before the merchant is known: inside, row-level security's
    'authenticate' scope lets the transaction SELECT `api_keys`, `admins` and `admin_sessions`
    of every merchant, and nothing else. Keep what runs inside to those lookups."""
    if not is_postgresql(session):
        yield
        return
    await session.execute(select(func.set_config("app.scope", "authenticate", True)))
    try:
        yield
    finally:
        restored = SYSTEM if session.info.get("db_scope") == SYSTEM else ""
        await session.execute(select(func.set_config("app.scope", restored, True)))


@event.listens_for(Session, "after_begin")
def _set_database_scope(session: Session, transaction: Any, connection: Any) -> None:
    if connection.dialect.name != "postgresql":
        return  # SQLite (embedded mode) relies on the application's merchant filters
    scope = session.info.get("db_scope")
    tenant = session.info.get("tenant_id")
    if scope == SYSTEM:
        connection.execute(
            select(
                func.set_config("app.scope", SYSTEM, True),
                func.set_config("app.scope_reason", session.info["scope_reason"], True),
            )
        )
    elif tenant is not None:
        connection.execute(select(func.set_config("app.merchant_id", str(tenant), True)))
    # a TENANT session before authentication sets nothing: it sees no tenant's rows


EnumT = TypeVar("EnumT", bound=enum.Enum)


def enum_column(enum_class: type[EnumT], length: int) -> sa.Enum:
    """The column type of a status or kind: a VARCHAR(`length`) holding the members' values, read
    back as members of `enum_class` (so `reward.status is RewardStatus.HELD`, and queries compare
    with members). No CHECK constraint and no native enum type: the schema stays the plain VARCHAR
    the migrations made. Binding a member or its value string both work; any other string, and a
    value read from the database that is not a member's, raises LookupError naming the enum and
    its values (a row written by hand or by a newer version of the code)."""
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=_enum_values,
        validate_strings=True,
    )


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


@event.listens_for(Mapper, "mapper_configured")
def _coerce_enum_attributes(mapper: Mapper[Any], class_: type) -> None:
    """An enum column's attribute holds members only: a value string assigned to it (`status=
    "HELD"`, as Core-minded code and old callers write) becomes its member at once, in memory
    too, and a string that is no member's value raises ValueError at the assignment."""
    for attribute in mapper.column_attrs:
        column_type = attribute.columns[0].type
        if isinstance(column_type, sa.Enum) and column_type.enum_class is not None:
            event.listen(getattr(class_, attribute.key), "set", _to_member(column_type.enum_class), retval=True)


def _to_member(enum_class: type[enum.Enum]) -> Callable[..., Any]:
    def coerce(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
        return enum_class(value) if isinstance(value, str) else value

    return coerce


def plain(value: Any) -> Any:
    """The value string of an enum member, anything else as it is: what a payload, export or
    log line carries for a typed column (`plain(reward.status)` is "HELD")."""
    return value.value if isinstance(value, enum.Enum) else value
