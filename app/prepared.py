"""Core statements that a process runs again and again, run on the driver without SQLAlchemy's
per-execution work: on PostgreSQL as asyncpg prepared statements, on SQLite on the event loop's
thread when quick, else in one hop to aiosqlite's thread (`_on_sqlite`).

Why: on the hot paths a statement is built once per process (module level, `per_dialect`,
`insert_row`), so SQLAlchemy's compiling is cached already; what is left per execution is its
execution machinery (session and connection dispatch, execution context, parameter and result
processing objects, the greenlet hop into the driver adapter): measured 187 µs of CPU per
statement against 67 µs for the same prepared statement on asyncpg, with a referred purchase
running 20 statements. On SQLite the adapter also crosses to aiosqlite's thread and back three
to four times per statement (cursor, execute, fetch, close); here it is once, or not at all.

How: `Session.execute` (app.db) hands a statement here. The first time a statement object is
seen it runs through SQLAlchemy as usual and is remembered (weakly); from the second time on it
is compiled once for the dialect and run on the session's own driver connection, in the same
transaction, with SQLAlchemy's own bind and result processors of every column, so rows, types,
rowcounts and errors come back as SQLAlchemy would return them (`tests/test_prepared.py` runs
each kind of statement both ways, on both databases, and compares). A statement built per
request is a new object each time, never seen twice, and keeps SQLAlchemy's path (and its
compiled cache).

Only plain Core statements qualify: SELECTs of columns (not of mapped classes: those make
objects), INSERT/UPDATE/DELETE of tables (an ORM UPDATE of a mapped class also updates the
objects in the session), with a dict of parameters or none, or for a single-row INSERT a list of
them (sent as one multi-row INSERT, as SQLAlchemy's "insertmanyvalues" does, up to the
drivers' limit of bound values), without IN-lists expanded at execution time and without
execution options. Anything else runs through SQLAlchemy.

Private parts it relies on (the lock files pin the versions; `tests/test_prepared.py` fails if an
upgrade changes them): SQLAlchemy's driver adapters (`_execute_mutex`, asyncpg's `_transaction`
and `_start_transaction`, `_handle_exception`), its compiler (`_bind_processors`,
`_result_columns`, `_ad_hoc_textual`) and aiosqlite's `_execute` and `_conn`.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import CompoundSelect, Delete, Insert, Select, Update
from sqlalchemy.sql.type_api import TypeEngine

_ORM = "orm"
_MISSING = object()
_STATUS_COUNT = re.compile(r"(\d+)$")


class PreparedResult(IteratorResult[Any]):
    """The rows of a prepared statement behind SQLAlchemy's Result API (first, scalar, all,
    mappings, attribute access by column key), with the DML row count as `rowcount`."""

    def __init__(self, metadata: SimpleResultMetaData, rows: list[Any], rowcount: int) -> None:
        super().__init__(metadata, iter(rows))
        self.rowcount = rowcount


_NO_ROWS = SimpleResultMetaData([])


class Prepared:
    """One statement compiled for a dialect: its SQL with positional parameters ($n on
    PostgreSQL, ? on SQLite), where each parameter comes from, and how each value and result
    column is processed."""

    __slots__ = (
        "sql",
        "names",
        "defaults",
        "bind_processors",
        "result_processors",
        "metadata",
        "returns_rows",
        "values_group",
        "numbered",
        "sqlite_seconds",
        "_sql_for_rows",
    )

    def __init__(
        self,
        sql: str,
        names: list[str],
        defaults: list[Any],
        bind_processors: list[Any],
        results: list[Any],
        keys: list[str],
        *,
        numbered: bool,
    ) -> None:
        self.sql = sql
        self.names = names
        self.defaults = defaults
        self.bind_processors = bind_processors if any(bind_processors) else None
        # (column index, processor) for the columns that have one (a page's rows: 10 of 30, say)
        processed = [(index, process) for index, process in enumerate(results) if process is not None]
        self.result_processors = processed or None
        self.returns_rows = bool(keys)
        self.metadata = SimpleResultMetaData(keys) if keys else _NO_ROWS
        self.numbered = numbered
        self.values_group = _values_group(sql, len(names), numbered=numbered)
        self.sqlite_seconds: float | None = None  # how long it takes SQLite, recently (`_on_sqlite`)
        self._sql_for_rows: dict[int, str] = {}

    def sql_for_rows(self, count: int) -> str | None:
        """The INSERT of `count` rows in one statement (VALUES (...), (...), ...), parameters
        numbered row after row; None if this is no single-row INSERT ... VALUES."""
        if self.values_group is None or count * len(self.names) > MAX_BOUND_VALUES:
            return None  # SQLAlchemy pages a longer list
        found = self._sql_for_rows.get(count)
        if found is None:
            start, end = self.values_group
            group, width = self.sql[start:end], len(self.names)
            rows = ", ".join(_renumbered(group, row * width) if self.numbered else group for row in range(count))
            found = self._sql_for_rows[count] = self.sql[:start] + rows + self.sql[end:]
        return found

    def arguments(self, parameters: dict[str, Any] | None) -> list[Any] | None:
        """The positional values for `parameters`, processed; None when one is missing (then
        SQLAlchemy runs the statement and raises its own error)."""
        given = parameters or {}
        try:
            values = [given[name] for name in self.names]
        except KeyError:  # some are left to the statement's own values
            values = [given.get(name, default) for name, default in zip(self.names, self.defaults, strict=True)]
            if any(value is _MISSING for value in values):
                return None
        if self.bind_processors is not None:
            values = [
                value if process is None else process(value) for value, process in zip(values, self.bind_processors, strict=True)
            ]
        return values

    def rows(self, records: list[Any]) -> list[Any]:
        processed = self.result_processors
        if processed is None:
            return records
        rows = []
        for record in records:
            values = list(record)
            for index, process in processed:
                values[index] = process(values[index])
            rows.append(tuple(values))
        return rows


_PARAMETER = re.compile(r"\$(\d+)")
# Bound values per statement: PostgreSQL's protocol takes 32,767, SQLite's default build 32,766.
MAX_BOUND_VALUES = 32_000


def _renumbered(sql: str, shift: int) -> str:
    """`sql` with its parameters $n as $(n + shift)."""
    return _PARAMETER.sub(lambda number: f"${int(number.group(1)) + shift}", sql)


def _values_group(sql: str, parameters: int, *, numbered: bool) -> tuple[int, int] | None:
    """Where the one VALUES (...) of a single-row INSERT is in `sql`, if it holds every
    parameter of the statement ($1 to $n in order, or n question marks) and nothing else in
    the statement is bound."""
    if not sql.startswith("INSERT INTO ") or sql.count(" VALUES (") != 1:
        return None
    start = sql.index(" VALUES (") + len(" VALUES ")
    depth = 0
    for end in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            break
    group, rest = sql[start : end + 1], sql[end + 1 :]
    if not numbered:  # SQLite's question marks
        if group.count("?") != parameters or "?" in rest:
            return None
        return start, end + 1
    numbers = [int(found) for found in _PARAMETER.findall(group)]
    if numbers != list(range(1, parameters + 1)) or _PARAMETER.search(rest):
        return None
    return start, end + 1


def _qualifies(statement: Any) -> bool:
    if statement._execution_options:  # streaming, populate_existing, ...: SQLAlchemy's to honour
        return False
    if isinstance(statement, CompoundSelect):  # UNION [ALL] of SELECTs
        return all(_qualifies(part) for part in statement.selects)
    if statement._propagate_attrs.get("compile_state_plugin") == _ORM:
        if not isinstance(statement, Select):
            return False  # an ORM UPDATE/DELETE/INSERT of a mapped class keeps the session's objects in step
        # A SELECT naming mapped columns is ORM-enabled but makes no objects; one of a mapped class does.
        return all(not isinstance(description.get("type"), type) for description in statement.column_descriptions)
    return isinstance(statement, Select | Insert | Update | Delete)


_NOT_PREPARED = None


def _compile(statement: Any, dialect: Dialect) -> Prepared | None:
    if not _qualifies(statement):
        return _NOT_PREPARED
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params or compiled.positiontup is None:
        return _NOT_PREPARED
    if compiled._ad_hoc_textual or compiled._textual_ordered_columns:
        return _NOT_PREPARED  # columns named in text: SQLAlchemy matches them to the driver's row by name
    names = list(compiled.positiontup)
    defaults = []
    for name in names:
        bind = compiled.binds[name]
        if bind.callable is not None:
            return _NOT_PREPARED  # a value computed at execution time
        defaults.append(_MISSING if bind.required else bind.value)
    processors = compiled._bind_processors
    results = []
    keys = []
    for column in compiled._result_columns:
        column_type: TypeEngine[Any] = column.type
        if isinstance(column_type, sa.Numeric) or column.keyname is None:
            return _NOT_PREPARED  # its result processing depends on the driver's type code
        results.append(column_type._cached_result_processor(dialect, None))
        keys.append(column.keyname)
    bind_processors = [_plain_array(compiled.binds[name].type, dialect) or processors.get(name) for name in names]
    numbered = dialect.paramstyle == "numeric_dollar"
    return Prepared(compiled.string, names, defaults, bind_processors, results, keys, numbered=numbered)


def _plain_array(bind_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """For a one-dimensional ARRAY of a type the driver takes as it is (UUID, VARCHAR on
    asyncpg): a copy as a list, what SQLAlchemy's own processor makes item by item in Python
    (the fraud check's first read binds a dozen arrays). None for any other type."""
    if not isinstance(bind_type, sa.ARRAY) or bind_type.dimensions not in (None, 1):
        return None
    if bind_type.item_type.dialect_impl(dialect).bind_processor(dialect) is not None:
        return None
    return _as_list


def _as_list(value: Any) -> list[Any] | None:
    return None if value is None else list(value)


def of_text(statement: sa.TextClause, dialect: Dialect, keys: list[str]) -> Prepared:
    """A statement written in SQL (a PostgreSQL CTE that Core would say less readably), compiled
    once for `dialect`, its result columns named `keys` in order and taken as the driver returns
    them: for `run` like the others, without SQLAlchemy's execution machinery. Its parameters
    must all be given; values go to the driver unprocessed (plain ones, cast in the SQL)."""
    compiled: Any = statement.compile(dialect=dialect)
    names = list(compiled.positiontup)
    none = [None] * len(names)
    numbered = dialect.paramstyle == "numeric_dollar"
    return Prepared(compiled.string, names, [_MISSING] * len(names), none, [None] * len(keys), keys, numbered=numbered)


_OF_TEXT: dict[tuple[sa.TextClause, str], Prepared] = {}  # by the statement itself: an id could be reused


async def run_text(session: AsyncSession, statement: sa.TextClause, keys: list[str], parameters: dict[str, Any]) -> Any:
    """Run a module-level textual `statement` (see `of_text`) on the driver, compiled once per
    statement and driver; through SQLAlchemy when the driver path does not apply. Its rows."""
    dialect: Any = session.bind.dialect if session.bind is not None else None
    cache_key = (statement, dialect.driver)
    found = _OF_TEXT.get(cache_key)
    if found is None:
        found = _OF_TEXT[cache_key] = of_text(statement, dialect, keys)
    result = await run(session, found, parameters)
    return result if result is not None else await session.execute(statement, parameters)


class PreparedStatements:
    """The statements one engine has run: seen once, or prepared (or known not to qualify)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self.prepared: weakref.WeakKeyDictionary[Any, Prepared | None] = weakref.WeakKeyDictionary()

    def lookup(self, statement: Any) -> Prepared | None:
        try:
            return self.prepared[statement]
        except KeyError:
            pass
        except TypeError:
            return None  # not weakly referable: never cached
        if statement not in self.seen:
            self.seen.add(statement)
            return None
        self.seen.discard(statement)
        found = self.prepared[statement] = _compile(statement, self.dialect)
        return found


async def run(
    session: AsyncSession, prepared: Prepared, parameters: dict[str, Any] | list[dict[str, Any]] | None
) -> PreparedResult | None:
    """Run `prepared` with `parameters` (a dict, none, or a list of dicts: one row each, sent
    as one multi-row INSERT) on the session's connection, in its transaction (begun here if
    this is the transaction's first statement, as SQLAlchemy's driver adapter would). None if
    the parameters do not fit this path (SQLAlchemy then runs the statement)."""
    if not isinstance(parameters, list):
        single = prepared.arguments(parameters)
        if single is None:
            return None
        sql, arguments = prepared.sql, single
    else:
        rows = [prepared.arguments(row) for row in parameters]
        sql_for_rows = prepared.sql_for_rows(len(rows)) if rows else None
        if sql_for_rows is None:
            return None
        arguments = []
        for row in rows:
            if row is None:
                return None
            arguments.extend(row)
        sql = sql_for_rows
    connection, adapted = await _connection_of(session)
    dispatch = connection.engine.dispatch.before_cursor_execute
    if dispatch:  # statement counters in tests; a listener gets no cursor and no execution context
        dispatch(connection, None, sql, arguments, None, False)
    async with adapted._execute_mutex:
        try:
            if connection.dialect.name == "sqlite":
                records, rowcount = await _on_sqlite(adapted, prepared, sql, arguments)
            else:
                records, rowcount = await _on_asyncpg(adapted, sql, arguments, prepared.returns_rows)
        except Exception as error:
            raise _translated(session, sql, arguments, error, adapted) from error
    if prepared.returns_rows:
        return PreparedResult(prepared.metadata, prepared.rows(records), len(records))
    return PreparedResult(_NO_ROWS, [], rowcount)


async def _on_asyncpg(adapted: Any, sql: str, arguments: list[Any], returns_rows: bool) -> tuple[list[Any], int]:
    """Run on asyncpg (a prepared statement from its cache), in the adapter's transaction,
    begun here if this is its first statement, as SQLAlchemy's adapter would."""
    if adapted._transaction is None and not adapted.autocommit:
        await adapted._start_transaction()
    driver = adapted.driver_connection
    if returns_rows:
        return await driver.fetch(sql, *arguments), -1
    counted = _STATUS_COUNT.search(await driver.execute(sql, *arguments) or "")
    return [], int(counted.group(1)) if counted else -1


