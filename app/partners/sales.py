"""Paying an affiliate program's sales: the partner's commission, split with co-producers.

`enqueue_settlement` is the one call the action flow makes (app.actions.service.record_action):
for an action of an AFFILIATE program it writes a `partners.settle_action` job to the outbox,
in the action's transaction; for any other action it does nothing and, on the API's write
path, reads nothing (the merchant's affiliate programs come from app.config_cache).

The job (`settle_action`) runs once in effect per action:
- a purchase becomes one `PartnerSale` (unique per action) and, when it earns, one COMMISSION
  reward per party (`source` PARTNER_SALE, `grant_key` per sale and party, in the order's
  currency), granted like a campaign bonus (app.campaigns.grants.grant_once): HELD for the
  program's commission rule's `holdDays` and until the referral is cleared or its review
  decided, then released by the usual jobs into the party's balance, where payouts pay it.
  The existing grant path books one ledger transaction (GRANT) per reward, so a sale with
  three parties is three transactions, each balanced;
- a refund or cancellation naming the order reverses each party in proportion to the order
  amount refunded so far (see app.partners.splits.reversal_target), once per refund action,
  through the rewards' own void (while held) or reversal (once available). The rewards name
  no trigger action, so the rule rewards' refund (app.rewards.lifecycle.apply_refund), which
  takes rule-less rewards back only whole, leaves them to this proportional one.

What the affiliate earns, in this order: their group's rate; else the split's affiliate share;
else the program's commission rule (COMMISSION to the REFERRER with percentBps, with its
season in force at the sale's time). Co-producers get their split shares. A partner who is not
ACTIVE earns nothing, and nor do the co-producers on that sale: the sale is recorded NOT_EARNED
with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import config_cache
from app.campaigns import grants
from app.db import insert_one, new_id, utcnow
from app.partners.models import (
    CommissionSplit,
    NotEarnedReason,
    Partner,
    PartnerGroup,
    PartnerSale,
    PartnerSaleRefund,
    PartnerSaleShare,
    PartnerStatus,
    SaleStatus,
    ShareRole,
)
from app.partners.splits import PartyShare, allocate, reversal_target, split_in_force
from app.referrals.models import (
    QUALIFYING_TYPES,
    REVERSING_TYPES,
    Action,
    Click,
    Program,
    ProgramType,
    Referral,
    ReferralStatus,
)
from app.rewards import lifecycle
from app.rewards import rules as rule_service
from app.rewards.models import Recipient, Reward, RewardKind, RewardRule, RewardStatus
from app.rewards.rules import MAX_BPS, RuleSpec
from app.worker import outbox

SETTLE_JOB = "partners.settle_action"
SALE_GRANT = "PARTNER_SALE"  # the `source` of the parties' rewards
_NOT_ACTIVE = {
    PartnerStatus.APPLIED: NotEarnedReason.PARTNER_APPLIED,
    PartnerStatus.REJECTED: NotEarnedReason.PARTNER_REJECTED,
    PartnerStatus.SUSPENDED: NotEarnedReason.PARTNER_SUSPENDED,
}


async def affiliate_program_ids(session: AsyncSession, merchant_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The merchant's AFFILIATE programs; from memory on the write path (creating one raises
    the merchant's config_version, migration 0013, and a program's type never changes)."""

    async def load() -> frozenset[uuid.UUID]:
        return frozenset(
            (
                await session.scalars(
                    select(Program.id).where(Program.merchant_id == merchant_id, Program.program_type == ProgramType.AFFILIATE)
                )
            ).all()
        )

    key: tuple[Hashable, ...] = ("affiliate_programs",)
    return await config_cache.read(session, merchant_id, key, load)


async def enqueue_settlement(session: AsyncSession, action: Action) -> None:
    """Settle the action's commission in the worker if it is a sale or a refund in an
    affiliate program; nothing at all for customer referral programs."""
    if action.program_id is None or (action.type not in QUALIFYING_TYPES and action.type not in REVERSING_TYPES):
        return
    if action.program_id not in await affiliate_program_ids(session, action.merchant_id):
        return
    await outbox.enqueue(
        session, SETTLE_JOB, merchant_id=action.merchant_id, run_key=f"{SETTLE_JOB}:{action.id}", action_id=action.id
    )


async def settle_action(session: AsyncSession, *, action_id: uuid.UUID) -> None:
    action = await session.get(Action, action_id)
    if action is None:
        return
    if action.type in REVERSING_TYPES:
        await reverse_refund(session, action)
    else:
        await settle_sale(session, action)


