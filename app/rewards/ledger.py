"""The append-only double-entry ledger of credit, points and commission.

Every movement is a transaction whose entries sum to zero per unit, between a customer's
accounts (HELD, AVAILABLE) and the program's (PROGRAM_REWARDS, PROGRAM_REDEEMED,
PROGRAM_EXPIRED). Customer balances are cached on the account row and updated with
`balance = balance + x` in the same transaction; program accounts are summed from their
entries when needed (a hot row per program would serialise every grant).

Lots: each credit/points/commission reward tracks its `remaining` part. Spending takes the
soonest-expiring lots first, so expiry removes exactly what was left of a lot. Invariant per
customer account: sum(remaining of its AVAILABLE lots) == max(0, balance).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app import money
from app.db import insert_ignoring_conflicts, new_id, per_dialect, table_of, utcnow
from app.rewards.models import (
    AccountType,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Reward,
    RewardKind,
    RewardStatus,
)

CUSTOMER = "CUSTOMER"
PROGRAM = "PROGRAM"


@dataclass(frozen=True)
class Posting:
    account: LedgerAccount
    amount: int


async def account(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    owner_type: str,
    owner_id: uuid.UUID,
    kind: RewardKind,
    account_type: AccountType,
    unit: str,
    lock: bool = False,
) -> LedgerAccount:
    """The account, created on first use (concurrent creators meet on the unique key).

    Accounts are remembered for the rest of the transaction: one action's grants book to the
    same few accounts over and over."""
    cache = session.info.setdefault(_ACCOUNT_CACHE, {})
    cache_key = (merchant_id, owner_id, kind.value, account_type.value, unit)
    if not lock and cache_key in cache:
        return cache[cache_key]
    query = select(LedgerAccount).where(
        LedgerAccount.merchant_id == merchant_id,
        LedgerAccount.owner_id == owner_id,
        LedgerAccount.kind == kind.value,
        LedgerAccount.account_type == account_type.value,
        LedgerAccount.unit == unit,
    )
    if lock:
        query = query.with_for_update()
    query = query.execution_options(populate_existing=True)
    found = await session.scalar(query)
    if found is None:
        await session.execute(
            insert_ignoring_conflicts(session, LedgerAccount).values(
                id=new_id(),
                merchant_id=merchant_id,
                owner_type=owner_type,
                owner_id=owner_id,
                kind=kind.value,
                account_type=account_type.value,
                unit=unit,
                balance=0,
            )
        )
        found = await session.scalar(query)
    assert found is not None
    cache[cache_key] = found
    return found


_ACCOUNT_CACHE = "ledger_accounts"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_accounts(session: Session, *args: object) -> None:
    """A cached account is only good inside the transaction that read it."""
    session.info.pop(_ACCOUNT_CACHE, None)


# Program accounts are never changed nor removed once made (their balances are derived from
# entries), so their ids are kept per process once the transaction that read them committed:
# grants then skip the read (`program_account_ids`).
_PROGRAM_ACCOUNT_IDS: dict[tuple[uuid.UUID, AccountKey], uuid.UUID] = {}
_SEEN_PROGRAM_ACCOUNTS = "ledger_program_accounts"


@event.listens_for(Session, "after_commit")
def _keep_program_accounts(session: Session) -> None:
    seen = session.info.pop(_SEEN_PROGRAM_ACCOUNTS, None)
    if seen and len(_PROGRAM_ACCOUNT_IDS) < 100_000:
        _PROGRAM_ACCOUNT_IDS.update(seen)


@event.listens_for(Session, "after_soft_rollback")
def _forget_program_accounts(session: Session, previous_transaction: object) -> None:
    session.info.pop(_SEEN_PROGRAM_ACCOUNTS, None)


async def customer_account(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_id: uuid.UUID,
    kind: RewardKind,
    unit: str,
    account_type: AccountType,
    lock: bool = False,
) -> LedgerAccount:
    return await account(
        session,
        merchant_id=merchant_id,
        owner_type=CUSTOMER,
        owner_id=customer_id,
        kind=kind,
        account_type=account_type,
        unit=unit,
        lock=lock,
    )


async def customer_accounts(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    kind: RewardKind,
    account_type: AccountType,
    pairs: set[tuple[uuid.UUID, str]],
    lock: bool = False,
) -> dict[tuple[uuid.UUID, str], LedgerAccount]:
    """Many customers' accounts of one kind and type, by (customer id, unit), created where
    missing, in two or three statements; with `lock`, locked in id order."""
    if not pairs:
        return {}
    query = (
        select(LedgerAccount)
        .where(
            LedgerAccount.merchant_id == merchant_id,
            LedgerAccount.owner_id.in_(sorted({owner for owner, _ in pairs})),
            LedgerAccount.kind == kind.value,
            LedgerAccount.account_type == account_type.value,
            LedgerAccount.unit.in_(sorted({unit for _, unit in pairs})),
        )
        .order_by(LedgerAccount.id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    found = {(a.owner_id, a.unit): a for a in (await session.scalars(query)).all()}
    missing = pairs - found.keys()
    if missing:
        await session.execute(
            insert_ignoring_conflicts(session, LedgerAccount),
            [
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "owner_type": CUSTOMER,
                    "owner_id": owner,
                    "kind": kind.value,
                    "account_type": account_type.value,
                    "unit": unit,
                    "balance": 0,
                }
                for owner, unit in sorted(missing)
            ],
        )
        found = {(a.owner_id, a.unit): a for a in (await session.scalars(query)).all()}
    return {pair: found[pair] for pair in pairs}


async def lot_account(session: AsyncSession, reward: Reward, account_type: AccountType, lock: bool = False) -> LedgerAccount:
    """The customer account a reward's value sits in."""
    return await customer_account(
        session,
        merchant_id=reward.merchant_id,
        customer_id=reward.customer_id,
        kind=RewardKind(reward.kind),
        unit=reward.unit,
        account_type=account_type,
        lock=lock,
    )


