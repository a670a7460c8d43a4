"""A reward's life after it is granted: HELD -> AVAILABLE -> REDEEMED / PAID / EXPIRED, or
VOIDED (while held) / REVERSED (after), each step with its ledger transaction.

Fraud decisions (app.fraud) hold a reward with `review_hold` and end it with `void` or
`reverse`; scheduled work calls `release_due_rewards` and `expire_due_rewards`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money
from app.db import utcnow
from app.referrals import notify
from app.referrals.models import REVERSING_TYPES, Action
from app.rewards import coupons, kinds, ledger
from app.rewards import rules as rule_service
from app.rewards.ledger import Posting
from app.rewards.models import AccountType, LedgerAccount, Recipient, Reward, RewardKind, RewardRule, RewardStatus
from app.rewards.rules import RuleSpec
from app.tenancy import not_an_index_key, scoped
from app.webhooks import events as webhook_events

logger = logging.getLogger("app.rewards")

LIVE = (RewardStatus.HELD, RewardStatus.AVAILABLE, RewardStatus.REDEEMED, RewardStatus.PAID)


def net(reward: Reward) -> int:
    return reward.amount - reward.reversed_amount


def has_ledger(reward: Reward) -> bool:
    """Booked in the ledger; otherwise held as a coupon (app.rewards.kinds.Holding)."""
    return kinds.behaviour_of(reward.kind).has_ledger


async def _spec(session: AsyncSession, reward: Reward) -> RuleSpec:
    """The reward's rule; a reward without one (a campaign bonus, a lead fee) never expires
    and is only taken back whole by a refund."""
    if reward.rule_version_id is None:
        return RuleSpec()
    rule = await session.get_one(RewardRule, reward.rule_version_id)
    return rule_service.spec_of(rule)


async def on_granted(session: AsyncSession, reward: Reward, spec: RuleSpec) -> None:
    """Book a new reward: into the customer's HELD account, or straight to AVAILABLE."""
    available = reward.status == RewardStatus.AVAILABLE
    if has_ledger(reward):
        target = await ledger.lot_account(session, reward, AccountType.AVAILABLE if available else AccountType.HELD)
        program = await ledger.program_account(session, reward, AccountType.PROGRAM_REWARDS)
        await ledger.post(
            session,
            merchant_id=reward.merchant_id,
            kind="GRANT",
            reward_id=reward.id,
            customer_id=reward.customer_id,
            postings=[Posting(program, -reward.amount), Posting(target, reward.amount)],
        )
        if available:
            await _become_available(session, reward, spec, target)
    elif available:
        await _become_available(session, reward, spec, None)


async def on_granted_many(session: AsyncSession, granted: list[tuple[Reward, RuleSpec]]) -> None:
    """Book an action's new rewards in a fixed number of statements, whatever their number:
    each into its customer's HELD or AVAILABLE account (missing accounts created and every
    balance added to in one upsert, in grant order) against the program's PROGRAM_REWARDS
    account, then coupons for available discounts. The same as `on_granted` one by one, but
    for the events: the caller sends them (app.rewards.granting on PostgreSQL does all of
    this in one statement)."""
    if not granted:
        return
    merchant_id = granted[0][0].merchant_id
    booked = sorted((reward for reward, _spec in granted if has_ledger(reward)), key=_grant_order)
    deltas: dict[ledger.AccountKey, int] = {}
    for reward in booked:
        key = _customer_key(reward)
        deltas[key] = deltas.get(key, 0) + reward.amount
    balances = await ledger.add_to_customer_accounts(session, merchant_id=merchant_id, deltas=deltas)
    programs = await ledger.program_account_ids(session, merchant_id=merchant_id, keys={_program_key(r) for r in booked})
    await ledger.book(
        session,
        merchant_id=merchant_id,
        bookings=[
            ledger.Booking(
                kind="GRANT",
                reward_id=reward.id,
                customer_id=reward.customer_id,
                entries=[
                    (programs[_program_key(reward)], -reward.amount, reward.unit),
                    (balances[_customer_key(reward)][0], reward.amount, reward.unit),
                ],
            )
            for reward in booked
        ],
    )
    pay_debts_first(booked, {key: balance for key, (_id, balance) in balances.items()})
    for reward, spec in granted:
        if reward.status == RewardStatus.AVAILABLE and kinds.behaviour_of(reward.kind).has_coupon:
            await coupons.issue_for_reward(session, reward, spec)
    await session.flush()


