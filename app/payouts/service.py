"""Payouts by the merchant's server and its people: request, reject, release a hold, mark
paid or failed. Approval is in `app.payouts.approvals` (it needs a second factor).

Every write a client may retry is idempotent: a request by its idempotency key, the other
changes by the state they leave (doing one again returns the payout with `replayed`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.db import utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants import audit
from app.pagination import Page, paginate
from app.payouts import accounts, funds, holds
from app.payouts.models import Payout, PayoutAccount, PayoutApproval, PayoutStatus
from app.referrals import customers
from app.referrals.models import Customer
from app.rewards import ledger
from app.rewards.models import AccountType
from app.tenancy import scoped
from app.webhooks import events
from app.webhooks.service import emit


@dataclass(frozen=True)
class Changed:
    payout: Payout
    replayed: bool = False  # it was already in that state: nothing changed


async def announce(session: AsyncSession, event_type: str, payouts: list[Payout]) -> None:
    """Emit `event_type` for each payout; the payload's lookups run once, and only if an
    endpoint listens."""
    if not payouts:
        return
    looked_up: dict[uuid.UUID, tuple[dict, dict]] = {}

    async def lookups(merchant_id: uuid.UUID) -> tuple[dict, dict]:
        """The merchant's payouts' customers' external ids and accounts (a job's payouts span merchants)."""
        if merchant_id not in looked_up:
            theirs = [p for p in payouts if p.merchant_id == merchant_id]
            customers_of = await session.execute(
                scoped(
                    select(Customer.id, Customer.external_id).where(Customer.id.in_({p.customer_id for p in theirs})), merchant_id
                )
            )
            accounts_of = await session.scalars(
                scoped(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in theirs})), merchant_id)
            )
            looked_up[merchant_id] = dict(customers_of.all()), {a.id: a for a in accounts_of.all()}
        return looked_up[merchant_id]

    for payout in payouts:

        async def payload(payout: Payout = payout) -> dict:
            external_ids, accounts_by_id = await lookups(payout.merchant_id)
            return events.payout_data(
                payout,
                customer_external_id=external_ids.get(payout.customer_id),
                account=accounts_by_id.get(payout.payout_account_id),
            )

        await emit(session, payout.merchant_id, event_type, payload)


async def announce_created(session: AsyncSession, payouts: list[Payout]) -> None:
    await announce(session, events.PAYOUT_REQUESTED, payouts)
    await announce(session, events.PAYOUT_ON_HOLD, [p for p in payouts if p.status == PayoutStatus.ON_HOLD])


@dataclass(frozen=True)
class Requested:
    payout: Payout
    replayed: bool


async def _replay(session: AsyncSession, merchant_id: uuid.UUID, key: str, request_hash: str) -> Payout | None:
    payout = await session.scalar(scoped(select(Payout).where(Payout.idempotency_key == key), merchant_id))
    if payout is not None and payout.request_hash != request_hash:
        raise DomainError(
            "idempotencyKey", ErrorCode.IDEMPOTENCY_CONFLICT, "this idempotency key was already used for another request"
        )
    return payout


async def request_payout(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_external_id: str,
    currency: str,
    amount: int | None,
    idempotency_key: str,
    actor: audit.Actor,
) -> Requested:
    """Set aside the customer's available commission in `currency` (all of it, or `amount`)
    for a payout waiting for approval, or on hold with its reasons."""
    key = validation.required_text(idempotency_key, "idempotencyKey", 255, strip=False)
    unit = money.currency(currency, "currency")
    if unit is None:
        raise DomainError("currency", ErrorCode.REQUIRED, "currency is required")
    if amount is not None and (isinstance(amount, bool) or not 1 <= amount <= money.MAX_AMOUNT):
        raise DomainError("amount", ErrorCode.INVALID_AMOUNT, "amount must be a positive whole number of minor units")
    external_id = customers.external_id(customer_external_id)
    request_hash = funds.request_hash("REQUEST", external_id, unit, amount)
    if (replay := await _replay(session, merchant_id, key, request_hash)) is not None:
        return Requested(replay, replayed=True)
    customer, account = await accounts.account_of(session, merchant_id=merchant_id, customer_external_id=external_id)
    if account is None:
        raise DomainError("customerExternalId", ErrorCode.PAYOUT_ACCOUNT_REQUIRED, "set the customer's payout account first")
    # Queue behind any other payout of this customer; one with the same key may commit meanwhile.
    await ledger.customer_account(
        session,
        merchant_id=merchant_id,
        customer_id=customer.id,
        kind=funds.KIND,
        unit=unit,
        account_type=AccountType.AVAILABLE,
        lock=True,
    )
    if (replay := await _replay(session, merchant_id, key, request_hash)) is not None:
        return Requested(replay, replayed=True)
    [taken] = await funds.take(
        session,
        merchant_id=merchant_id,
        actor=actor,
        claims=[
            funds.Claim(
                customer=customer,
                account=account,
                currency=unit,
                amount=amount,
                idempotency_key=key,
                request_hash=request_hash,
            )
        ],
    )
    if taken.payout is None:
        raise DomainError(
            "amount" if amount is not None else "currency",
            ErrorCode.INSUFFICIENT_BALANCE,
            f"the available commission is {taken.available} {unit}",
        )
    await announce_created(session, [taken.payout])
    return Requested(taken.payout, replayed=False)


async def get_payout(
    session: AsyncSession, *, merchant_id: uuid.UUID, payout_id: uuid.UUID, lock: bool = False, field: str = "id"
) -> Payout:
    query = scoped(select(Payout).where(Payout.id == payout_id), merchant_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    payout = await session.scalar(query)
    if payout is None:
        raise NotFound(field, "payout")
    return payout


async def list_payouts(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    status: PayoutStatus | None = None,
    customer_external_id: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Payout]:
    """Newest first."""
    query = scoped(select(Payout), merchant_id)
    if status is not None:
        query = query.where(Payout.status == status)
    if customer_external_id is not None:
        customer = await customers.require_customer(
            session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
        )
        query = query.where(Payout.customer_id == customer.id)
    return await paginate(session, query, Payout.id, first=first, after=after)


async def payouts_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[Payout]:
    return list((await session.scalars(scoped(select(Payout).where(Payout.id.in_(ids)), merchant_id))).all())


def _transition(payout: Payout, status: PayoutStatus, now: datetime, note: str | None = None) -> None:
    payout.status = status
    payout.updated_at = now
    if note is not None:
        payout.note = note
    if status in (PayoutStatus.REJECTED, PayoutStatus.FAILED):
        payout.ended_at = now


def _refuse(payout: Payout, wanted: str) -> DomainError:
    return DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, f"the payout is {payout.status.value}: it cannot be {wanted}")


async def _lock_for(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    payout_id: uuid.UUID,
    *,
    done: PayoutStatus,
    allowed: tuple[PayoutStatus, ...],
    refusal: str,
) -> tuple[Payout, bool]:
    """The payout, locked, and whether it is `done` already (a retry); refused unless it is
    in one of the `allowed` states."""
    payout = await get_payout(session, merchant_id=merchant_id, payout_id=payout_id, lock=True)
    if payout.status is done:
        return payout, True
    if payout.status not in allowed:
        raise _refuse(payout, refusal)
    return payout, False


async def _finish(
    session: AsyncSession, payout: Payout, event_type: str, actor: audit.Actor, note: str | None = None, **details: Any
) -> Changed:
    """Record a change: the audit entry (named like the event) and the webhook."""
    await session.flush()
    await audit.record(
        session,
        merchant_id=payout.merchant_id,
        actor=actor,
        action=event_type,
        subject_id=payout.id,
        note=note,
        details={"amount": payout.amount, "currency": payout.currency, "reference": payout.reference, **details},
    )
    if event_type in events.EVENT_TYPES:
        await announce(session, event_type, [payout])
    return Changed(payout)


async def reject(
    session: AsyncSession, *, merchant_id: uuid.UUID, payout_id: uuid.UUID, reason: str, actor: audit.Actor
) -> Changed:
    """Not paying it: the funds go back to the customer's balance. Before it is sent only."""
    reason = validation.required_text(reason, "reason", 500)
    payout, done = await _lock_for(
        session,
        merchant_id,
        payout_id,
        done=PayoutStatus.REJECTED,
        allowed=(PayoutStatus.PENDING_APPROVAL, PayoutStatus.ON_HOLD, PayoutStatus.APPROVED),
        refusal="rejected (a payout with its provider is marked failed instead)",
    )
    if done:
        return Changed(payout, replayed=True)
    await funds.return_funds(session, payout, after_paid=False)
    _transition(payout, PayoutStatus.REJECTED, utcnow(), reason)
    return await _finish(session, payout, events.PAYOUT_REJECTED, actor, reason)


