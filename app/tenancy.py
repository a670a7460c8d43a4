"""One way to say "this merchant's rows" in a query.

A tenant table is one with a `merchant_id` column (and `merchants` itself, whose `id` names the
merchant); that column is the marker, nothing else needs declaring. Every statement an API request
runs on a tenant table names its merchant (tests/schema/test_tenant_scoping.py checks each one):

    scoped(select(Reward).where(Reward.referral_id == referral_id), merchant_id)
    scoped(update(Admin).where(Admin.id == admin_id).values(...), merchant_id)
    scoped(delete(AdminRecoveryCode).where(AdminRecoveryCode.admin_id == admin_id), merchant_id)
    select(Reward).where(merchant_is(Reward, merchant_id), Reward.id == reward_id)

`scoped` adds `<table>.merchant_id = :merchant_id` for every tenant table in the statement's own FROM
list: both sides of a JOIN and each alias of a self-join get their own condition, even when a join
condition already carries the merchant (`a.merchant_id = b.merchant_id`). One condition per table is
what the check verifies, it is what lets each table's (merchant_id, ...) index be used, and a JOIN
on another column (`customers.id = referrals.referee_id`) carries no merchant at all. For UPDATE and
DELETE it is the target table. Subqueries are not entered: a subquery is a statement of its own,
scoped where it is built (`scoped(...).subquery()`, `scoped(...).exists()`). A correlated subquery
built with `scoped` names the outer table's merchant once more, which is harmless.

`merchant_id` is a value, or a `bindparam` for statements built once and reused (`per_dialect`,
`functools.cache`): `scoped(select(...), bindparam("merchant_id", type_=Uuid()))`. Scoping a
statement that reads no tenant table is a mistake and raises.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar, cast

from sqlalchemy import Delete, Select, Update, inspect
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import Alias, FromClause, Join, TableClause

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


def merchant_is(entity: Any, merchant_id: MerchantValue) -> ColumnElement[bool]:
    """`<entity>.merchant_id = merchant_id`: the condition `scoped` adds, for a single entity
    (an outer join's ON clause, a correlated subquery, a bulk statement's WHERE)."""
    return merchant_column(entity) == merchant_id


def _tenant_froms(froms: Any) -> list[FromClause]:
    found: list[FromClause] = []
    for element in froms:
        if isinstance(element, Join):
            found += _tenant_froms((element.left, element.right))
        elif is_tenant_table(element):
            found.append(element)
    return found


def scoped(statement: Scopable, merchant_id: MerchantValue) -> Scopable:
    """`statement` with `<table>.merchant_id = merchant_id` for every tenant table it reads from
    (SELECT: each table or alias of its FROM list, joins included) or changes (UPDATE, DELETE)."""
    if isinstance(statement, Select):
        tables = _tenant_froms(statement.get_final_froms())
    elif isinstance(statement, Update | Delete):
        tables = [statement.table] if is_tenant_table(statement.table) else []
    else:
        raise TypeError(f"cannot scope {type(statement).__name__}: a SELECT, UPDATE or DELETE is needed")
    if not tables:
        raise ValueError(f"the statement reads no tenant table to scope: {statement}")
    seen: set[Any] = set()
    conditions = []
    for table in tables:
        key = table._deannotate()
        if key not in seen:
            seen.add(key)
            # an ORM entity's FROM (a model's table, an `aliased` model) by its entity, as a hand-written condition would
            entity = table._annotations.get("parententity")
            conditions.append(merchant_is(entity.entity if entity is not None else table, merchant_id))
    return cast(Scopable, statement.where(*conditions))