# SQLite: a statement that took less than this on average runs on the event loop's thread.
INLINE_ON_SQLITE_UNDER = 0.0005  # seconds


async def _on_sqlite(adapted: Any, prepared: Prepared, sql: str, arguments: list[Any]) -> tuple[list[Any], int]:
    """Run on aiosqlite's sqlite3 connection, in the transaction SQLAlchemy began when the
    session took the connection (BEGIN IMMEDIATE, app.db): execute, fetch and close.

    A statement that SQLite answers in well under a millisecond runs right here on the event
    loop's thread; others in one hop to aiosqlite's thread. The hop (its queue, waking the
    thread, the GIL, the future resolved through the loop's self-pipe) cost 150-250 us of CPU,
    more than most statements of a purchase take, 17 times per purchase. Running here cannot
    wait for a lock: BEGIN IMMEDIATE took the write lock already, and in WAL mode nothing
    else holds one up (app.db runs the BEGIN and the COMMIT, which may checkpoint, in the
    thread). It blocks the loop for as long as the statement takes, so each statement is
    timed, wherever it ran, and one that grows slow (more data, an odd plan) goes back to
    the thread. The connection is opened with check_same_thread=False for this; it is never
    used from two threads at once: every use of it is awaited under the adapter's mutex."""
    connection = adapted.driver_connection._conn
    recent = prepared.sqlite_seconds
    if recent is not None and recent < INLINE_ON_SQLITE_UNDER:
        return _on_sqlite_timed(prepared, connection, sql, arguments)
    return await adapted.driver_connection._execute(_on_sqlite_timed, prepared, connection, sql, arguments)


