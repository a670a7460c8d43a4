"""Writing an action's new rewards together with what comes with them: the ledger bookings
(customer accounts created or added to, transactions, entries) and the coupons of available
discounts.

Why one statement: a referred purchase with five rules wrote its rewards, the customers'
balances, the ledger's transactions, their entries and a coupon in five round trips. The rate of
`recordAction` under load follows its round trips more than its Python (each one wakes a
PostgreSQL backend that takes a core from the API process), so on PostgreSQL all five go in one
statement of data-modifying CTEs (`_grant_statement`), each table's rows passed as one JSON document
(`jsonb_to_recordset`), so its text is the same for any number of rewards and PostgreSQL keeps
one prepared statement of it. JSON, not an array per column: 70 arrays of a few values each
cost asyncpg's encoder (three ABC checks per value) more than the rest of the grant's Python,
and orjson writes the rows in one call.

It does what the step-by-step path does (`insert_many` then `lifecycle.on_granted_many`,
which SQLite and grants taking a coupon from a pool keep): a reward that meets an existing one
on a unique key (a concurrent retry won it) is left out and nothing of it is booked; customer
accounts are upserted in grant order (the order every path locks them in, see
`lifecycle.grant_order_of`); a lot arriving in an account in debt pays the debt first; a generated
coupon code that meets an existing one is issued again the usual way.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import orjson
from sqlalchemy import Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app import prepared
from app.db import attach, insert_many, is_postgresql, new_id, rows_inserted_at_commit, table_of, utcnow
from app.rewards import coupons, kinds, ledger, lifecycle
from app.rewards.models import Coupon, LedgerTransaction, Reward, RewardStatus
from app.rewards.rules import RuleSpec


async def write_rewards(
    session: AsyncSession, rows: list[dict[str, Any]], specs: list[RuleSpec]
) -> list[tuple[Reward, RuleSpec]]:
    """Insert the rewards `rows` (every column, in grant order) and book them; the rewards
    written with their specs, in the order given (a row that met an existing reward left out)."""
    if not rows:
        return []
    if not is_postgresql(session) or any(spec.coupon_pool_id is not None for spec in specs):
        written = {reward.id: reward for reward in await insert_many(session, Reward, rows, ignoring_conflicts=())}
        granted = [(written[row["id"]], spec) for row, spec in zip(rows, specs, strict=True) if row["id"] in written]
        await lifecycle.on_granted_many(session, granted)
        return granted
    return await _write_in_one_statement(session, rows, specs)


_PG = postgresql.dialect()


def _rows_insert(table: Table, alias: str, where: str) -> str:
    """INSERT INTO `table` (every column) of the rows of the JSON document `:{alias}` (`_rows`)."""
    listed = ", ".join(column.name for column in table.c)
    typed = ", ".join(f"{column.name} {column.type.compile(dialect=_PG)}" for column in table.c)
    return f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM jsonb_to_recordset(CAST(:{alias} AS JSONB)) AS {alias}({typed}) {where}"


def _rows(table: Table, rows: list[dict[str, Any]]) -> str:
    """The parameter of `_rows_insert`: `rows` as a JSON array of objects keyed by column (UUIDs
    and times as their text, an enum as its value, a time without a zone as UTC)."""
    names = [column.name for column in table.c]
    return _json([{name: row[name] for name in names} for row in rows])


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_uuid_text, option=orjson.OPT_NAIVE_UTC).decode()


def _uuid_text(value: Any) -> str:
    """orjson writes uuid.UUID itself, not a subclass (asyncpg reads ids as its own UUID)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


_REWARDS, _TRANSACTIONS, _COUPONS = table_of(Reward), table_of(LedgerTransaction), table_of(Coupon)
_WRITTEN = "WHERE {alias}.reward_id IN (SELECT id FROM new_rewards)"
_BOOKING_COLUMNS = (
    "reward_id UUID, transaction_id UUID, program_entry_id UUID, customer_entry_id UUID, new_account_id UUID, "
    "program_account_id UUID, customer_id UUID, kind VARCHAR, account_type VARCHAR, unit VARCHAR, amount BIGINT, n INTEGER"
)