async def program_account(session: AsyncSession, reward: Reward, account_type: AccountType) -> LedgerAccount:
    return await account(
        session,
        merchant_id=reward.merchant_id,
        owner_type=PROGRAM,
        owner_id=reward.program_id,
        kind=RewardKind(reward.kind),
        account_type=account_type,
        unit=reward.unit,
    )


async def post(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    kind: str,
    postings: list[Posting],
    reward_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reference: str | None = None,
) -> LedgerTransaction:
    _check_balanced(postings)
    now = utcnow()
    transaction = LedgerTransaction(
        id=new_id(),
        merchant_id=merchant_id,
        kind=kind,
        reward_id=reward_id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reference=reference,
        created_at=now,
    )
    session.add(transaction)
    await session.flush()  # before its entries: no relationship() tells the ORM the order
    for posting in postings:
        if posting.amount == 0:
            continue
        session.add(
            LedgerEntry(
                id=new_id(),
                merchant_id=merchant_id,
                transaction_id=transaction.id,
                account_id=posting.account.id,
                amount=posting.amount,
                unit=posting.account.unit,
                created_at=now,
            )
        )
        if posting.account.owner_type == CUSTOMER:
            # Atomic on the row; RETURNING keeps the in-memory account up to date.
            balance = await session.scalar(
                update(LedgerAccount)
                .where(LedgerAccount.id == posting.account.id)
                .values(balance=LedgerAccount.balance + posting.amount)
                .returning(LedgerAccount.balance)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(posting.account, "balance", balance)
    await session.flush()
    return transaction


def _check_balanced(postings: list[Posting]) -> None:
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        totals[posting.account.unit] += posting.amount
    if any(totals.values()):
        raise ValueError(f"unbalanced ledger transaction: {dict(totals)}")


@dataclass(frozen=True)
class Planned:
    """A transaction for `post_many`."""

    kind: str
    postings: list[Posting]
    customer_id: uuid.UUID | None = None
    reference: str | None = None


_ACCOUNTS = table_of(LedgerAccount)
_ADD_TO_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("target"), _ACCOUNTS.c.merchant_id == bindparam("merchant"))
    .values(balance=_ACCOUNTS.c.balance + bindparam("delta"))
)


@dataclass(frozen=True)
class AccountKey:
    """An account by what it is (what its unique key says), before its id is known."""

    owner_type: str
    owner_id: uuid.UUID
    kind: str
    account_type: str
    unit: str


