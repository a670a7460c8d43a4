"""Keyset pagination over UUIDv7 ids (time-ordered), newest first.

Cursors are opaque to clients; here they are the base64 of the last id seen, so a page is
one indexed range scan however deep the client pages.
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Integer, Select, bindparam, literal_column, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import RecordT, record_columns, rows_of_entity
from app.errors import DomainError, ErrorCode
from app.tenancy import scoped

T = TypeVar("T")
MAX_PAGE_SIZE = 100


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool

    def cursor(self, item: Any) -> str:
        return encode_cursor(item.id)


def encode_cursor(item_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(item_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError, TypeError):
        raise DomainError(field, ErrorCode.INVALID_INPUT, "invalid cursor") from None


def page_size(first: int | None) -> int:
    if first is None:
        return 20
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise DomainError("first", ErrorCode.INVALID_INPUT, f"first must be between 1 and {MAX_PAGE_SIZE}")
    return first


async def paginate(session: AsyncSession, query: Select, id_column: Any, *, first: int | None, after: str | None) -> Page:
    """Run `query` (already filtered to one merchant) one page at a time, newest first."""
    size = page_size(first)
    if after:
        query = query.where(id_column < decode_cursor(after))
    query = query.order_by(id_column.desc()).limit(size + 1)
    shape = rows_of_entity(query)
    if shape is None:
        rows = list((await session.scalars(query)).all())
    else:  # the model's columns as plain rows, made into its objects without the ORM's loading
        rows = [shape.objects(session, row)[0] for row in await session.execute(query.with_only_columns(*shape.columns))]
    return Page(items=rows[:size], has_next_page=len(rows) > size, has_previous_page=after is not None)


async def paginate_where(
    session: AsyncSession,
    record: type[RecordT],
    model: Any,
    *,
    merchant_id: uuid.UUID,
    where: dict[str, Any],
    first: int | None,
    after: str | None,
) -> Page[RecordT]:
    """`paginate` for the common list that is only shown: the merchant's rows of `model` whose
    attributes equal `where`'s values (`{"program_id": ...}`), newest first, as `record`s (a
    NamedTuple of the columns a view shows, `db.record_columns`; no ORM objects). Its
    statement is built once per record, filtered attributes and cursor (`_page_statement`),
    so it runs on the driver (app.prepared); `paginate`'s statement is built, scoped and
    compiled per request, which was a third of a page's reading."""
    size = page_size(first)
    statement = _page_statement(record, model, tuple(sorted(where)), bool(after), size + 1)  # "" is no cursor, as in `paginate`
    parameters = {"merchant_id": merchant_id}
    parameters |= {f"where_{key}": value for key, value in where.items()}
    if after:
        parameters["after"] = decode_cursor(after)
    make = cast(Any, record)._make
    rows = [make(row) for row in await session.execute(statement, parameters)]
    return Page(items=rows[:size], has_next_page=len(rows) > size, has_previous_page=after is not None)


@functools.cache
def _page_statement(record: type[tuple[Any, ...]], model: Any, keys: tuple[str, ...], after: bool, limit: int) -> Select[Any]:
    """`paginate_where`'s SELECT: the record's columns, every value a parameter but the limit,
    which is written into the statement (one statement per page size, at most `MAX_PAGE_SIZE`):
    with `LIMIT $n` PostgreSQL cannot cost the generic plan's index scan, finds it dearer than
    a plan for the limit given, and so planned the page afresh on every request."""
    columns = sa_inspect(model).column_attrs
    id_column = columns["id"].columns[0]
    statement = scoped(select(*record_columns(record, model)), bindparam("merchant_id"))
    statement = statement.where(*(columns[key].columns[0] == bindparam(f"where_{key}") for key in keys))
    if after:
        statement = statement.where(id_column < bindparam("after"))
    return statement.order_by(id_column.desc()).limit(literal_column(str(int(limit)), Integer))