# One booking per ledger reward (`:b`, in grant order, `n` counting): the customer's account is
# upserted (one row per account: ON CONFLICT DO UPDATE may touch a row once per statement), the
# program's account id is known (`ledger.program_account_ids`). The last SELECT reports what
# was written: the rewards, each customer account's id and balance after, the coupons.
_GRANT_WRITES = f"""
WITH new_rewards AS (
    {_rows_insert(_REWARDS, "r", "")}
    ON CONFLICT DO NOTHING
    RETURNING id
), booked AS (
    SELECT b.* FROM jsonb_to_recordset(CAST(:b AS JSONB)) AS b({_BOOKING_COLUMNS})
    {_WRITTEN.format(alias="b")}
), accounts AS (
    INSERT INTO ledger_accounts (id, merchant_id, owner_type, owner_id, kind, account_type, unit, balance)
    SELECT (array_agg(b.new_account_id ORDER BY b.n))[1], CAST(:merchant_id AS UUID), CAST(:customer_owner AS VARCHAR), b.customer_id, b.kind,
        b.account_type, b.unit, CAST(sum(b.amount) AS BIGINT)
    FROM booked AS b
    GROUP BY b.customer_id, b.kind, b.account_type, b.unit
    ORDER BY min(b.n)
    ON CONFLICT (merchant_id, owner_id, kind, account_type, unit)
        DO UPDATE SET balance = ledger_accounts.balance + excluded.balance
    RETURNING id, owner_id, kind, account_type, unit, balance
), transactions AS (
    {_rows_insert(_TRANSACTIONS, "t", _WRITTEN.format(alias="t"))}
), entries AS (
    INSERT INTO ledger_entries (id, merchant_id, transaction_id, account_id, amount, unit, created_at)
    SELECT b.program_entry_id, CAST(:merchant_id AS UUID), b.transaction_id, b.program_account_id, -b.amount, b.unit,
        CAST(:now AS TIMESTAMP WITH TIME ZONE)
    FROM booked AS b
    UNION ALL
    SELECT b.customer_entry_id, CAST(:merchant_id AS UUID), b.transaction_id, a.id, b.amount, b.unit,
        CAST(:now AS TIMESTAMP WITH TIME ZONE)
    FROM booked AS b JOIN accounts AS a ON (a.owner_id, a.kind, a.account_type, a.unit) = (b.customer_id, b.kind, b.account_type, b.unit)
), new_coupons AS (
    {_rows_insert(_COUPONS, "c", _WRITTEN.format(alias="c"))}
    ON CONFLICT DO NOTHING
    RETURNING reward_id
)"""
_GRANT_REPORT = """
SELECT 'REWARD' AS what, id, CAST(NULL AS UUID) AS owner_id, NULL AS kind, NULL AS account_type, NULL AS unit,
    CAST(NULL AS BIGINT) AS balance
FROM new_rewards
UNION ALL
SELECT 'ACCOUNT', id, owner_id, kind, account_type, unit, balance FROM accounts
UNION ALL
SELECT 'COUPON', reward_id, NULL, NULL, NULL, NULL, NULL FROM new_coupons
"""


@functools.cache
def _grant_statement(carried: tuple[Table, ...]) -> TextClause:
    """The grant's statement, taking along the rows of `carried` tables that wait for the commit
    (`app.db.insert_at_commit`: a purchase's fraud decision), one JSON document each
    (`:carried_<i>`). Built once per set of tables."""
    along = "".join(f", carried_{i} AS ({_rows_insert(table, f'carried_{i}', '')})" for i, table in enumerate(carried))
    return text(_GRANT_WRITES + along + _GRANT_REPORT)


_GRANT_COLUMNS = ["what", "id", "owner_id", "kind", "account_type", "unit", "balance"]