async def mark_paid(
    session: AsyncSession, *, merchant_id: uuid.UUID, payout_id: uuid.UUID, provider_reference: str, actor: audit.Actor
) -> Changed:
    reference = validation.required_text(provider_reference, "providerReference", 255)
    payout, done = await _lock_for(
        session,
        merchant_id,
        payout_id,
        done=PayoutStatus.PAID,
        allowed=(PayoutStatus.APPROVED, PayoutStatus.PROCESSING),
        refusal="marked paid (only an approved payout is paid)",
    )
    if done:
        if payout.provider_reference != reference:
            raise DomainError(
                "providerReference",
                ErrorCode.IDEMPOTENCY_CONFLICT,
                f"the payout was already marked paid with reference {payout.provider_reference!r}",
            )
        return Changed(payout, replayed=True)
    await funds.settle(session, payout)
    now = utcnow()
    _transition(payout, PayoutStatus.PAID, now)
    payout.paid_at = now
    payout.provider_reference = reference
    return await _finish(session, payout, events.PAYOUT_PAID, actor, provider_reference=reference)


async def mark_failed(
    session: AsyncSession, *, merchant_id: uuid.UUID, payout_id: uuid.UUID, reason: str, actor: audit.Actor
) -> Changed:
    """The provider could not pay it, or (after PAID) the payment came back: the funds return
    to the customer's balance."""
    reason = validation.required_text(reason, "reason", 500)
    payout, done = await _lock_for(
        session,
        merchant_id,
        payout_id,
        done=PayoutStatus.FAILED,
        allowed=(PayoutStatus.APPROVED, PayoutStatus.PROCESSING, PayoutStatus.PAID),
        refusal="marked failed (reject a payout that was not approved)",
    )
    if done:
        return Changed(payout, replayed=True)
    was_paid = payout.status == PayoutStatus.PAID
    await funds.return_funds(session, payout, after_paid=was_paid)
    _transition(payout, PayoutStatus.FAILED, utcnow(), reason)
    return await _finish(session, payout, events.PAYOUT_FAILED, actor, reason, after_paid=was_paid)


