"""Contest leaderboards and their finalization.

Ranking: by qualified sales (refunded ones left out), highest first. Equal counts share a
rank, and the next rank skips ("1, 2, 2, 4": standard competition ranking). Prize rule for
ties: every referrer whose shared rank is within the top N wins the full prize, so a tie at
the last winning rank can make more than N winners (the merchant's cost is bounded by the
number tied; it is shown before finalization in the provisional standing).

The standing is PROVISIONAL until `refund_window_days` after the contest's end: late refunds
still take sales out. `finalize_due` (a scheduled job) then writes the standing once, grants
the prizes (once per referrer: keyed by contest + referrer) and marks the contest final;
refunds after that no longer change it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import grants
from app.campaigns.models import Campaign, CampaignKind, CampaignProgress, CampaignStatus, ContestStanding
from app.campaigns.service import spec_of
from app.db import new_id, utcnow
from app.errors import DomainError, ErrorCode
from app.referrals.models import Customer
from app.rewards.models import RewardKind

PROVISIONAL = "PROVISIONAL"
FINAL = "FINAL"
MAX_SHOWN = 100  # public top of a leaderboard


@dataclass(frozen=True)
class Standing:
    rank: int
    referrer_id: uuid.UUID
    sales: int
    display_name: str
    wins_prize: bool


@dataclass(frozen=True)
class Leaderboard:
    campaign: Campaign
    status: str  # PROVISIONAL or FINAL
    final_after: datetime  # when the standing is fixed
    top: list[Standing]
    own: Standing | None  # the asking referrer's line (None: no sale counted)


def masked_name(customer: Customer) -> str:
    """What other referrers see of a referrer: first name and initial ("Jane D."), or a
    masked id. Never an email."""
    words = (customer.name or "").split()
    if words:
        return words[0][:20] + (f" {words[-1][0]}." if len(words) > 1 else "")
    return f"Referrer {customer.external_id[:2]}***"


def final_after(campaign: Campaign) -> datetime:
    return campaign.ends_at + timedelta(days=spec_of(campaign).refund_window_days)


def ranked(rows: list[tuple[uuid.UUID, int]], top_n: int | None) -> list[tuple[int, uuid.UUID, int, bool]]:
    """(rank, referrer, sales, wins) by sales, ties sharing a rank; rows come highest first."""
    result, rank, previous = [], 0, None
    for position, (referrer_id, sales) in enumerate(rows, start=1):
        if sales != previous:
            rank, previous = position, sales
        result.append((rank, referrer_id, sales, top_n is not None and rank <= top_n))
    return result


async def _live_rows(session: AsyncSession, campaign: Campaign) -> list[tuple[uuid.UUID, int]]:
    rows = await session.execute(
        select(CampaignProgress.referrer_id, CampaignProgress.sales)
        .where(CampaignProgress.campaign_id == campaign.id, CampaignProgress.sales > 0)
        .order_by(CampaignProgress.sales.desc(), CampaignProgress.referrer_id)
    )
    return [(row.referrer_id, row.sales) for row in rows]


async def leaderboard(
    session: AsyncSession, *, campaign: Campaign, referrer_id: uuid.UUID | None = None, limit: int = 10
) -> Leaderboard:
    """The standing: final rows once finalized, else live ones; the top `limit` and the
    asking referrer's own line."""
    spec = spec_of(campaign)
    if campaign.finalized_at is not None:
        stored = (
            await session.scalars(
                select(ContestStanding)
                .where(ContestStanding.campaign_id == campaign.id)
                .order_by(ContestStanding.rank, ContestStanding.referrer_id)
            )
        ).all()
        lines = [(s.rank, s.referrer_id, s.sales, s.prize_reward_id is not None) for s in stored]
    else:
        lines = ranked(await _live_rows(session, campaign), spec.top_n)
    limit = max(1, min(limit, MAX_SHOWN))
    shown = lines[:limit]
    own = next((line for line in lines if line[1] == referrer_id), None) if referrer_id else None
    wanted = {line[1] for line in shown} | ({own[1]} if own else set())
    names = {c.id: masked_name(c) for c in (await session.scalars(select(Customer).where(Customer.id.in_(wanted)))).all()}

    def standing(line: tuple[int, uuid.UUID, int, bool]) -> Standing:
        return Standing(
            rank=line[0], referrer_id=line[1], sales=line[2], display_name=names.get(line[1], "?"), wins_prize=line[3]
        )

    return Leaderboard(
        campaign=campaign,
        status=FINAL if campaign.finalized_at else PROVISIONAL,
        final_after=final_after(campaign),
        top=[standing(line) for line in shown],
        own=standing(own) if own else None,
    )


async def finalize(session: AsyncSession, campaign: Campaign, *, now: datetime) -> bool:
    """Fix the contest's standing and grant its prizes; the caller holds the campaign's lock."""
    if campaign.kind != CampaignKind.CONTEST or campaign.finalized_at is not None:
        return False
    if campaign.status != CampaignStatus.ACTIVE:
        return False
    if now < final_after(campaign):
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, "the contest's refund window has not passed yet")
    spec = spec_of(campaign)
    assert spec.prize_amount is not None
    # Lock the progress rows: a refund job counting now finishes first, or waits and then
    # finds the contest final.
    await session.execute(
        select(CampaignProgress.id)
        .where(CampaignProgress.campaign_id == campaign.id)
        .order_by(CampaignProgress.id)
        .with_for_update()
    )
    rows = []
    for rank, referrer_id, sales, wins in ranked(await _live_rows(session, campaign), spec.top_n):
        prize = None
        if wins:
            prize = await grants.grant_once(
                session,
                merchant_id=campaign.merchant_id,
                program_id=campaign.program_id,
                customer_id=referrer_id,
                kind=RewardKind(spec.reward_kind),
                amount=spec.prize_amount,
                currency=spec.currency,
                grant_key=f"campaign:{campaign.id}:prize:{referrer_id}",
                source=grants.CAMPAIGN,
                hold_days=spec.hold_days,
            )
        rows.append(
            {
                "id": new_id(),
                "merchant_id": campaign.merchant_id,
                "campaign_id": campaign.id,
                "referrer_id": referrer_id,
                "rank": rank,
                "sales": sales,
                "prize_reward_id": prize.id if prize is not None else None,
            }
        )
    if rows:
        await session.execute(insert(ContestStanding), rows)
    campaign.finalized_at = now
    await session.flush()
    return True


async def finalize_due(session: AsyncSession, *, now: datetime | None = None, limit: int = 50) -> int:
    """Finalize the contests whose refund window has passed (two workers never take the same)."""
    now = now or utcnow()
    candidates = (
        await session.scalars(
            select(Campaign)
            .where(
                Campaign.kind == CampaignKind.CONTEST,
                Campaign.status == CampaignStatus.ACTIVE,
                Campaign.finalized_at.is_(None),
                Campaign.ends_at <= now,
            )
            .order_by(Campaign.ends_at)
            .limit(limit)
        )
    ).all()
    done = 0
    for candidate in candidates:
        if now < final_after(candidate):
            continue
        query = select(Campaign).where(Campaign.id == candidate.id).execution_options(populate_existing=True)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        campaign = await session.scalar(query)
        if campaign is not None:
            done += await finalize(session, campaign, now=now)
    return done