async def settle_sale(session: AsyncSession, action: Action) -> PartnerSale | None:
    """The sale's `PartnerSale`, created (and paid) the first time; None if the action is
    not a referred sale of an affiliate program. Safe to run twice or concurrently: the
    sale is unique per action, and only the call that inserted it posts to the ledger."""
    if action.referral_id is None or action.type not in QUALIFYING_TYPES:
        return None
    referral = await session.get_one(Referral, action.referral_id)
    program = await session.get_one(Program, referral.program_id)
    if not program.is_affiliate:
        return None
    partner = await session.scalar(
        select(Partner).where(Partner.program_id == program.id, Partner.customer_id == referral.referrer_id)
    )
    click_id = action.click_id or referral.click_id
    sub_id = await session.scalar(select(Click.sub_id).where(Click.id == click_id)) if click_id else None
    split = await split_in_force(session, program_id=program.id, sku=_sku(action))
    affiliate_bps = await _affiliate_rate(session, program, partner, split, action)
    co_producers = [PartyShare(uuid.UUID(p["customer_id"]), p["share_bps"]) for p in (split.parties if split else [])]
    co_producers = [p for p in co_producers if p.key != referral.referrer_id]  # the affiliate is paid as the affiliate
    affiliate_bps = min(affiliate_bps, MAX_BPS - sum(p.share_bps for p in co_producers))

    reason = _not_earned(referral, partner, action, affiliate_bps, co_producers)
    now = utcnow()
    values = {
        "id": new_id(),
        "merchant_id": action.merchant_id,
        "program_id": program.id,
        "action_id": action.id,
        "referral_id": referral.id,
        "affiliate_id": referral.referrer_id,
        "partner_id": partner.id if partner else None,
        "code_id": referral.code_id,
        "sub_id": sub_id,
        "order_id": action.order_id,
        "amount": action.amount or 0,
        "currency": action.currency,
        "status": (SaleStatus.NOT_EARNED if reason else SaleStatus.EARNED).value,
        "reason": reason.value if reason else None,
        "split_version_id": split.id if split else None,
        "affiliate_bps": 0 if reason else affiliate_bps,
        "commission": 0,
        "refunded_amount": 0,
        "ledger_transaction_id": None,
        "occurred_at": action.occurred_at,
        "created_at": now,
    }
    sale = await insert_one(session, PartnerSale, values, ignoring_conflicts=("action_id",))
    if sale is None:  # settled before (a second delivery of the job)
        return await session.scalar(select(PartnerSale).where(PartnerSale.action_id == action.id))
    if reason is None:
        await _pay(session, sale, action, affiliate_bps, co_producers)
    return sale


def _sku(action: Action) -> str | None:
    sku = (action.metadata_ or {}).get("sku")
    return str(sku) if isinstance(sku, str | int) else None


async def _affiliate_rate(
    session: AsyncSession, program: Program, partner: Partner | None, split: CommissionSplit | None, action: Action
) -> int:
    if partner is not None and partner.group_id is not None:
        group_bps = await session.scalar(select(PartnerGroup.commission_bps).where(PartnerGroup.id == partner.group_id))
        if group_bps is not None:
            return group_bps
    if split is not None and split.affiliate_bps is not None:
        return split.affiliate_bps
    return await default_commission_bps(session, program_id=program.id, trigger=action.type, action=action)


async def default_commission_bps(session: AsyncSession, *, program_id: uuid.UUID, trigger: str, action: Action) -> int:
    """The program's commission rule's rate at the action's time (its season, if it has
    seasons); 0 without one."""
    spec = await commission_rule(session, program_id=program_id, trigger=trigger, action=action)
    return (rule_service.percent_in_force(spec, action.occurred_at) or 0) if spec is not None else 0


async def commission_rule(session: AsyncSession, *, program_id: uuid.UUID, trigger: str, action: Action) -> RuleSpec | None:
    """The first enabled COMMISSION rule to the REFERRER with a percentage whose conditions on
    the action's metadata hold: its rate and its hold are the program's commission's."""
    rules = (
        await session.scalars(
            select(RewardRule)
            .where(
                RewardRule.program_id == program_id,
                RewardRule.trigger == trigger,
                RewardRule.enabled.is_(True),
                RewardRule.superseded_at.is_(None),
                RewardRule.kind == RewardKind.COMMISSION,
                RewardRule.recipient.in_([Recipient.REFERRER, Recipient.BOTH]),
            )
            .order_by(RewardRule.rule_id)
        )
    ).all()
    for rule in rules:
        spec = rule_service.spec_of(rule)
        if spec.percent_bps is None or not all(f.matches(action.metadata_) for f in spec.metadata_filters):
            continue
        return spec
    return None


def _not_earned(
    referral: Referral, partner: Partner | None, action: Action, affiliate_bps: int, co_producers: list[PartyShare]
) -> NotEarnedReason | None:
    if partner is None:
        return NotEarnedReason.NOT_A_PARTNER
    if partner.status in _NOT_ACTIVE:
        return _NOT_ACTIVE[partner.status]
    if referral.status == ReferralStatus.REJECTED:
        return NotEarnedReason.REFERRAL_REJECTED
    if not action.amount or action.currency is None:
        return NotEarnedReason.NO_AMOUNT
    if affiliate_bps <= 0 and not co_producers:
        return NotEarnedReason.NO_RATE
    return None