@per_dialect
def _ADD_TO_ACCOUNTS(dialect: str) -> Any:  # noqa: N802 (a statement, named like a constant)
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(_ACCOUNTS)  # of the table: an ORM insert takes its bulk path, at several times the CPU
    return statement.on_conflict_do_update(
        index_elements=["merchant_id", "owner_id", "kind", "account_type", "unit"],
        set_={"balance": _ACCOUNTS.c.balance + statement.excluded.balance},
    ).returning(
        _ACCOUNTS.c.id, _ACCOUNTS.c.owner_id, _ACCOUNTS.c.kind, _ACCOUNTS.c.account_type, _ACCOUNTS.c.unit, _ACCOUNTS.c.balance
    )


async def add_to_customer_accounts(
    session: AsyncSession, *, merchant_id: uuid.UUID, deltas: dict[AccountKey, int]
) -> dict[AccountKey, tuple[uuid.UUID, int]]:
    """Create the customer accounts that do not exist yet and add each delta to its balance, in
    one statement (INSERT ... ON CONFLICT DO UPDATE); returns each account's id and balance
    after. Rows are locked in the order given: give them in grant order."""
    if not deltas:
        return {}
    rows = [
        {
            "id": new_id(),
            "merchant_id": merchant_id,
            "owner_type": key.owner_type,
            "owner_id": key.owner_id,
            "kind": key.kind,
            "account_type": key.account_type,
            "unit": key.unit,
            "balance": delta,
        }
        for key, delta in deltas.items()
    ]
    # executemany of one prebuilt statement: SQLAlchemy sends it as one multi-row INSERT, rows
    # in the order given (the lock order).
    result = await session.execute(_ADD_TO_ACCOUNTS(session), rows)
    found = {
        AccountKey(CUSTOMER, row.owner_id, row.kind.value, row.account_type.value, row.unit): (row.id, row.balance)
        for row in result
    }
    forget_cached_accounts(session, merchant_id, deltas)
    return found


def forget_cached_accounts(session: AsyncSession, merchant_id: uuid.UUID, keys: Iterable[AccountKey]) -> None:
    """Accounts read earlier in this transaction (`account`) whose balances a statement has since changed."""
    cache = session.info.get(_ACCOUNT_CACHE, {})
    for key in keys:
        cache.pop((merchant_id, key.owner_id, key.kind, key.account_type, key.unit), None)


_PROGRAM_ACCOUNTS = select(
    LedgerAccount.id, LedgerAccount.owner_id, LedgerAccount.kind, LedgerAccount.account_type, LedgerAccount.unit
).where(
    LedgerAccount.merchant_id == bindparam("merchant_id"),
    tuple_(LedgerAccount.owner_id, LedgerAccount.kind, LedgerAccount.account_type, LedgerAccount.unit).in_(
        bindparam("wanted", expanding=True)
    ),
)


async def program_account_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, keys: set[AccountKey]
) -> dict[AccountKey, uuid.UUID]:
    """The program accounts' ids, created where missing. They are read, never locked or
    updated here: one row per program would otherwise serialise every grant of the program."""
    if not keys:
        return {}
    known = {key: _PROGRAM_ACCOUNT_IDS.get((merchant_id, key)) for key in keys}
    if all(known.values()):
        return known  # type: ignore[return-value]
    found = await _read_or_create_program_accounts(session, merchant_id, keys)
    session.info.setdefault(_SEEN_PROGRAM_ACCOUNTS, {}).update(((merchant_id, k), v) for k, v in found.items())
    return found


async def _read_or_create_program_accounts(
    session: AsyncSession, merchant_id: uuid.UUID, keys: set[AccountKey]
) -> dict[AccountKey, uuid.UUID]:
    wanted = [(k.owner_id, k.kind, k.account_type, k.unit) for k in sorted(keys, key=_key_order)]

    async def read() -> dict[AccountKey, uuid.UUID]:
        rows = await session.execute(_PROGRAM_ACCOUNTS, {"merchant_id": merchant_id, "wanted": wanted})
        return {AccountKey(PROGRAM, r.owner_id, r.kind.value, r.account_type.value, r.unit): r.id for r in rows}

    found = await read()
    missing = keys - found.keys()
    if missing:
        await session.execute(
            insert_ignoring_conflicts(session, LedgerAccount),
            [
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "owner_type": PROGRAM,
                    "owner_id": k.owner_id,
                    "kind": k.kind,
                    "account_type": k.account_type,
                    "unit": k.unit,
                    "balance": 0,
                }
                for k in sorted(missing, key=_key_order)
            ],
        )
        found = await read()
    return found