def pay_debts_first(booked: list[Reward], balances_after: dict[ledger.AccountKey, int]) -> None:
    """A lot arriving in an account in debt (after a clawback) first pays the debt off, lot by
    lot in grant order (`booked` is in it), as one-by-one booking would. `balances_after`: each
    customer account's balance once all of `booked` was added."""
    running = dict(balances_after)
    for reward in booked:
        running[_customer_key(reward)] -= reward.amount
    for reward in booked:
        key = _customer_key(reward)
        before = running[key]
        running[key] = before + reward.amount
        if reward.status == RewardStatus.AVAILABLE and before < 0:
            reward.remaining = max(0, reward.remaining + before)


def customer_account_key(customer_id: uuid.UUID, kind: Any, status: Any, unit: str) -> ledger.AccountKey:
    """The customer account a reward's value goes to: AVAILABLE, or HELD while the reward is held."""
    account_type = AccountType.AVAILABLE if RewardStatus(status) is RewardStatus.AVAILABLE else AccountType.HELD
    return ledger.AccountKey(ledger.CUSTOMER, customer_id, RewardKind(kind).value, account_type.value, unit)


def program_account_key(program_id: uuid.UUID, kind: Any, unit: str) -> ledger.AccountKey:
    return ledger.AccountKey(ledger.PROGRAM, program_id, RewardKind(kind).value, AccountType.PROGRAM_REWARDS.value, unit)


def _customer_key(reward: Reward) -> ledger.AccountKey:
    return customer_account_key(reward.customer_id, reward.kind, reward.status, reward.unit)


def _program_key(reward: Reward) -> ledger.AccountKey:
    return program_account_key(reward.program_id, reward.kind, reward.unit)


def availability(kind: RewardKind | str, amount: int, spec: RuleSpec, now: datetime) -> dict[str, Any]:
    """The fields a reward gets when it becomes available (set at insert when there is no hold)."""
    fields: dict[str, Any] = {
        "available_at": now,
        "expires_at": now + timedelta(days=spec.expires_in_days) if spec.expires_in_days else None,
    }
    if kinds.behaviour_of(kind).has_ledger:  # what is left of its lot to spend
        fields["remaining"] = amount
    return fields


async def _become_available(session: AsyncSession, reward: Reward, spec: RuleSpec, account: LedgerAccount | None) -> None:
    if reward.available_at is None:  # a release; a reward available from the start has them already
        for name, value in availability(reward.kind, net(reward), spec, utcnow()).items():
            setattr(reward, name, value)
    if kinds.behaviour_of(reward.kind).has_coupon:
        await coupons.issue_for_reward(session, reward, spec)
    elif account is not None:  # always, when the kind has a ledger
        await ledger.absorb_debt(session, account, reward)
    await session.flush()
    await notify.reward_event(session, webhook_events.REWARD_AVAILABLE, reward)


async def release(session: AsyncSession, reward: Reward) -> bool:
    """HELD -> AVAILABLE, unless a fraud review holds it or its referral is not cleared yet."""
    if reward.status != RewardStatus.HELD or reward.review_hold or reward.clearance_hold:
        return False
    reward.status = RewardStatus.AVAILABLE
    account = None
    if has_ledger(reward):
        held = await ledger.lot_account(session, reward, AccountType.HELD)
        account = await ledger.lot_account(session, reward, AccountType.AVAILABLE)
        await ledger.post(
            session,
            merchant_id=reward.merchant_id,
            kind="RELEASE",
            reward_id=reward.id,
            customer_id=reward.customer_id,
            postings=[Posting(held, -net(reward)), Posting(account, net(reward))],
        )
    await _become_available(session, reward, await _spec(session, reward), account)
    return True


async def void(session: AsyncSession, reward: Reward, *, reason: str, amount: int | None = None) -> None:
    """Cancel (part of) a HELD reward: it never reached the customer."""
    assert reward.status == RewardStatus.HELD
    amount = net(reward) if amount is None else min(amount, net(reward))
    if has_ledger(reward) and amount:
        held = await ledger.lot_account(session, reward, AccountType.HELD)
        program = await ledger.program_account(session, reward, AccountType.PROGRAM_REWARDS)
        await ledger.post(
            session,
            merchant_id=reward.merchant_id,
            kind="VOID",
            reward_id=reward.id,
            customer_id=reward.customer_id,
            postings=[Posting(held, -amount), Posting(program, amount)],
        )
    reward.reversed_amount += amount
    if net(reward) == 0:
        _end(reward, RewardStatus.VOIDED, reason)
    await session.flush()
    await notify.reward_event(session, webhook_events.REWARD_VOIDED, reward, change={"amount": amount, "reason": reason[:200]})


