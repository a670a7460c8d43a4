"""Every statement an API request runs on a tenant table names the merchant.

The application scopes its queries itself (`app.tenancy.scoped`, older code by hand with
`Model.merchant_id == merchant_id`); on PostgreSQL row-level security is a second wall behind that, but SQLite has no such wall, and a query that
forgot its filter is a leak there. This test watches the statements themselves: while merchant A
builds a full world through the API (programs, codes, clicks, signups, purchases, rules, coupon
pools, webhooks, a fraud review, lists, payouts with admins and a batch file, an export) and
merchant B then calls every operation of the tenant-isolation cases with A's identifiers, a
SQLAlchemy `do_orm_execute` listener sees every SELECT, UPDATE and DELETE the requests' sessions
(scope TENANT) execute, and checks that each tenant table the statement reads or changes has its
`merchant_id` (for `merchants`, its `id`) in a condition of the statement.

Why at run time and not a static lint: statements are built in pieces across helpers (`_filtered`,
`matching`, loaders), and the compiled statement is the only place where "this query has a merchant
condition" can be checked reliably. What it cannot see are statements no request here runs: a new
operation gets its case in test_tenant_isolation.py (that test fails without one) and so here.

A few statements are unscoped on purpose (credential lookups before the merchant is known); they
are listed in REVIEWED with the reason, by the function that runs them. Anything else fails the
test, naming the function and the SQL.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import greenlet
from sqlalchemy import Insert, Table, event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.elements import BinaryExpression, ColumnClause
from sqlalchemy.sql.selectable import Alias, TableClause

import app
from app import prepared
from app.db import TENANT, Base
from tests.schema.test_tenant_isolation import CASES, a_view, build_partner_world, build_world

APP_DIR = str(Path(app.__file__).resolve().parent)
KIT_FILES = {f"{APP_DIR}/db.py", f"{APP_DIR}/prepared.py"}  # the session's own execute: the caller is further out

# function that runs the statement -> why it reads a tenant table without naming the merchant in SQL
REVIEWED = {
    "app/merchants/service.py::authenticate": "the API key lookup before the merchant is known, by the key's hash "
    "(SQLite; PostgreSQL runs the referral_authenticate function)",
    "app/merchants/sessions.py::authenticate": "the admin session lookup before the merchant is known, by the token's hash",
    "app/merchants/sessions.py::login": "admins by email before the merchant is known: a login names no merchant "
    "(inside `authenticating`, the one row-level-security scope that may read admins of every merchant)",
}


def _tenant_tables() -> dict[str, str]:
    """Table name -> the column that names its merchant."""
    tables = {name: "merchant_id" for name, table in Base.metadata.tables.items() if "merchant_id" in table.c}
    tables["merchants"] = "id"
    return tables


TENANT_TABLES = _tenant_tables()


def _base_table(element: object) -> TableClause | None:
    """The table behind a FROM element (a table or an alias of one), if it is a tenant table."""
    while isinstance(element, Alias):
        element = element.element
    if isinstance(element, TableClause) and element.name in TENANT_TABLES:
        return element
    return None


def _identity(element: object) -> object:
    """Annotated copies of a table or alias (the ORM's) stand for the same FROM element."""
    return getattr(element, "_deannotate", lambda: element)()


def _scope_column_of(side: object) -> object | None:
    """The FROM element whose merchant column `side` is, else None."""
    source = getattr(side, "table", None)
    table = _base_table(source)
    if isinstance(side, ColumnClause) and table is not None and side.name == TENANT_TABLES[table.name]:
        return _identity(source)
    return None


def _elements(statement: Any) -> Iterator[Any]:
    """Every element of the statement (as `visitors.iterate`), but not the table inside an alias of it
    (the alias is what the statement reads, and it has conditions of its own), nor the table an
    INSERT inside it writes to (a CTE: its rows carry their merchant as values, as a statement
    that is only an INSERT does, which the listener does not check; what it reads is checked)."""
    stack = [statement]
    while stack:
        element = stack.pop()
        yield element
        if isinstance(element, Insert):
            stack.extend(child for child in element.get_children() if child is not element.table)
        elif not (isinstance(element, Alias) and isinstance(element.element, TableClause)):
            stack.extend(element.get_children())


def unscoped_tables(statement: object) -> set[str]:
    """Tenant tables the statement reads or changes without a condition on their merchant column.

    A condition names the merchant when it compares the merchant column with a value (a parameter, a
    literal), or with the merchant column of a table that does: `a.merchant_id = b.merchant_id` carries
    b's scope to a. A join on another column (`customers.id = referrals.referrer_id`) does not."""
    read: dict[object, str] = {}
    anchored: set[object] = set()
    same_merchant: list[tuple[object, object]] = []
    for element in _elements(statement):
        if isinstance(element, TableClause | Alias) and (table := _base_table(element)) is not None:
            read[_identity(element)] = table.name
        elif isinstance(element, BinaryExpression):
            left, right = _scope_column_of(element.left), _scope_column_of(element.right)
            if left is not None and right is not None:
                same_merchant.append((left, right))
            elif left is not None or right is not None:
                other = element.right if left is not None else element.left
                if not isinstance(other, ColumnClause):  # a value, not another table's column
                    anchored.add(left if left is not None else right)
    changed = True
    while changed:  # carry the scope along merchant_id = merchant_id conditions
        changed = False
        for one, two in same_merchant:
            if (one in anchored) != (two in anchored):
                anchored |= {one, two}
                changed = True
    return {name for element, name in read.items() if element not in anchored}


def _call_site() -> str:
    """The innermost function of app/ on the stack: the code that ran the statement. SQLAlchemy's
    async session runs the statement in a greenlet: the caller's frames are the parent greenlet's."""
    frames = [sys._getframe(2)]
    runner = greenlet.getcurrent().parent
    if runner is not None and runner.gr_frame is not None:
        frames.append(runner.gr_frame)
    for frame in frames:
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(APP_DIR) and filename not in KIT_FILES:
                return f"app{filename[len(APP_DIR) :]}::{frame.f_code.co_name}"
            frame = frame.f_back
    return "?"


@contextmanager
def watching_requests() -> Iterator[dict[str, list[str]]]:
    """While inside: call site -> SQL of each request statement on a tenant table without its merchant."""
    found: dict[str, list[str]] = defaultdict(list)

    def check(state: ORMExecuteState) -> None:
        if state.session.info.get("db_scope") != TENANT or not (state.is_select or state.is_update or state.is_delete):
            return
        if state.is_relationship_load or state.is_column_load:  # rows of an already scoped parent
            return
        tables = unscoped_tables(state.statement)
        if tables:
            found[_call_site()].append(f"{sorted(tables)}: {' '.join(str(state.statement).split())[:300]}")

    # Every statement through SQLAlchemy's path, where `do_orm_execute` sees it: one the process ran
    # before would otherwise run prepared (app.prepared), past the check.
    lookup = prepared.PreparedStatements.lookup
    prepared.PreparedStatements.lookup = lambda self, statement: None  # type: ignore[method-assign]
    event.listen(Session, "do_orm_execute", check)
    try:
        yield found
    finally:
        event.remove(Session, "do_orm_execute", check)
        prepared.PreparedStatements.lookup = lookup  # type: ignore[method-assign]


async def test_every_statement_of_an_api_request_on_a_tenant_table_names_the_merchant(db, tenant, other_tenant, clock):
    a, b = tenant, other_tenant
    with watching_requests() as found:
        world = await build_world(a, b, clock)
        world.partners = await build_partner_world(a)
        await a_view(a, world)
        for case in CASES:
            key = {"publishable": b.publishable_key, "secret": b.secret_key}.get(case.key) or world.payouts.b_owner_token
            # one world for every case: what a case answers is test_tenant_isolation.py's to check
            await b.raw(case.document, case.variables(world), key=key)
    unreviewed = {site: statements[:3] for site, statements in found.items() if site not in REVIEWED}
    assert not unreviewed, "statements on tenant tables without the merchant:\n" + "\n".join(
        f"{site}:\n    " + "\n    ".join(statements) for site, statements in sorted(unreviewed.items())
    )


def test_the_check_tells_a_scoped_statement_from_an_unscoped_one():
    from sqlalchemy import insert, select, update
    from sqlalchemy.orm import aliased

    from app.fraud.models import CustomerIdentifier
    from app.merchants.models import Merchant
    from app.referrals.models import Customer, Program, Referral

    merchant = 1  # a value: a bound parameter in the statement
    assert unscoped_tables(select(Program).where(Program.id == merchant)) == {"programs"}
    assert unscoped_tables(select(Program).where(Program.merchant_id == merchant, Program.id == merchant)) == set()
    assert unscoped_tables(select(Merchant).where(Merchant.id == merchant)) == set()
    joined = select(Referral).join(Customer, Customer.id == Referral.referrer_id).where(Referral.merchant_id == 1)
    assert unscoped_tables(joined) == {"customers"}  # a join on another column does not carry the scope
    carried = joined.where(Customer.merchant_id == Referral.merchant_id)
    assert unscoped_tables(carried) == set()
    assert unscoped_tables(select(Customer).where(Customer.merchant_id == Referral.merchant_id)) == {"customers", "referrals"}
    mine, theirs = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
    pair = select(mine.value).join(theirs, theirs.value_hash == mine.value_hash).where(mine.merchant_id == merchant)
    assert unscoped_tables(pair) == {"customer_identifiers"}  # the second alias has no merchant condition
    assert unscoped_tables(update(Program).where(Program.id == merchant).values(name="x")) == {"programs"}
    assert isinstance(Program.__table__, Table)
    # An INSERT inside a statement (a CTE) writes its rows with their merchant; what it reads is checked.
    customers = Customer.__table__
    columns = ["id", "merchant_id", "external_id"]
    read = select(Referral.referee_id, Referral.merchant_id, Referral.source)
    copied = insert(customers).from_select(columns, read).returning(customers.c.id).cte("copied")
    assert unscoped_tables(select(copied)) == {"referrals"}
    copied = insert(customers).from_select(columns, read.where(Referral.merchant_id == merchant)).returning(customers.c.id)
    assert unscoped_tables(select(copied.cte("copied"))) == set()


def test_scoped_names_the_merchant_of_every_tenant_table_the_statement_reads_or_changes():
    import uuid

    import pytest
    from sqlalchemy import Uuid, and_, bindparam, delete, func, select, update
    from sqlalchemy.orm import aliased

    from app.fraud.models import CustomerIdentifier
    from app.merchants.models import Merchant
    from app.referrals.models import Customer, Program, Referral
    from app.tenancy import merchant_column, merchant_is, scoped

    merchant = uuid.uuid4()
    mine, theirs = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
    statements = [
        select(Program).where(Program.id == merchant),
        select(Merchant),
        select(func.count()).select_from(Referral),
        select(Referral.id, Customer.external_id).join(Customer, Customer.id == Referral.referee_id),
        select(mine.value).join(theirs, theirs.value_hash == mine.value_hash),  # each alias of a self-join
        update(Program).where(Program.id == merchant).values(name="x"),
        delete(Program).where(Program.id == merchant),
    ]
    for statement in statements:
        assert unscoped_tables(statement), statement
        assert unscoped_tables(scoped(statement, merchant)) == set(), statement
        assert unscoped_tables(scoped(statement, bindparam("merchant_id", type_=Uuid()))) == set(), statement
    # the optional side of an outer join is scoped in its ON clause: a WHERE condition would drop its missing rows
    outer = select(Referral, Customer).outerjoin(Customer, Customer.id == Referral.referee_id)
    assert unscoped_tables(scoped(outer, merchant)) == {"customers"}
    assert "customers.merchant_id" not in str(scoped(outer, merchant).whereclause)
    on = Customer.id == Referral.referee_id, merchant_is(Customer, merchant)
    assert unscoped_tables(scoped(select(Referral, Customer).outerjoin(Customer, and_(*on)), merchant)) == set()
    # a subquery is a statement of its own: scoped where it is built, not entered from outside
    inner = select(Referral.referrer_id).where(Referral.program_id == merchant).subquery()
    assert unscoped_tables(scoped(select(Customer).join(inner, inner.c.referrer_id == Customer.id), merchant)) == {"referrals"}
    assert unscoped_tables(select(Program).where(merchant_is(Program, merchant))) == set()
    assert merchant_column(Merchant).name == "id" and merchant_column(mine).name == "merchant_id"
    with pytest.raises(ValueError):
        scoped(select(func.now()), merchant)  # nothing to scope: a mistake
    with pytest.raises(TypeError):
        merchant_column(select(Program.id).subquery())  # not a table


def test_scoped_reads_the_same_from_list_as_sqlalchemys_final_one():
    """`scoped` reads a SELECT's FROM list from SQLAlchemy's Core state (`_froms`), not from
    `get_final_froms`, which compiles an ORM statement whole to tell (half a millisecond each).
    The two agree on every shape the app builds; an upgrade of SQLAlchemy that parts them shows here."""
    import uuid

    from sqlalchemy import and_, exists, func, select
    from sqlalchemy.orm import aliased

    from app.fraud.models import CustomerIdentifier, FraudReview
    from app.referrals.models import Customer, Program, Referral
    from app.rewards.models import Reward
    from app.tenancy import _froms, _tenant_froms

    merchant = uuid.uuid4()
    mine, theirs = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
    inner = select(Referral.referrer_id).where(Referral.program_id == merchant).subquery()
    shapes = [
        select(Reward).where(Reward.referral_id == merchant),
        select(Program).where(Program.id == merchant),
        select(func.count()).select_from(Referral),
        select(Referral.id, Customer.external_id).join(Customer, Customer.id == Referral.referee_id),
        select(FraudReview).join(Referral, Referral.id == FraudReview.referral_id).where(Referral.referrer_id == merchant),
        select(mine.value).join(theirs, theirs.value_hash == mine.value_hash),
        select(Referral, Customer).outerjoin(Customer, and_(Customer.id == Referral.referee_id)),
        select(Customer).join(inner, inner.c.referrer_id == Customer.id),
        select(Customer).where(Customer.id == Referral.referee_id),  # a table named in WHERE only
        select(Referral).where(~exists().where(FraudReview.referral_id == Referral.id)),  # correlated
        select(Reward.referral_id).where(Reward.status == "HELD").group_by(Reward.referral_id).limit(5).with_for_update(),
    ]
    for statement in shapes:
        core = [table._deannotate() for table in _tenant_froms(_froms(statement))]
        final = [table._deannotate() for table in _tenant_froms(statement.get_final_froms())]
        assert core == final, statement