def _key_order(key: AccountKey) -> tuple:
    return (str(key.owner_id), key.kind, key.account_type, key.unit)


@dataclass(frozen=True)
class Booking:
    """A balanced transaction by account ids (see `book`)."""

    kind: str
    entries: list[tuple[uuid.UUID, int, str]]  # (account id, signed amount, unit)
    reward_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None


# Core inserts of the tables, built once: the ORM's bulk insert costs more than the rows.
_INSERT_TRANSACTIONS = insert(table_of(LedgerTransaction))
_INSERT_ENTRIES = insert(table_of(LedgerEntry))


async def book(session: AsyncSession, *, merchant_id: uuid.UUID, bookings: list[Booking]) -> None:
    """Transactions and their entries in two multi-row INSERTs. Balances of customer accounts
    are the caller's to apply in the same database transaction (`add_to_customer_accounts`)."""
    now = utcnow()
    transactions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for booking in bookings:
        totals: dict[str, int] = defaultdict(int)
        for _account, amount, unit in booking.entries:
            totals[unit] += amount
        if any(totals.values()):
            raise ValueError(f"unbalanced ledger transaction: {dict(totals)}")
        transaction_id = new_id()
        transactions.append(
            {
                "id": transaction_id,
                "merchant_id": merchant_id,
                "kind": booking.kind,
                "reward_id": booking.reward_id,
                "customer_id": booking.customer_id,
                "idempotency_key": None,
                "request_hash": None,
                "reference": None,
                "created_at": now,
            }
        )
        entries.extend(
            {
                "id": new_id(),
                "merchant_id": merchant_id,
                "transaction_id": transaction_id,
                "account_id": account,
                "amount": amount,
                "unit": unit,
                "created_at": now,
            }
            for account, amount, unit in booking.entries
            if amount
        )
    if transactions:
        await session.execute(_INSERT_TRANSACTIONS, transactions)
        await session.execute(_INSERT_ENTRIES, entries)


async def post_many(session: AsyncSession, *, merchant_id: uuid.UUID, planned: list[Planned]) -> list[uuid.UUID]:
    """Many transactions in three statements (a payout run books thousands): one multi-row
    INSERT of transactions, one of entries, one batched UPDATE of customer balances. The
    customer accounts must be locked by the caller (their in-memory balance is updated)."""
    now = utcnow()
    transactions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    deltas: dict[uuid.UUID, int] = defaultdict(int)
    accounts: dict[uuid.UUID, LedgerAccount] = {}
    ids: list[uuid.UUID] = []
    for plan in planned:
        _check_balanced(plan.postings)
        transaction_id = new_id()
        ids.append(transaction_id)
        transactions.append(
            {
                "id": transaction_id,
                "merchant_id": merchant_id,
                "kind": plan.kind,
                "reward_id": None,
                "customer_id": plan.customer_id,
                "idempotency_key": None,
                "request_hash": None,
                "reference": plan.reference,
                "created_at": now,
            }
        )
        for posting in plan.postings:
            if posting.amount == 0:
                continue
            entries.append(
                {
                    "id": new_id(),
                    "merchant_id": merchant_id,
                    "transaction_id": transaction_id,
                    "account_id": posting.account.id,
                    "amount": posting.amount,
                    "unit": posting.account.unit,
                    "created_at": now,
                }
            )
            if posting.account.owner_type == CUSTOMER:
                deltas[posting.account.id] += posting.amount
                accounts[posting.account.id] = posting.account
    if transactions:
        await session.execute(_INSERT_TRANSACTIONS, transactions)
        await session.execute(_INSERT_ENTRIES, entries)
    if deltas:
        await session.execute(
            _ADD_TO_BALANCE, [{"target": k, "delta": v, "merchant": merchant_id} for k, v in sorted(deltas.items())]
        )
        for account_id, delta in deltas.items():
            set_committed_value(accounts[account_id], "balance", accounts[account_id].balance + delta)
    return ids