async def release_hold(
    session: AsyncSession, *, merchant_id: uuid.UUID, payout_id: uuid.UUID, note: str, actor: audit.Actor
) -> Changed:
    """A person looked at the evidence: the payout may be approved. Holds whose condition
    still lasts (an open review, the cooling-off, a clawback debt) cannot be released."""
    note = validation.required_text(note, "note", 500)
    payout = await get_payout(session, merchant_id=merchant_id, payout_id=payout_id, lock=True)
    if payout.status == PayoutStatus.PENDING_APPROVAL:
        return Changed(payout, replayed=True)
    if payout.status != PayoutStatus.ON_HOLD:
        raise _refuse(payout, "released (it is not on hold)")
    account = await session.get_one(PayoutAccount, payout.payout_account_id)
    now = utcnow()
    [lasting] = await holds.evaluate(
        session,
        merchant_id=merchant_id,
        now=now,
        reasons=holds.DYNAMIC,
        subjects=[holds.Subject(payout.customer_id, account, payout.currency)],
    )
    if lasting:
        raise DomainError("id", ErrorCode.PAYOUT_ON_HOLD, "still on hold: " + "; ".join(h.message for h in lasting))
    released = list(payout.hold_reasons or [])
    payout.hold_reasons = []
    _transition(payout, PayoutStatus.PENDING_APPROVAL, now, note)
    return await _finish(session, payout, "payout.hold_released", actor, note, released=[h["code"] for h in released])