async def _pay(
    session: AsyncSession, sale: PartnerSale, action: Action, affiliate_bps: int, co_producers: list[PartyShare]
) -> None:
    """Every party's share as its own COMMISSION reward, held as the program's commission is."""
    parties = ([PartyShare(sale.affiliate_id, affiliate_bps)] if affiliate_bps > 0 else []) + co_producers
    amounts = allocate(sale.amount, parties)
    unit = sale.currency or ""
    shares = [
        PartnerSaleShare(
            id=new_id(),
            merchant_id=sale.merchant_id,
            sale_id=sale.id,
            customer_id=party.key,
            role=(ShareRole.AFFILIATE if party.key == sale.affiliate_id else ShareRole.CO_PRODUCER).value,
            position=position,
            share_bps=party.share_bps,
            amount=amount,
            reversed_amount=0,
            unit=unit,
        )
        for position, (party, amount) in enumerate(zip(parties, amounts, strict=True))
    ]
    session.add_all(shares)
    sale.commission = sum(amounts)
    await session.flush()
    if sale.commission == 0:
        return
    # The referral's lock: a clearance or review deciding meanwhile came first (and is read by
    # waits_of) or sees these rewards after (app.campaigns.grants.waits_of).
    referral = await session.scalar(
        select(Referral).where(Referral.id == sale.referral_id).with_for_update().execution_options(populate_existing=True)
    )
    assert referral is not None
    waits = await grants.waits_of(session, referral, action, RewardKind.COMMISSION)
    rule = await commission_rule(session, program_id=sale.program_id, trigger=action.type, action=action)
    for share in sorted(shares, key=lambda s: s.customer_id):  # accounts in id order: no deadlocks
        reward = await grants.grant_once(
            session,
            merchant_id=sale.merchant_id,
            program_id=sale.program_id,
            customer_id=share.customer_id,
            kind=RewardKind.COMMISSION,
            amount=share.amount,
            currency=unit,
            grant_key=f"partner-sale:{sale.id}:{share.customer_id}",
            source=SALE_GRANT,
            hold_days=rule.hold_days if rule is not None else 0,
            referral_id=sale.referral_id,
            waits=waits,
        )
        share.reward_id = reward.id if reward is not None else None
    await session.flush()


async def _take_back(session: AsyncSession, share: PartnerSaleShare, amount: int, reason: str) -> None:
    """Reverse `amount` of the share's reward: voided while held, clawed back once available.
    A reward a fraud decision already ended has nothing left to take."""
    if share.reward_id is None or amount <= 0:
        return
    reward = await session.scalar(
        select(Reward).where(Reward.id == share.reward_id).with_for_update().execution_options(populate_existing=True)
    )
    if reward is None or reward.status not in lifecycle.LIVE or lifecycle.net(reward) == 0:
        return
    if reward.status == RewardStatus.HELD:
        await lifecycle.void(session, reward, reason=reason, amount=amount)
    else:
        await lifecycle.reverse(session, reward, reason=reason, amount=amount)


async def reverse_refund(session: AsyncSession, refund: Action) -> list[PartnerSaleRefund]:
    """Take back each party's share of the order the refund names, in proportion to the
    order amount refunded so far; a refund without an amount refunds what is left."""
    if refund.order_id is None:
        return []
    purchases = (
        await session.scalars(
            select(Action)
            .where(
                Action.merchant_id == refund.merchant_id,
                Action.order_id == refund.order_id,
                Action.type.in_(QUALIFYING_TYPES),
                Action.id != refund.id,
            )
            .order_by(Action.occurred_at, Action.id)
        )
    ).all()
    applied = []
    for purchase in purchases:
        await settle_sale(session, purchase)  # the sale's own job may not have run yet
        sale = await session.scalar(
            select(PartnerSale)
            .where(PartnerSale.action_id == purchase.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if sale is None:
            continue
        left = sale.amount - sale.refunded_amount
        refunded = left if refund.amount is None else min(left, refund.amount if refund.currency == sale.currency else 0)
        values = {
            "id": new_id(),
            "merchant_id": sale.merchant_id,
            "sale_id": sale.id,
            "refund_action_id": refund.id,
            "refunded_amount": refunded,
            "reversed_commission": 0,
            "transaction_id": None,
            "created_at": utcnow(),
        }
        row = await insert_one(session, PartnerSaleRefund, values, ignoring_conflicts=("sale_id", "refund_action_id"))
        if row is None:
            continue  # this refund was applied before
        sale.refunded_amount += refunded
        shares = (
            await session.scalars(
                select(PartnerSaleShare).where(PartnerSaleShare.sale_id == sale.id).order_by(PartnerSaleShare.position)
            )
        ).all()
        reason = f"order {refund.order_id} {'refunded' if refund.type == 'REFUND' else 'cancelled'}"
        for share in sorted(shares, key=lambda s: s.customer_id):  # accounts in id order: no deadlocks
            delta = reversal_target(share.amount, sale.refunded_amount, sale.amount) - share.reversed_amount
            share.reversed_amount += delta
            row.reversed_commission += delta
            await _take_back(session, share, delta, reason)
        await session.flush()
        applied.append(row)
    return applied
