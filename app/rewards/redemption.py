"""Spending store credit and points at the merchant's checkout.

Idempotent by the caller's key: the same key and input return the first transaction; the
same key with other input is IDEMPOTENCY_CONFLICT. The customer's AVAILABLE account row is
locked for the check and the spend, so concurrent redemptions can never take a balance
below zero.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.errors import DomainError, ErrorCode, NotFound
from app.referrals import customers
from app.rewards import kinds, ledger
from app.rewards.ledger import Posting
from app.rewards.models import AccountType, LedgerAccount, LedgerEntry, LedgerTransaction, Reward, RewardKind


@dataclass(frozen=True)
class Redemption:
    transaction: LedgerTransaction
    amount: int
    unit: str
    balance: int  # available after the redemption
    replayed: bool


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


async def redeem(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_external_id: str,
    kind: RewardKind,
    amount: int,
    unit: str | None,
    idempotency_key: str,
    order_id: str | None = None,
) -> Redemption:
    behaviour = kinds.behaviour_of(kind)
    if behaviour.spending is not kinds.Spending.CHECKOUT:
        spent_here = kinds.spoken(kinds.kinds_where(lambda b: b.spending is kinds.Spending.CHECKOUT), lower=True)
        raise DomainError("kind", ErrorCode.INVALID_INPUT, f"only {spent_here} are redeemed at checkout")
    external_id = customers.external_id(customer_external_id)
    key = validation.required_text(idempotency_key, "idempotencyKey", 255, strip=False)
    order_id = validation.text(order_id, "orderId", 255)
    if behaviour.unit is None:  # in the rule's currency, so in the one given
        unit = money.currency(unit, "currency")
        if unit is None:
            raise DomainError("currency", ErrorCode.REQUIRED, "currency is required")
    else:
        unit = behaviour.unit
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= money.MAX_AMOUNT:
        raise DomainError("amount", ErrorCode.INVALID_AMOUNT, "amount must be a positive whole number")
    request_hash = _hash(kind.value, external_id, amount, unit, order_id)

    replay = await _replay(session, merchant_id, key, request_hash)
    if replay is not None:
        return replay
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=external_id, field="customerExternalId"
    )
    account = await ledger.customer_account(
        session,
        merchant_id=merchant_id,
        customer_id=customer.id,
        kind=kind,
        unit=unit,
        account_type=AccountType.AVAILABLE,
        lock=True,
    )
    # A concurrent call with the same key may have committed while we waited for the lock.
    replay = await _replay(session, merchant_id, key, request_hash)
    if replay is not None:
        return replay
    if account.balance < amount:
        raise DomainError("amount", ErrorCode.INSUFFICIENT_BALANCE, f"the available balance is {max(0, account.balance)} {unit}")
    await ledger.consume(session, account, amount)
    program_side = await _program_side(session, merchant_id, customer.id, kind, unit)
    transaction = await ledger.post(
        session,
        merchant_id=merchant_id,
        kind="REDEEM",
        customer_id=customer.id,
        idempotency_key=key,
        request_hash=request_hash,
        reference=order_id,
        postings=[Posting(account, -amount), Posting(program_side, amount)],
    )
    return Redemption(transaction=transaction, amount=amount, unit=unit, balance=account.balance, replayed=False)


async def _program_side(
    session: AsyncSession, merchant_id: uuid.UUID, customer_id: uuid.UUID, kind: RewardKind, unit: str
) -> LedgerAccount:
    """Redemptions are booked against the program the customer's oldest lot came from."""
    program_id = await session.scalar(
        select(Reward.program_id)
        .where(Reward.customer_id == customer_id, Reward.kind == kind, Reward.unit == unit)
        .order_by(Reward.id)
        .limit(1)
    )
    assert program_id is not None  # a positive balance comes from a reward
    return await ledger.account(
        session,
        merchant_id=merchant_id,
        owner_type=ledger.PROGRAM,
        owner_id=program_id,
        kind=kind,
        account_type=AccountType.PROGRAM_REDEEMED,
        unit=unit,
    )


async def _replay(session: AsyncSession, merchant_id: uuid.UUID, key: str, request_hash: str) -> Redemption | None:
    transaction = await session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.merchant_id == merchant_id, LedgerTransaction.idempotency_key == key)
    )
    if transaction is None:
        return None
    if transaction.request_hash != request_hash or transaction.kind != "REDEEM":
        raise DomainError(
            "idempotencyKey", ErrorCode.IDEMPOTENCY_CONFLICT, "this idempotency key was already used for another request"
        )
    entry = await session.scalar(
        select(LedgerEntry)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction.id, LedgerAccount.owner_type == ledger.CUSTOMER)
    )
    if entry is None:
        raise NotFound("idempotencyKey", "redemption")
    account = await session.get_one(LedgerAccount, entry.account_id)
    await session.refresh(account, ["balance"])
    return Redemption(transaction=transaction, amount=-entry.amount, unit=entry.unit, balance=account.balance, replayed=True)