def _on_sqlite_timed(prepared: Prepared, connection: Any, sql: str, arguments: list[Any]) -> tuple[list[Any], int]:
    started = time.perf_counter()
    cursor = connection.execute(sql, arguments)
    try:
        found = (cursor.fetchall() if prepared.returns_rows else []), cursor.rowcount
    finally:
        cursor.close()
    took = time.perf_counter() - started
    recent = prepared.sqlite_seconds
    prepared.sqlite_seconds = took if recent is None else 0.75 * recent + 0.25 * took
    return found


_CONNECTION = "prepared_connection"


async def _connection_of(session: AsyncSession) -> tuple[Any, Any]:
    """The session's connection in its current transaction and SQLAlchemy's driver adapter of
    it, looked up once per transaction (each lookup is two hops through a greenlet)."""
    transaction = session.sync_session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and transaction is not None and kept[0]() is transaction and transaction.is_active:
        return kept[1], kept[2]
    connection = await session.connection()
    fairy: Any = await connection.get_raw_connection()
    found = (connection.sync_connection, fairy.dbapi_connection)
    # The transaction held weakly: it holds the session, and a session whose info held its
    # transaction was a reference cycle that only the garbage collector freed, with the request's
    # objects hanging off it (see app.schema.execution, "Freed as it ends").
    session.info[_CONNECTION] = (weakref.ref(session.sync_session.get_transaction()), *found)
    return found


def _translated(session: AsyncSession, sql: str, arguments: Any, error: Exception, adapted: Any) -> Exception:
    """The error SQLAlchemy would have raised: its DBAPIError subclass (IntegrityError, ...)
    around the driver adapter's error, which carries the SQLSTATE."""
    try:
        adapted._handle_exception(error)
    except Exception as adapter_error:
        dialect: Any = session.bind.dialect if session.bind is not None else None
        return sa.exc.DBAPIError.instance(sql, arguments, adapter_error, dialect.loaded_dbapi.Error, dialect=dialect)
    return error
