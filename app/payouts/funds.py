"""Money in and out of payouts, in the ledger and in the reward lots.

- `take`: for each claim, the customer's AVAILABLE commission account is locked, its lots
  (oldest first) give the amount, which moves AVAILABLE -> PAYOUT_PENDING, and a payout is
  created with the lots it took (`PayoutItem`). Never more than the balance: concurrent
  requests queue on the account row, and the later ones see what the earlier ones left. A
  balance at or below zero (after a clawback) pays nothing. Many claims (a payout run) cost
  a fixed handful of statements.
- `return_funds`: a rejected or failed payout's money goes back to AVAILABLE, and back into
  lots, so `referral ledger verify`'s invariant (AVAILABLE lots == balance) keeps holding.
- `settle`: a paid payout's money leaves (PAYOUT_PENDING -> the programs' PROGRAM_PAID_OUT);
  lots it emptied end PAID.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id, utcnow
from app.merchants import audit
from app.payouts import holds
from app.payouts.models import Payout, PayoutAccount, PayoutItem, PayoutStatus
from app.referrals.models import Customer
from app.rewards import kinds, ledger
from app.rewards.ledger import Planned, Posting
from app.rewards.models import AccountType, LedgerAccount, Reward, RewardStatus

KIND = kinds.PAID_OUT  # what payouts pay: cash commission (the kind spent by PAYOUT, app.rewards.kinds)
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def request_hash(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def new_reference() -> str:
    """What a payout is called on batch files and bank statements (PayPal allows 30 characters)."""
    return "PO-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(12))


@dataclass
class Claim:
    customer: Customer
    account: PayoutAccount
    currency: str
    amount: int | None  # None: everything available
    idempotency_key: str
    request_hash: str
    run_id: uuid.UUID | None = None


@dataclass
class Taken:
    claim: Claim
    available: int  # what the customer had (in the program, for a run) before this claim
    payout: Payout | None  # None: nothing (or not enough) to pay


async def take(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    claims: list[Claim],
    actor: audit.Actor,
    program_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[Taken]:
    """Create the payouts the balances allow (see the module doc). With `program_id`, only
    the lots earned in that program are paid (a program's scheduled run)."""
    now = now or utcnow()
    pairs = {(c.customer.id, c.currency) for c in claims}
    available_accounts = await ledger.customer_accounts(
        session, merchant_id=merchant_id, kind=KIND, account_type=AccountType.AVAILABLE, pairs=pairs, lock=True
    )
    lots_query = (
        select(Reward)
        .where(
            Reward.merchant_id == merchant_id,
            Reward.customer_id.in_(sorted({owner for owner, _ in pairs})),
            Reward.kind == KIND,
            Reward.unit.in_(sorted({unit for _, unit in pairs})),
            Reward.status == RewardStatus.AVAILABLE,
            Reward.remaining > 0,
        )
        .order_by(Reward.customer_id, Reward.created_at, Reward.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if program_id is not None:
        lots_query = lots_query.where(Reward.program_id == program_id)
    lots: dict[tuple[uuid.UUID, str], list[Reward]] = defaultdict(list)
    for lot in (await session.scalars(lots_query)).all():
        lots[(lot.customer_id, lot.unit)].append(lot)

    results: list[Taken] = []
    taking: list[tuple[Taken, list[tuple[Reward, int]]]] = []
    for claim in claims:
        key = (claim.customer.id, claim.currency)
        balance = available_accounts[key].balance
        available = max(0, min(balance, sum(lot.remaining for lot in lots[key])))
        amount = available if claim.amount is None else claim.amount
        taken = Taken(claim=claim, available=available, payout=None)
        results.append(taken)
        if amount <= 0 or amount > available:
            continue
        parts, left = [], amount
        for lot in lots[key]:
            if left == 0:
                break
            part = min(lot.remaining, left)
            if part:
                lot.remaining -= part
                left -= part
                parts.append((lot, part))
        taking.append((taken, parts))
    if not taking:
        return results

    subjects = [holds.Subject(t.claim.customer.id, t.claim.account, t.claim.currency) for t, _ in taking]
    found_holds = await holds.evaluate(session, merchant_id=merchant_id, subjects=subjects, now=now)
    pending_accounts = await ledger.customer_accounts(
        session,
        merchant_id=merchant_id,
        kind=KIND,
        account_type=AccountType.PAYOUT_PENDING,
        pairs={(t.claim.customer.id, t.claim.currency) for t, _ in taking},
    )
    payouts, items, planned = [], [], []
    for (taken, parts), on_hold in zip(taking, found_holds, strict=True):
        claim, amount = taken.claim, sum(part for _, part in parts)
        payout = Payout(
            id=new_id(),
            merchant_id=merchant_id,
            customer_id=claim.customer.id,
            payout_account_id=claim.account.id,
            program_id=program_id,
            run_id=claim.run_id,
            reference=new_reference(),
            currency=claim.currency,
            amount=amount,
            status=(PayoutStatus.ON_HOLD if on_hold else PayoutStatus.PENDING_APPROVAL).value,
            hold_reasons=[h.to_json() for h in on_hold],
            idempotency_key=claim.idempotency_key,
            request_hash=claim.request_hash,
            approvals_required=1,
            requested_by_key_id=actor.key_id,
            requested_by_admin_id=actor.admin_id,
            created_at=now,
            updated_at=now,
        )
        taken.payout = payout
        payouts.append(payout)
        items += [
            {
                "id": new_id(),
                "merchant_id": merchant_id,
                "payout_id": payout.id,
                "reward_id": lot.id,
                "program_id": lot.program_id,
                "amount": part,
            }
            for lot, part in parts
        ]
        key = (claim.customer.id, claim.currency)
        planned.append(
            Planned(
                kind="PAYOUT",
                customer_id=claim.customer.id,
                reference=str(payout.id),
                postings=[Posting(available_accounts[key], -amount), Posting(pending_accounts[key], amount)],
            )
        )
    session.add_all(payouts)
    await session.flush()
    await session.execute(insert(PayoutItem), items)
    await ledger.post_many(session, merchant_id=merchant_id, planned=planned)
    await session.flush()  # the lots' new `remaining`
    return results


async def _items(session: AsyncSession, payout: Payout) -> list[PayoutItem]:
    return list(
        (await session.scalars(select(PayoutItem).where(PayoutItem.payout_id == payout.id).order_by(PayoutItem.id))).all()
    )


async def _available_account(session: AsyncSession, payout: Payout) -> LedgerAccount:
    return await ledger.customer_account(
        session,
        merchant_id=payout.merchant_id,
        customer_id=payout.customer_id,
        kind=KIND,
        unit=payout.currency,
        account_type=AccountType.AVAILABLE,
        lock=True,
    )


async def _program_accounts(session: AsyncSession, payout: Payout, items: list[PayoutItem]) -> list[tuple[LedgerAccount, int]]:
    by_program: dict[uuid.UUID, int] = defaultdict(int)
    for item in items:
        by_program[item.program_id] += item.amount
    return [
        (
            await ledger.account(
                session,
                merchant_id=payout.merchant_id,
                owner_type=ledger.PROGRAM,
                owner_id=program_id,
                kind=KIND,
                account_type=AccountType.PROGRAM_PAID_OUT,
                unit=payout.currency,
            ),
            amount,
        )
        for program_id, amount in sorted(by_program.items())
    ]


async def _pending_account(session: AsyncSession, payout: Payout) -> LedgerAccount:
    return await ledger.customer_account(
        session,
        merchant_id=payout.merchant_id,
        customer_id=payout.customer_id,
        kind=KIND,
        unit=payout.currency,
        account_type=AccountType.PAYOUT_PENDING,
    )


async def settle(session: AsyncSession, payout: Payout) -> None:
    """The money left: PAYOUT_PENDING -> each program's PROGRAM_PAID_OUT; emptied lots end PAID."""
    items = await _items(session, payout)
    pending = await _pending_account(session, payout)
    postings = [Posting(pending, -payout.amount)] + [
        Posting(a, amount) for a, amount in await _program_accounts(session, payout, items)
    ]
    await ledger.post(
        session,
        merchant_id=payout.merchant_id,
        kind="PAYOUT_PAID",
        customer_id=payout.customer_id,
        reference=str(payout.id),
        postings=postings,
    )
    reward_ids = [item.reward_id for item in items]
    still_out = set(
        (
            await session.scalars(
                select(PayoutItem.reward_id)
                .join(Payout, Payout.id == PayoutItem.payout_id)
                .where(
                    PayoutItem.reward_id.in_(reward_ids),
                    Payout.id != payout.id,
                    Payout.status.in_([s for s in PayoutStatus if s.holds_funds]),
                )
            )
        ).all()
    )
    now = utcnow()
    for reward in (await session.scalars(select(Reward).where(Reward.id.in_(reward_ids)).with_for_update())).all():
        if reward.status == RewardStatus.AVAILABLE and reward.remaining == 0 and reward.id not in still_out:
            reward.status = RewardStatus.PAID
            reward.ended_at = now
            reward.end_reason = f"paid out ({payout.reference})"
    await session.flush()


async def return_funds(session: AsyncSession, payout: Payout, *, after_paid: bool) -> None:
    """Back to AVAILABLE: from PAYOUT_PENDING, or (a payment returned after it was marked
    paid) from the programs' PROGRAM_PAID_OUT. Then the lots get the money back."""
    items = await _items(session, payout)
    available = await _available_account(session, payout)
    if after_paid:
        sources = [Posting(a, -amount) for a, amount in await _program_accounts(session, payout, items)]
        kind = "PAYOUT_REVERSAL"
    else:
        sources = [Posting(await _pending_account(session, payout), -payout.amount)]
        kind = "PAYOUT_RETURN"
    await ledger.post(
        session,
        merchant_id=payout.merchant_id,
        kind=kind,
        customer_id=payout.customer_id,
        reference=str(payout.id),
        postings=sources + [Posting(available, payout.amount)],
    )
    await _refill_lots(session, payout, available, items)


async def _refill_lots(session: AsyncSession, payout: Payout, account: LedgerAccount, items: list[PayoutItem]) -> None:
    """Give the lots back what the balance now has above them (nothing while the balance is
    in debt: returned money first pays a clawback off, as a new reward would).

    A lot can take back what it gave to payouts that are not out any more: net amount minus
    what it holds minus what other live or paid payouts took from it. Summed over the
    account's lots that is exactly the balance minus what the lots hold, so the money always
    finds its lots; this payout's own lots come first."""
    held = (
        await session.scalar(
            select(func.coalesce(func.sum(Reward.remaining), 0)).where(
                Reward.customer_id == payout.customer_id,
                Reward.kind == KIND,
                Reward.unit == payout.currency,
                Reward.status == RewardStatus.AVAILABLE,
            )
        )
        or 0
    )
    needed = max(0, account.balance) - held
    if needed <= 0:
        return
    lots = list(
        (
            await session.scalars(
                select(Reward)
                .where(
                    Reward.customer_id == payout.customer_id,
                    Reward.kind == KIND,
                    Reward.unit == payout.currency,
                    Reward.status.in_([RewardStatus.AVAILABLE, RewardStatus.REDEEMED, RewardStatus.PAID]),
                )
                .order_by(Reward.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    elsewhere = dict(
        (
            await session.execute(
                select(PayoutItem.reward_id, func.sum(PayoutItem.amount))
                .join(Payout, Payout.id == PayoutItem.payout_id)
                .where(
                    PayoutItem.reward_id.in_([lot.id for lot in lots]),
                    Payout.id != payout.id,
                    Payout.status.in_([s for s in PayoutStatus if s.holds_funds] + [PayoutStatus.PAID]),
                )
                .group_by(PayoutItem.reward_id)
            )
        ).all()
    )
    own = [item.reward_id for item in items]
    lots.sort(key=lambda lot: (lot.id not in own, own.index(lot.id) if lot.id in own else 0, lot.id))
    for lot in lots:
        room = lot.amount - lot.reversed_amount - lot.remaining - (elsewhere.get(lot.id) or 0)
        if room <= 0:
            continue
        part = min(room, needed)
        lot.remaining += part
        needed -= part
        if lot.status != RewardStatus.AVAILABLE:
            lot.status = RewardStatus.AVAILABLE
            lot.ended_at = None
            lot.end_reason = None
        if needed == 0:
            break
    if needed:
        raise RuntimeError(f"payout {payout.id}: {needed} {payout.currency} returned found no lot (ledger invariant)")
    await session.flush()