async def reverse(session: AsyncSession, reward: Reward, *, reason: str, amount: int | None = None) -> None:
    """Claw back (part of) a reward that was available, even if already spent: the
    customer's balance may go negative and is netted against future earnings."""
    amount = net(reward) if amount is None else min(amount, net(reward))
    coupon = kinds.behaviour_of(reward.kind).has_coupon
    if coupon:
        await coupons.void_for_reward(session, reward)
    elif amount:
        account = await ledger.lot_account(session, reward, AccountType.AVAILABLE, lock=True)
        await ledger.consume(session, account, amount, first=reward)
        program = await ledger.program_account(session, reward, AccountType.PROGRAM_REWARDS)
        await ledger.post(
            session,
            merchant_id=reward.merchant_id,
            kind="REVERSAL",
            reward_id=reward.id,
            customer_id=reward.customer_id,
            postings=[Posting(account, -amount), Posting(program, amount)],
        )
    reward.reversed_amount += amount
    if net(reward) == 0 or coupon:  # a coupon is void whatever part was taken back
        reward.remaining = 0
        _end(reward, RewardStatus.REVERSED, reason)
    await session.flush()
    await notify.reward_event(session, webhook_events.REWARD_REVERSED, reward, change={"amount": amount, "reason": reason[:200]})


def _end(reward: Reward, status: RewardStatus, reason: str) -> None:
    reward.status = status
    reward.review_hold = False  # nothing left for a review to hold
    reward.clearance_hold = False
    reward.ended_at = utcnow()
    reward.end_reason = reason[:200]


def _grant_order(reward: Reward) -> tuple:
    """The order a grant books rewards (and so takes accounts) in: rule by rule, referrer first."""
    return grant_order_of(reward.rule_id, reward.recipient, reward.customer_id, reward.id)


def grant_order_of(rule_id: Any, recipient: Any, customer_id: uuid.UUID, reward_id: uuid.UUID) -> tuple:
    """`_grant_order` of a reward by its values (a row before it is written)."""
    return (rule_id, Recipient(recipient) is not Recipient.REFERRER, customer_id, reward_id)


async def _lock_accounts(session: AsyncSession, rewards: Iterable[Reward]) -> None:
    """Lock the AVAILABLE accounts of `rewards`, each once, in the order given."""
    seen: set[tuple[uuid.UUID, RewardKind, str]] = set()
    for reward in rewards:
        key = (reward.customer_id, reward.kind, reward.unit)
        if has_ledger(reward) and key not in seen:
            seen.add(key)
            await ledger.lot_account(session, reward, AccountType.AVAILABLE, lock=True)


async def _due(session: AsyncSession, query: Select[Reward]) -> list[Reward]:
    """Rows due for scheduled work; on PostgreSQL two workers never take the same row.

    Lock order, here as in refunds and redemptions: a customer's AVAILABLE account, then
    reward rows (a redemption locks the account, then its lots). Locking the reward first
    deadlocks against a checkout spending the same credit. Accounts are taken in the order
    grants take them (see `_grant_order`), so workers and grants do not wait in a circle."""
    candidates = list((await session.scalars(query)).all())
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return candidates
    taken = []
    for candidate in sorted(candidates, key=_grant_order):
        await _lock_accounts(session, [candidate])
        reward = await session.scalar(
            query.where(Reward.id == candidate.id)
            .with_for_update(skip_locked=True)  # another worker has it: skip
            .execution_options(populate_existing=True)  # still due now that it is locked?
        )
        if reward is not None:
            taken.append(reward)
    return taken


async def release_due_rewards(session: AsyncSession, *, now: datetime | None = None, limit: int = 500) -> int:
    now = now or utcnow()
    due = await _due(
        session,
        select(Reward)
        .where(
            Reward.status == RewardStatus.HELD,
            Reward.review_hold.is_(False),
            Reward.clearance_hold.is_(False),
            Reward.hold_until <= now,
        )
        .order_by(Reward.hold_until)
        .limit(limit),
    )
    released = 0
    for reward in due:
        released += await release(session, reward)
    return released