async def _write_in_one_statement(
    session: AsyncSession, rows: list[dict[str, Any]], specs: list[RuleSpec]
) -> list[tuple[Reward, RuleSpec]]:
    merchant_id, now = rows[0]["merchant_id"], utcnow()
    booked = sorted(
        (row for row in rows if kinds.behaviour_of(row["kind"]).has_ledger),
        key=lambda row: lifecycle.grant_order_of(row["rule_id"], row["recipient"], row["customer_id"], row["id"]),
    )
    programs = await ledger.program_account_ids(session, merchant_id=merchant_id, keys={_program_key(row) for row in booked})
    bookings = [(row, new_id()) for row in booked]  # with its transaction's id
    transactions = [
        {
            "id": transaction_id,
            "merchant_id": merchant_id,
            "kind": "GRANT",
            "reward_id": row["id"],
            "customer_id": row["customer_id"],
            "idempotency_key": None,
            "request_hash": None,
            "reference": None,
            "created_at": now,
        }
        for row, transaction_id in bookings
    ]
    coupon_rows = [
        coupons.generated_coupon(
            spec,
            merchant_id=row["merchant_id"],
            reward_id=row["id"],
            customer_id=row["customer_id"],
            expires_at=row["expires_at"],
        )
        for row, spec in zip(rows, specs, strict=True)
        if row["status"] == RewardStatus.AVAILABLE.value and kinds.behaviour_of(row["kind"]).has_coupon
    ]
    parameters: dict[str, Any] = {
        "r": _rows(_REWARDS, rows),
        "t": _rows(_TRANSACTIONS, transactions),
        "c": _rows(_COUPONS, coupon_rows),
        "b": _json(
            [
                {
                    "reward_id": row["id"],
                    "transaction_id": transaction_id,
                    "program_entry_id": new_id(),
                    "customer_entry_id": new_id(),
                    "new_account_id": new_id(),
                    "program_account_id": programs[_program_key(row)],
                    "customer_id": row["customer_id"],
                    "kind": row["kind"],
                    "account_type": _customer_key(row).account_type,
                    "unit": row["unit"],
                    "amount": row["amount"],
                    "n": n,
                }
                for n, (row, transaction_id) in enumerate(bookings, start=1)
            ]
        ),
        "merchant_id": merchant_id,
        "customer_owner": ledger.CUSTOMER,
        "now": now,
    }
    carried = {table_of(model): rows for model, rows in rows_inserted_at_commit(session).items()}
    for i, (table, carried_rows) in enumerate(carried.items()):
        parameters[f"carried_{i}"] = _rows(table, carried_rows)
    written: set[uuid.UUID] = set()
    balances: dict[ledger.AccountKey, int] = {}
    with_coupon: set[uuid.UUID] = set()
    for what, row_id, owner_id, kind, account_type, unit, balance in await prepared.run_text(
        session, _grant_statement(tuple(carried)), _GRANT_COLUMNS, parameters
    ):
        if what == "REWARD":
            written.add(row_id)
        elif what == "COUPON":
            with_coupon.add(row_id)
        else:
            balances[ledger.AccountKey(ledger.CUSTOMER, owner_id, kind, account_type, unit)] = balance
    granted = [(attach(session, Reward, row), spec) for row, spec in zip(rows, specs, strict=True) if row["id"] in written]
    ledger.forget_cached_accounts(session, merchant_id, balances)
    by_id = {reward.id: reward for reward, _spec in granted}
    lifecycle.pay_debts_first([by_id[row["id"]] for row in booked if row["id"] in by_id], balances)
    for reward, spec in granted:  # a generated code met an existing one (or the reward did): issue it again
        if (
            reward.status == RewardStatus.AVAILABLE
            and kinds.behaviour_of(reward.kind).has_coupon
            and reward.id not in with_coupon
        ):
            await coupons.issue_for_reward(session, reward, spec)
    await session.flush()  # a debt paid off changed a lot's `remaining`
    return granted


def _customer_key(row: dict[str, Any]) -> ledger.AccountKey:
    return lifecycle.customer_account_key(row["customer_id"], row["kind"], row["status"], row["unit"])


def _program_key(row: dict[str, Any]) -> ledger.AccountKey:
    return lifecycle.program_account_key(row["program_id"], row["kind"], row["unit"])
