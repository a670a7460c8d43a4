"""One way to say "this merchant's rows" in a query.

A tenant table is one with a `merchant_id` column (and `merchants` itself, whose `id` names the
merchant); that column is the marker, nothing else needs declaring. Every statement an API request
runs on a tenant table names its merchant (tests/schema/test_tenant_scoping.py checks each one):

    scoped(select(Reward).where(Reward.referral_id == referral_id), merchant_id)
    scoped(update(Admin).where(Admin.id == admin_id).values(...), merchant_id)
    scoped(delete(AdminRecoveryCode).where(AdminRecoveryCode.admin_id == admin_id), merchant_id)
    select(Reward).where(merchant_is(Reward, merchant_id), Reward.id == reward_id)

`scoped` names the merchant for every tenant table in the statement's own FROM list: the first one
gets `<first>.merchant_id = :merchant_id`, every other table or alias of it, both sides of a JOIN and
each alias of a self-join, gets `<other>.merchant_id = <first>.merchant_id` in the WHERE clause. A
JOIN on another column (`customers.id = referrals.referee_id`) carries no merchant at all, so each
table needs its condition (the check verifies exactly that); saying it by the first table's column
rather than by the value once more keeps it a join condition (both databases derive the value for
the other tables from it; SQLite's plans for every statement changed by this were compared).
The optional side of an outer join is left alone, as a WHERE condition on it would make the join an
inner one: name its merchant in the ON clause (`merchant_is(Coupon, merchant_id)`, or
`Coupon.merchant_id == Reward.merchant_id`). For UPDATE and DELETE it is the target table.
Subqueries are not entered: a subquery is a statement of its own, scoped where it is built
(`scoped(...).subquery()`, `scoped(...).exists()`); a correlated subquery built with `scoped` names
the outer table's merchant once more, which is harmless.

`use_index=False` (see `merchant_is`) keeps the condition out of SQLite's index choice, for rows
found through a more selective index than the merchant's (a customer's identifiers).
`not_an_index_key(condition)` does the same for any `column = value` on both databases (a program
next to a referrer in a window that ends now, where PostgreSQL's statistics are behind).

`merchant_id` is a value, or a `bindparam` for statements built once and reused (`per_dialect`,
`functools.cache`): `scoped(select(...), bindparam("merchant_id", type_=Uuid()))`. Scoping a
statement that reads no tenant table is a mistake and raises.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Boolean, Delete, Select, Update, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.selectable import Alias, FromClause, Join, SelectState, TableClause
from sqlalchemy.sql.visitors import InternalTraversal

Scopable = TypeVar("Scopable", bound="Select[*tuple[Any, ...]] | Update | Delete")

MerchantValue = uuid.UUID | ColumnElement[Any]  # a merchant's id, or a bind parameter standing for one


def _table_of(element: Any) -> TableClause | None:
    while isinstance(element, Alias):
        element = element.element
    return element if isinstance(element, TableClause) else None


def _merchant_column_name(table: TableClause) -> str | None:
    if table.name == "merchants":
        return "id"
    return "merchant_id" if "merchant_id" in table.c else None


def is_tenant_table(element: Any) -> bool:
    """Whether a table (or an alias of one) holds rows of one merchant each."""
    table = _table_of(element)
    return table is not None and _merchant_column_name(table) is not None


def merchant_column(entity: Any) -> ColumnElement[Any]:
    """The column that names the merchant of a model, an `aliased` model, a table or an alias:
    `merchant_id`, for `merchants` its `id`."""
    selectable = entity if isinstance(entity, FromClause) else inspect(entity).selectable  # a mapper's, an alias's
    table = _table_of(selectable)
    name = _merchant_column_name(table) if table is not None else None
    if name is None:
        raise TypeError(f"{entity!r} is not a tenant table: it has no merchant_id column")
    if isinstance(entity, FromClause):
        return entity.c[name]
    return getattr(entity, name)  # the mapped attribute, so the ORM keeps its entity (aliases too)


class _NotAnIndexKey(ColumnElement[bool]):
    """`column = value` that filters rows without choosing how they are found: SQLite, which plans
    without statistics, reads `+column = value` (the unary plus keeps a term out of index choice);
    other databases read it as it is."""

    inherit_cache = True
    _traverse_internals = [("condition", InternalTraversal.dp_clauseelement)]
    type = Boolean()

    def __init__(self, condition: BinaryExpression[bool]) -> None:
        self.condition = condition


@compiles(_NotAnIndexKey)
def _as_is(element: _NotAnIndexKey, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.condition, **kw)


@compiles(_NotAnIndexKey, "sqlite")
def _without_index(element: _NotAnIndexKey, compiler: SQLCompiler, **kw: Any) -> str:
    condition = element.condition
    return f"+{compiler.process(condition.left, **kw)} = {compiler.process(condition.right, **kw)}"


class _NotAnIndexKeyAnywhere(_NotAnIndexKey):
    """`_NotAnIndexKey` on PostgreSQL too: `(column = value) IS TRUE`, which its planner cannot
    use as an index key either, and estimates as the condition itself."""

    inherit_cache = True


@compiles(_NotAnIndexKeyAnywhere, "postgresql")
def _not_indexable(element: _NotAnIndexKeyAnywhere, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.condition, **kw)}) IS TRUE"


def not_an_index_key(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """`condition` (a `column = value`) as a filter of rows another index found, on both databases.

    For reads of "the last hour / day" next to a selective key (a referrer's referrals in a
    time window): PostgreSQL's statistics are those of the last ANALYZE, whose histogram ends
    before the rows written since (an ascending key), so a window near now looks empty and an
    index on (program, time) looks as good as the one on (referrer, time); it then reads every
    referral of the program in the window. Keeping the program out of the index choice leaves
    the selective index the only one."""
    assert isinstance(condition, BinaryExpression)
    return _NotAnIndexKeyAnywhere(condition)


def merchant_is(entity: Any, merchant_id: MerchantValue, *, use_index: bool = True) -> ColumnElement[bool]:
    """`<entity>.merchant_id = merchant_id`: the condition `scoped` adds, for a single entity
    (an outer join's ON clause, a correlated subquery, a bulk statement's WHERE).

    `use_index=False` when the rows are found by another index (a customer's identifiers by
    customer_id) and the merchant condition only filters them: on SQLite an equality on
    merchant_id makes an index that starts with it look as good as the selective one, and the
    planner may then read every row of the merchant (it has no statistics to tell them apart)."""
    condition = merchant_column(entity) == merchant_id
    if use_index:
        return condition
    assert isinstance(condition, BinaryExpression)
    return _NotAnIndexKey(condition)


def _tenant_froms(froms: Any) -> list[FromClause]:
    """The tenant tables of a FROM list, joins entered; not the optional side of an outer join,
    which a WHERE condition would make an inner one (its ON clause names the merchant instead)."""
    found: list[FromClause] = []
    for element in froms:
        if isinstance(element, Join):
            found += _tenant_froms((element.left,) if element.isouter else (element.left, element.right))
        elif is_tenant_table(element):
            found.append(element)
    return found


def _froms(statement: Select[Any]) -> Sequence[FromClause]:
    """The FROM list of `statement` as SQLAlchemy's Core builds it: the tables and aliases of its
    columns and WHERE clause, its explicit FROMs and joins. `Select.get_final_froms` gives the
    same list for our statements but runs the ORM's whole compilation of an ORM statement to get
    it (0.5-0.8 ms each, a fifth of the CPU of a burst of fraud reviews, where every referral put
    in review built a few such statements); the Core state is some 30 µs."""
    return SelectState(statement, None).froms  # type: ignore[arg-type]


def scoped(statement: Scopable, merchant_id: MerchantValue, *, use_index: bool = True) -> Scopable:
    """`statement` with `<table>.merchant_id = merchant_id` for every tenant table it reads from
    (SELECT: each table or alias of its FROM list, joins included) or changes (UPDATE, DELETE).
    `use_index`: see `merchant_is`."""
    if isinstance(statement, Select):
        tables = _tenant_froms(_froms(statement))
    elif isinstance(statement, Update | Delete):
        tables = [statement.table] if is_tenant_table(statement.table) else []
    else:
        raise TypeError(f"cannot scope {type(statement).__name__}: a SELECT, UPDATE or DELETE is needed")
    if not tables:
        raise ValueError(f"the statement reads no tenant table to scope: {statement}")
    columns: dict[Any, ColumnElement[Any]] = {}
    for table in tables:
        # an ORM entity's FROM (a model's table, an `aliased` model) by its entity, as a hand-written condition would
        entity = table._annotations.get("parententity")
        columns.setdefault(table._deannotate(), merchant_column(entity.entity if entity is not None else table))
    first, *joined = columns.values()
    value = first == merchant_id
    conditions = [value if use_index else _NotAnIndexKey(value), *(column == first for column in joined)]  # type: ignore[arg-type]
    return cast(Scopable, statement.where(*conditions))


Row = TypeVar("Row")


async def get_scoped(session: AsyncSession, model: type[Row], row_id: uuid.UUID, merchant_id: uuid.UUID) -> Row | None:
    """The merchant's row of `model` by its id, or None (none, or another merchant's). From the
    session's identity map when this transaction has it already (the write path reads its program,
    code and customers up front, so the checks after cost no round trip), else one scoped SELECT."""
    found: Any = session.identity_map.get(identity_key(model, row_id))
    if found is None:
        statement = _by_id(cast(type, model))
        return cast(Row | None, await session.scalar(statement, {"row_id": row_id, "merchant_id": merchant_id}))
    return found if found.merchant_id == merchant_id else None


@functools.cache
def _by_id(model: type) -> Any:
    """`get_scoped`'s SELECT for `model`, built once (building and scoping a statement per call
    cost more than running it)."""
    return scoped(select(model).where(model.id == bindparam("row_id")), bindparam("merchant_id"))  # type: ignore[attr-defined]