async def expire_due_rewards(session: AsyncSession, *, now: datetime | None = None, limit: int = 500) -> int:
    """Unspent credit and points, and unused coupons, past their expiry."""
    now = now or utcnow()
    due = await _due(
        session,
        select(Reward)
        .where(
            Reward.status == RewardStatus.AVAILABLE,
            Reward.expires_at <= now,
            # Kinds that never expire (commission is cash owed: paid out, never expired; an
            # EXPIRED commission would keep its balance with no lot behind it).
            Reward.kind.not_in(kinds.NEVER_EXPIRE),
        )
        .order_by(Reward.expires_at)
        .limit(limit),
    )
    for reward in due:
        behaviour = kinds.behaviour_of(reward.kind)
        if behaviour.has_coupon:
            await coupons.expire_for_reward(session, reward)
        elif behaviour.expires and reward.remaining > 0:
            account = await ledger.lot_account(session, reward, AccountType.AVAILABLE, lock=True)
            program = await ledger.program_account(session, reward, AccountType.PROGRAM_EXPIRED)
            await ledger.post(
                session,
                merchant_id=reward.merchant_id,
                kind="EXPIRY",
                reward_id=reward.id,
                customer_id=reward.customer_id,
                postings=[Posting(account, -reward.remaining), Posting(program, reward.remaining)],
            )
            reward.remaining = 0
        _end(reward, RewardStatus.EXPIRED, "expired")
    await session.flush()
    return len(due)


async def _lock_live(session: AsyncSession, merchant_id: uuid.UUID, condition: ColumnElement[bool]) -> list[Reward]:
    """The merchant's live rewards matching `condition`, locked, fresh from the database.

    Lock order: the customers' AVAILABLE accounts, then the reward rows, as a redemption
    locks an account and then its lots (the other order deadlocks against a checkout).
    Accounts in the order their grant booked them (reward id: rule by rule, referrer
    first), which is the order a concurrent grant to the same customers takes them in."""
    live = scoped(select(Reward).where(condition, Reward.status.in_(LIVE)), merchant_id).order_by(Reward.id)
    await _lock_accounts(session, (await session.scalars(live)).all())
    return list((await session.scalars(live.with_for_update().execution_options(populate_existing=True))).all())


async def take_back_referral_rewards(
    session: AsyncSession, referral_id: uuid.UUID, *, merchant_id: uuid.UUID, reason: str
) -> list[Reward]:
    """A referral judged fraudulent keeps nothing: held rewards are voided, available (even
    spent or paid) ones reversed; a balance may go negative and nets against future earnings."""
    rewards = await _lock_live(session, merchant_id, Reward.referral_id == referral_id)
    for reward in rewards:
        if reward.status == RewardStatus.HELD:
            await void(session, reward, reason=reason)
        else:
            await _claw_back(session, reward, reason=reason)
    return rewards


async def take_back_spendable(
    session: AsyncSession, referral_ids: Sequence[uuid.UUID], *, merchant_id: uuid.UUID, reason: str
) -> list[Reward]:
    """Referrals put in review after some of their rewards became spendable: those are clawed
    back (credit and commission reversed, netting against future earnings; an unused coupon
    voided), what is still held stays held for the reviewer. An approval does not restore
    what was clawed back."""
    spendable = Reward.referral_id.in_(referral_ids) & (Reward.status != RewardStatus.HELD)
    rewards = await _lock_live(session, merchant_id, spendable)
    for reward in rewards:
        await _claw_back(session, reward, reason=reason)
    return rewards


async def _claw_back(session: AsyncSession, reward: Reward, *, reason: str) -> None:
    """Reverse a reward that was spendable, recording in `leaked_amount` what had already been
    spent, paid out or used (a redeemed coupon's face value): that part is now a debt at best."""
    if kinds.behaviour_of(reward.kind).has_coupon:
        used = net(reward) if reward.status == RewardStatus.REDEEMED else 0
    else:
        used = net(reward) - reward.remaining
    await reverse(session, reward, reason=reason)
    reward.leaked_amount += max(0, used)
    await session.flush()


