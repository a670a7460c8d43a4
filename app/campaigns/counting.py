"""Counting a program's referred sales (and their refunds) in its campaigns.

`action_recorded` is the one call the purchase flow makes (app.actions.service): when the
merchant has a campaign the action may count in (known from the cached configuration, so a
shop without campaigns pays no statement), it writes a job to the outbox in the action's
transaction. The jobs do the counting, each sale once:

- a referrer's `campaign_progress` row is locked first, so their sales and refunds in a
  campaign are applied one at a time (a threshold or tier is crossed by exactly one sale);
- the sale itself is unique per (campaign, action), so a job delivered twice counts once;
- every grant has a key (campaign + referrer + threshold / tier / sale), so nothing is
  granted twice even if the rest failed.

A qualified sale: a PURCHASE or SUBSCRIPTION_STARTED of a referred customer (referral not
rejected) in the campaign's program and currency, occurring in the campaign's period. A full
refund or cancellation of its order takes it out of the count (partial refunds do not).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import config_cache, money
from app.campaigns import grants
from app.campaigns.models import Campaign, CampaignKind, CampaignProgress, CampaignSale, CampaignStatus
from app.campaigns.service import CampaignSpec, spec_of
from app.db import insert_ignoring_conflicts, insert_row, new_id, utcnow
from app.referrals.models import QUALIFYING_TYPES, REVERSING_TYPES, Action, Referral, ReferralStatus
from app.rewards.models import Reward, RewardKind
from app.worker import outbox

COUNT_SALE = "campaigns.count_sale"
COUNT_REFUND = "campaigns.count_refund"
LATE_REFUNDS = timedelta(days=90)  # a campaign ended longer ago than this no longer hears of refunds


@dataclass(frozen=True)
class OpenCampaign:
    """What the write path needs to know of a campaign, kept in the configuration cache."""

    id: uuid.UUID
    program_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


async def _open_campaigns(session: AsyncSession, merchant_id: uuid.UUID) -> list[OpenCampaign]:
    async def load() -> list[OpenCampaign]:
        rows = await session.execute(
            select(Campaign.id, Campaign.program_id, Campaign.starts_at, Campaign.ends_at).where(
                Campaign.merchant_id == merchant_id,
                Campaign.status == CampaignStatus.ACTIVE,
                Campaign.finalized_at.is_(None),
                Campaign.ends_at > utcnow() - LATE_REFUNDS,
            )
        )
        return [OpenCampaign(row.id, row.program_id, row.starts_at, row.ends_at) for row in rows]

    return await config_cache.read(session, merchant_id, ("campaigns",), load)


async def action_recorded(session: AsyncSession, action: Action, referral: Referral | None) -> None:
    """Hand a new action to the campaigns it may count in (a job in the outbox), if any."""
    if action.type in REVERSING_TYPES:
        if action.order_id is None or not await _open_campaigns(session, action.merchant_id):
            return
        await outbox.enqueue(session, COUNT_REFUND, merchant_id=action.merchant_id, action_id=action.id)
    elif action.type in QUALIFYING_TYPES and referral is not None and action.amount:
        campaigns = await _open_campaigns(session, action.merchant_id)
        if any(c.program_id == referral.program_id and c.starts_at <= action.occurred_at < c.ends_at for c in campaigns):
            await outbox.enqueue(session, COUNT_SALE, merchant_id=action.merchant_id, action_id=action.id)


async def _locked_progress(session: AsyncSession, campaign: Campaign, referrer_id: uuid.UUID) -> CampaignProgress:
    values = {
        "id": new_id(),
        "merchant_id": campaign.merchant_id,
        "campaign_id": campaign.id,
        "referrer_id": referrer_id,
        "sales": 0,
        "sales_amount": 0,
        "commission": 0,
        "tier": 0,
        "last_sale_at": None,
    }
    await session.execute(
        insert_row(session, CampaignProgress, values, ignoring_conflicts=("campaign_id", "referrer_id")), values
    )
    progress = await session.scalar(
        select(CampaignProgress)
        .where(CampaignProgress.campaign_id == campaign.id, CampaignProgress.referrer_id == referrer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert progress is not None
    return progress


async def _campaigns_of(session: AsyncSession, program_id: uuid.UUID, at: datetime | None = None) -> list[Campaign]:
    """The program's campaigns still counting (covering `at`), in id order: the order their
    progress rows are locked in, everywhere."""
    query = select(Campaign).where(
        Campaign.program_id == program_id, Campaign.status == CampaignStatus.ACTIVE, Campaign.finalized_at.is_(None)
    )
    if at is not None:
        query = query.where(Campaign.starts_at <= at, Campaign.ends_at > at)
    return list((await session.scalars(query.order_by(Campaign.id))).all())


async def _order_fully_refunded(session: AsyncSession, action: Action) -> bool:
    if action.order_id is None:
        return False
    reversals = (
        await session.execute(
            select(Action.type, Action.amount).where(
                Action.merchant_id == action.merchant_id, Action.order_id == action.order_id, Action.type.in_(REVERSING_TYPES)
            )
        )
    ).all()
    if not reversals:
        return False
    if any(r.type == "CANCELLATION" or r.amount is None for r in reversals):
        return True
    refunded: int = sum(r.amount for r in reversals)
    return refunded >= (action.amount or 0)


def counted_amount(spec: CampaignSpec, kind: CampaignKind, action: Action) -> int:
    """The part of the sale the campaign counts: for a RATE_BOOST the part in its category
    (line items `metadata.items[]` with `category` and `amount`, or the whole sale when
    `metadata.category` matches); otherwise the whole amount. 0: the sale does not count."""
    if action.currency != spec.currency or not action.amount:
        return 0
    if kind is not CampaignKind.RATE_BOOST:
        return action.amount
    metadata: dict[str, Any] = action.metadata_ or {}
    items = metadata.get("items")
    if isinstance(items, list):
        part: int = sum(
            item["amount"]
            for item in items
            if isinstance(item, dict)
            and str(item.get("category", "")).lower() == spec.category
            and isinstance(item.get("amount"), int)
            and not isinstance(item.get("amount"), bool)
            and item["amount"] > 0
        )
        return min(part, action.amount)
    return action.amount if str(metadata.get("category", "")).lower() == spec.category else 0


async def count_sale(session: AsyncSession, action_id: uuid.UUID) -> int:
    """Count the sale in each of its program's campaigns; returns how many counted it now."""
    action = await session.get(Action, action_id)
    if action is None or action.referral_id is None or action.type not in QUALIFYING_TYPES:
        return 0
    # Locked first (as reward evaluation does): a clearance or review deciding the referral
    # meanwhile either finishes before (and is read here) or sees this job's rewards after.
    referral = await session.scalar(
        select(Referral)
        .where(Referral.id == action.referral_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if referral is None or referral.status == ReferralStatus.REJECTED:
        return 0
    counted = 0
    for campaign in await _campaigns_of(session, referral.program_id, at=action.occurred_at):
        spec, kind = spec_of(campaign), CampaignKind(campaign.kind)
        amount = counted_amount(spec, kind, action)
        if amount <= 0:
            continue
        progress = await _locked_progress(session, campaign, referral.referrer_id)
        # Read after the lock: a refund counted meanwhile has committed and is seen.
        if await _order_fully_refunded(session, action):
            return counted
        values = {
            "id": new_id(),
            "merchant_id": campaign.merchant_id,
            "campaign_id": campaign.id,
            "referrer_id": referral.referrer_id,
            "action_id": action.id,
            "order_id": action.order_id,
            "amount": amount,
            "currency": spec.currency,
            "occurred_at": action.occurred_at,
            "refunded_at": None,
        }
        inserted = await session.scalar(
            insert_ignoring_conflicts(session, CampaignSale, ["campaign_id", "action_id"])
            .values(**values)
            .returning(CampaignSale.id)
        )
        if inserted is None:
            continue  # counted before
        progress.sales += 1
        progress.sales_amount += amount
        if progress.last_sale_at is None or action.occurred_at > progress.last_sale_at:
            progress.last_sale_at = action.occurred_at
        await _reward_sale(session, campaign, spec, kind, progress, referral, action, amount)
        counted += 1
    await session.flush()
    return counted


class _Grant(TypedDict):
    """What every grant of a campaign's reward names (`grants.grant_once`'s keywords)."""

    merchant_id: uuid.UUID
    program_id: uuid.UUID
    customer_id: uuid.UUID
    kind: RewardKind
    currency: str
    source: str
    hold_days: int


class _PerSale(TypedDict):
    referral_id: uuid.UUID
    trigger_action_id: uuid.UUID
    grant_key: str
    waits: NotRequired[grants.Waits]


def _key(campaign: Campaign, *parts: object) -> str:
    return ":".join(["campaign", str(campaign.id), *(str(p) for p in parts)])


async def _reward_sale(
    session: AsyncSession,
    campaign: Campaign,
    spec: CampaignSpec,
    kind: CampaignKind,
    progress: CampaignProgress,
    referral: Referral,
    action: Action,
    amount: int,
) -> None:
    grant = _Grant(
        merchant_id=campaign.merchant_id,
        program_id=campaign.program_id,
        customer_id=progress.referrer_id,
        kind=RewardKind(spec.reward_kind),
        currency=spec.currency,
        source=grants.CAMPAIGN,
        hold_days=spec.hold_days,
    )
    # Per-sale grants name the sale's referral and action: a refund of the order takes them back.
    per_sale = _PerSale(referral_id=referral.id, trigger_action_id=action.id, grant_key=_key(campaign, "sale", action.id))
    if kind in (CampaignKind.RATE_BOOST, CampaignKind.TIERED_RATE):
        # what a sale earns waits for its referral's clearance and review, as the rules' rewards do
        per_sale["waits"] = await grants.waits_of(session, referral, action, RewardKind(spec.reward_kind))
    if kind is CampaignKind.THRESHOLD_BONUS:
        assert spec.threshold is not None and spec.bonus_amount is not None
        if progress.sales >= spec.threshold:
            await grants.grant_once(
                session, **grant, amount=spec.bonus_amount, grant_key=_key(campaign, "threshold", progress.referrer_id)
            )
    elif kind is CampaignKind.RATE_BOOST:
        assert spec.boost_bps is not None
        await grants.grant_once(session, **grant, **per_sale, amount=amount * spec.boost_bps // 10_000)
    elif kind is CampaignKind.TIERED_RATE:
        tier = spec.tier_at(progress.sales)
        rate = spec.tiers[tier].rate_bps
        if tier > progress.tier:
            # Crossing into a higher tier: the period's earlier sales are topped up to its
            # rate by one adjustment, keyed by campaign + referrer + tier.
            earlier = progress.sales_amount - amount
            adjustment = earlier * rate // 10_000 - progress.commission
            progress.tier = tier
            if (
                await grants.grant_once(
                    session, **grant, amount=adjustment, grant_key=_key(campaign, "tier", tier, progress.referrer_id)
                )
                is not None
            ):
                progress.commission += adjustment
        commission = amount * rate // 10_000
        if await grants.grant_once(session, **grant, **per_sale, amount=commission) is not None:
            progress.commission += commission


async def count_refund(session: AsyncSession, action_id: uuid.UUID) -> int:
    """A full refund or cancellation takes its order's sales out of the campaigns still
    counting (a finalized contest's standing stays as it was); returns how many."""
    action = await session.get(Action, action_id)
    if action is None or action.order_id is None or action.type not in REVERSING_TYPES:
        return 0
    purchase = await session.scalar(
        select(Action)
        .where(Action.merchant_id == action.merchant_id, Action.order_id == action.order_id, Action.type.in_(QUALIFYING_TYPES))
        .order_by(Action.id)
        .limit(1)
    )
    if purchase is None or purchase.referral_id is None or not await _order_fully_refunded(session, purchase):
        return 0
    referral = await session.get_one(Referral, purchase.referral_id)
    removed = 0
    for campaign in await _campaigns_of(session, referral.program_id):
        progress = await _locked_progress(session, campaign, referral.referrer_id)
        sales = (
            await session.scalars(
                select(CampaignSale)
                .where(
                    CampaignSale.campaign_id == campaign.id,
                    CampaignSale.order_id == action.order_id,
                    CampaignSale.refunded_at.is_(None),
                )
                .execution_options(populate_existing=True)
            )
        ).all()
        for sale in sales:
            sale.refunded_at = utcnow()
            progress.sales -= 1
            progress.sales_amount -= sale.amount
            granted = await session.scalar(
                select(money.total(Reward.amount)).where(
                    Reward.merchant_id == campaign.merchant_id, Reward.grant_key == _key(campaign, "sale", sale.action_id)
                )
            )
            progress.commission -= granted or 0  # the refund itself reverses that reward (app.rewards.lifecycle)
            removed += 1
    await session.flush()
    return removed