async def consume(session: AsyncSession, account: LedgerAccount, amount: int, *, first: Reward | None = None) -> None:
    """Take `amount` out of the account's AVAILABLE lots: `first` (a reward being reversed)
    before the others, then soonest-expiring first. Lots that reach zero end as REDEEMED
    unless the caller sets another ending."""
    left = amount
    lots: list[Reward] = []
    if first is not None and first.status == RewardStatus.AVAILABLE:
        lots.append(first)
    query = (
        select(Reward)
        .where(
            Reward.customer_id == account.owner_id,
            Reward.merchant_id == account.merchant_id,
            Reward.kind == account.kind,
            Reward.unit == account.unit,
            Reward.status == RewardStatus.AVAILABLE,
            Reward.remaining > 0,
        )
        .order_by(Reward.expires_at.is_(None), Reward.expires_at, Reward.id)
        .with_for_update()
    )
    for lot in (await session.scalars(query)).all():
        if first is None or lot.id != first.id:
            lots.append(lot)
    now = utcnow()
    for lot in lots:
        if left <= 0:
            break
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        left -= taken
        if lot.remaining == 0 and lot is not first:
            lot.status = RewardStatus.REDEEMED
            lot.ended_at = now
    await session.flush()


async def absorb_debt(session: AsyncSession, account: LedgerAccount, lot: Reward) -> None:
    """A lot arriving in an account in debt (after a clawback) first pays the debt off."""
    debt = -min(0, account.balance - lot.remaining)  # balance already includes this lot
    if debt:
        lot.remaining = max(0, lot.remaining - debt)


async def program_balance(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, account_type: AccountType, unit: str
) -> int:
    return (
        await session.scalar(
            select(money.total(LedgerEntry.amount))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerAccount.merchant_id == merchant_id,
                LedgerAccount.owner_id == program_id,
                LedgerAccount.account_type == account_type.value,
                LedgerAccount.unit == unit,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class Discrepancy:
    what: str
    detail: str


async def verify(session: AsyncSession, *, merchant_id: uuid.UUID | None = None) -> list[Discrepancy]:
    """Check the ledger's invariants: every transaction sums to zero per unit, every cached
    customer balance equals the sum of its entries, lots match AVAILABLE balances and HELD
    rewards (net of voids) match HELD balances."""
    problems: list[Discrepancy] = []
    scope = [] if merchant_id is None else [LedgerEntry.merchant_id == merchant_id]
    unbalanced = await session.execute(
        select(LedgerEntry.transaction_id, LedgerEntry.unit, money.total(LedgerEntry.amount))
        .where(*scope)
        .group_by(LedgerEntry.transaction_id, LedgerEntry.unit)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    for transaction_id, unit, total in unbalanced:
        problems.append(Discrepancy("unbalanced transaction", f"{transaction_id} {unit} sums to {total}"))
    account_scope = [] if merchant_id is None else [LedgerAccount.merchant_id == merchant_id]
    sums = (
        select(LedgerEntry.account_id, money.total(LedgerEntry.amount).label("total")).group_by(LedgerEntry.account_id).subquery()
    )
    rows = await session.execute(
        select(LedgerAccount, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.owner_type == CUSTOMER, *account_scope)
    )
    for ledger_account, total in rows:
        if ledger_account.balance != total:
            problems.append(
                Discrepancy("cached balance", f"account {ledger_account.id}: cached {ledger_account.balance}, entries {total}")
            )
        if ledger_account.account_type == AccountType.AVAILABLE:
            remaining = await session.scalar(
                select(money.total(Reward.remaining)).where(
                    Reward.customer_id == ledger_account.owner_id,
                    Reward.merchant_id == ledger_account.merchant_id,
                    Reward.kind == ledger_account.kind,
                    Reward.unit == ledger_account.unit,
                    Reward.status == RewardStatus.AVAILABLE,
                )
            )
            if remaining != max(0, total):
                problems.append(Discrepancy("lots", f"account {ledger_account.id}: lots hold {remaining}, balance {total}"))
        elif ledger_account.account_type == AccountType.HELD:
            held = await session.scalar(
                select(money.total(Reward.amount - Reward.reversed_amount)).where(
                    Reward.customer_id == ledger_account.owner_id,
                    Reward.merchant_id == ledger_account.merchant_id,
                    Reward.kind == ledger_account.kind,
                    Reward.unit == ledger_account.unit,
                    Reward.status == RewardStatus.HELD,
                )
            )
            if held != total:
                problems.append(Discrepancy("held", f"account {ledger_account.id}: held rewards {held}, balance {total}"))
    return problems