async def hold_for_review(session: AsyncSession, referral_ids: Sequence[uuid.UUID], *, merchant_id: uuid.UUID) -> int:
    """Keep the referrals' HELD rewards held until a reviewer decides; how many there are."""
    # Found by the referral (a handful of rows), HELD only a filter: every new reward is HELD
    # until cleared, and with statistics from before they were written the status index looked
    # the more selective, so a burst of reviews read every HELD reward of the shop for each
    # referral put in review (7.6 ms and 5,750 pages each in a benchmark).
    held = select(Reward).where(Reward.referral_id.in_(referral_ids), not_an_index_key(Reward.status == RewardStatus.HELD))
    rewards = (await session.scalars(scoped(held, merchant_id))).all()
    for reward in rewards:
        reward.review_hold = True
    await session.flush()
    return len(rewards)


async def lift_review_hold(
    session: AsyncSession, referral_id: uuid.UUID, *, merchant_id: uuid.UUID, now: datetime | None = None
) -> list[Reward]:
    """A reviewer approved: rewards held for the review are released now, or when their
    own hold period (the refund window) ends. Returns those released now."""
    return await _lift(session, merchant_id, referral_id, "review_hold", now=now)


async def lift_clearance_hold(
    session: AsyncSession, referral_id: uuid.UUID, *, merchant_id: uuid.UUID, now: datetime | None = None
) -> list[Reward]:
    """The referral was cleared (app.fraud.clearance): rewards waiting for it are released now,
    or when their own hold period ends; a review still holds what it holds. Returns those
    released now."""
    return await _lift(session, merchant_id, referral_id, "clearance_hold", now=now)


async def _lift(
    session: AsyncSession, merchant_id: uuid.UUID, referral_id: uuid.UUID, hold: str, *, now: datetime | None
) -> list[Reward]:
    """Clear one kind of hold (`review_hold`, `clearance_hold`) on the referral's rewards and
    release those nothing else holds."""
    now = now or utcnow()
    held = await _lock_live(session, merchant_id, (Reward.referral_id == referral_id) & getattr(Reward, hold).is_(True))
    released = []
    for reward in held:
        setattr(reward, hold, False)
        due = reward.status == RewardStatus.HELD and (reward.hold_until is None or reward.hold_until <= now)
        if due and await release(session, reward):
            released.append(reward)
    await session.flush()
    return released


@dataclass
class RefundOutcome:
    order_found: bool
    rewards: list[Reward] = field(default_factory=list)  # voided or (partly) reversed by this refund


async def apply_refund(session: AsyncSession, action: Action) -> RefundOutcome | None:
    """A REFUND or CANCELLATION naming the original order (`orderId`) takes back what that
    order earned: a HELD reward is voided, an available one reversed. A partial refund
    reduces percentage commissions in proportion; fixed rewards stand until the order is
    fully refunded. An unknown order is recorded and reported, not an error."""
    if action.type not in REVERSING_TYPES or action.order_id is None:
        return None
    purchases = list(
        (
            await session.scalars(
                scoped(
                    select(Action).where(Action.order_id == action.order_id, Action.type.not_in(REVERSING_TYPES)),
                    action.merchant_id,
                )
            )
        ).all()
    )
    if not purchases:
        logger.info("refund for an unknown order", extra={"order_id": action.order_id, "action_id": str(action.id)})
        return RefundOutcome(order_found=False)
    rewards = await _lock_live(session, action.merchant_id, Reward.trigger_action_id.in_([p.id for p in purchases]))
    # Summed once the rewards are locked: a concurrent refund of the same order has committed
    # by then and is counted (READ COMMITTED), so partial refunds never get lost.
    ordered = sum(p.amount or 0 for p in purchases)
    refunded = (
        await session.scalar(
            scoped(
                select(money.total(Action.amount)).where(Action.order_id == action.order_id, Action.type.in_(REVERSING_TYPES)),
                action.merchant_id,
            )
        )
        or 0
    )
    full = action.type == "CANCELLATION" or action.amount is None or ordered == 0 or refunded >= ordered
    outcome = RefundOutcome(order_found=True)
    for reward in rewards:
        if full:
            amount = net(reward)
        else:
            spec = await _spec(session, reward)
            if not kinds.behaviour_of(reward.kind).share_of_action(spec):
                continue
            amount = reward.amount * refunded // ordered - reward.reversed_amount
        if amount <= 0:
            continue
        reason = f"order {action.order_id} {'refunded' if action.type == 'REFUND' else 'cancelled'}"
        if reward.status == RewardStatus.HELD:
            await void(session, reward, reason=reason, amount=amount)
        else:
            await reverse(session, reward, reason=reason, amount=amount)
        outcome.rewards.append(reward)
    return outcome