async def refresh_holds(session: AsyncSession, *, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """The worker's periodic pass (every merchant): lift holds whose condition ended (a review
    resolved, the cooling-off over) when nothing else holds the payout, and hold waiting
    payouts whose customer is now in review, cooling off or in debt. Returns (lifted, held)."""
    now = now or utcnow()
    query = select(Payout).order_by(Payout.id).limit(limit).execution_options(populate_existing=True)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    candidates = [
        p
        for p in (await session.scalars(query.where(Payout.status == PayoutStatus.ON_HOLD))).all()
        if holds.all_lift_by_themselves(p.hold_reasons)
    ] + list((await session.scalars(query.where(Payout.status == PayoutStatus.PENDING_APPROVAL))).all())
    if not candidates:
        return 0, 0
    destinations = {
        a.id: a
        for a in (
            await session.scalars(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in candidates})))
        ).all()
    }
    lifted, held = [], []
    for merchant_id in sorted({p.merchant_id for p in candidates}):
        mine = [p for p in candidates if p.merchant_id == merchant_id]
        lasting = await holds.evaluate(
            session,
            merchant_id=merchant_id,
            now=now,
            reasons=holds.DYNAMIC,
            subjects=[holds.Subject(p.customer_id, destinations[p.payout_account_id], p.currency) for p in mine],
        )
        for payout, current in zip(mine, lasting, strict=True):
            if payout.status == PayoutStatus.ON_HOLD and not current:
                payout.hold_reasons = []
                _transition(payout, PayoutStatus.PENDING_APPROVAL, now)
                lifted.append(payout)
            elif payout.status == PayoutStatus.PENDING_APPROVAL and current:
                payout.hold_reasons = [h.to_json() for h in current]
                _transition(payout, PayoutStatus.ON_HOLD, now)
                held.append(payout)
    for payout in lifted:
        await _finish(session, payout, "payout.hold_lifted", audit.SYSTEM, "the reasons for the hold ended")
    await session.flush()
    await announce(session, events.PAYOUT_ON_HOLD, held)
    return len(lifted), len(held)


@dataclass(frozen=True)
class Relations:
    """What a list of payouts shows next to each: destination, customer, approvals (three queries)."""

    accounts: dict[uuid.UUID, PayoutAccount]
    external_ids: dict[uuid.UUID, str]
    approvals: dict[uuid.UUID, list[PayoutApproval]]


async def relations(session: AsyncSession, *, merchant_id: uuid.UUID, payouts: list[Payout]) -> Relations:
    if not payouts:
        return Relations({}, {}, {})
    found_accounts = {
        a.id: a
        for a in (
            await session.scalars(
                scoped(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in payouts})), merchant_id)
            )
        ).all()
    }
    external_ids = dict(
        (
            await session.execute(
                scoped(
                    select(Customer.id, Customer.external_id).where(Customer.id.in_({p.customer_id for p in payouts})),
                    merchant_id,
                )
            )
        ).all()
    )
    approvals: dict[uuid.UUID, list[PayoutApproval]] = {p.id: [] for p in payouts}
    for approval in (
        await session.scalars(
            scoped(select(PayoutApproval).where(PayoutApproval.payout_id.in_(list(approvals))), merchant_id).order_by(
                PayoutApproval.id
            )
        )
    ).all():
        approvals[approval.payout_id].append(approval)
    return Relations(found_accounts, external_ids, approvals)
