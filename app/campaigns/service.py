"""Creating, reading and cancelling campaigns; what each kind of campaign is parameterised by.

A campaign runs over local dates of the merchant's time zone: `starts_on` (its first day)
to `ends_on` (its last day, inclusive), stored as the UTC instants [starts_at, ends_at).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import calendars, money, validation
from app.campaigns.models import Campaign, CampaignKind, CampaignStatus
from app.db import new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants import locale
from app.pagination import Page, paginate
from app.referrals import programs
from app.rewards.models import RewardKind

MAX_TIERS = 10
MAX_TOP_N = 1000
MAX_DAYS = 366


@dataclass(frozen=True)
class Tier:
    from_sale: int  # the referrer's Nth sale of the period and every later one earn `rate_bps`
    rate_bps: int


@dataclass(frozen=True)
class CampaignSpec:
    """What a campaign gives. Amounts in minor units of `currency`; only sales in that
    currency count."""

    currency: str
    reward_kind: str = RewardKind.COMMISSION.value  # COMMISSION (paid out) or CREDIT
    hold_days: int = 0  # grants stay HELD this long (a refund window), then become available
    threshold: int | None = None  # THRESHOLD_BONUS: sales needed
    bonus_amount: int | None = None  # THRESHOLD_BONUS
    category: str | None = None  # RATE_BOOST: the purchase category boosted
    boost_bps: int | None = None  # RATE_BOOST: extra commission, basis points of the category's part of the sale
    tiers: tuple[Tier, ...] = ()  # TIERED_RATE, by from_sale ascending, the first from sale 1
    top_n: int | None = None  # CONTEST: ranks that win
    prize_amount: int | None = None  # CONTEST
    refund_window_days: int = 0  # CONTEST: the standing is final this long after the end

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tiers"] = [asdict(t) for t in self.tiers]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "tiers"}
        return cls(**known, tiers=tuple(Tier(**t) for t in data.get("tiers") or ()))

    def tier_at(self, sales: int) -> int:
        """The index of the tier a referrer with `sales` sales is in."""
        index = 0
        for i, tier in enumerate(self.tiers):
            if sales >= tier.from_sale:
                index = i
        return index


@dataclass(frozen=True)
class CampaignInput:
    program_id: uuid.UUID
    name: str
    kind: CampaignKind
    starts_on: date
    ends_on: date  # the last day, inclusive
    spec: CampaignSpec


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _positive(value: int | None, name: str, high: int = 10**12) -> int:
    if value is None:
        raise DomainError(name, ErrorCode.REQUIRED, f"{name} is required for this kind of campaign")
    return validation.int_range(value, name, 1, high)


def validated_spec(kind: CampaignKind, spec: CampaignSpec) -> CampaignSpec:
    currency = money.currency(spec.currency, "currency")
    if currency is None:
        raise DomainError("currency", ErrorCode.REQUIRED, "currency is required")
    if spec.reward_kind not in (RewardKind.COMMISSION.value, RewardKind.CREDIT.value):
        raise DomainError("rewardKind", ErrorCode.INVALID_INPUT, "campaigns grant COMMISSION or CREDIT")
    hold_days = validation.int_range(spec.hold_days, "holdDays", 0, 365) or 0
    values: dict[str, Any] = {"currency": currency, "reward_kind": spec.reward_kind, "hold_days": hold_days}
    if kind is CampaignKind.THRESHOLD_BONUS:
        values |= {
            "threshold": _positive(spec.threshold, "threshold", 100_000),
            "bonus_amount": _positive(spec.bonus_amount, "bonusAmount"),
        }
    elif kind is CampaignKind.RATE_BOOST:
        values |= {
            "category": validation.required_text(spec.category, "category", 100).lower(),
            "boost_bps": _positive(spec.boost_bps, "boostBps", 10_000),
        }
    elif kind is CampaignKind.TIERED_RATE:
        tiers = sorted(spec.tiers, key=lambda t: t.from_sale)
        if not tiers or tiers[0].from_sale != 1 or len(tiers) > MAX_TIERS:
            raise DomainError("tiers", ErrorCode.INVALID_INPUT, f"1-{MAX_TIERS} tiers, the first from sale 1")
        if len({t.from_sale for t in tiers}) != len(tiers):
            raise DomainError("tiers", ErrorCode.INVALID_INPUT, "two tiers start at the same sale")
        rates = [_positive(t.rate_bps, "tiers.rateBps", 10_000) for t in tiers]
        if rates != sorted(rates):
            raise DomainError("tiers", ErrorCode.INVALID_INPUT, "a higher tier cannot pay a lower rate")
        values["tiers"] = tuple(
            Tier(from_sale=_positive(t.from_sale, "tiers.fromSale", 100_000), rate_bps=t.rate_bps) for t in tiers
        )
    elif kind is CampaignKind.CONTEST:
        values |= {
            "top_n": _positive(spec.top_n, "topN", MAX_TOP_N),
            "prize_amount": _positive(spec.prize_amount, "prizeAmount"),
            "refund_window_days": validation.int_range(spec.refund_window_days, "refundWindowDays", 0, 365) or 0,
        }
    return CampaignSpec(**values)


async def create_campaign(session: AsyncSession, *, merchant_id: uuid.UUID, data: CampaignInput) -> Campaign:
    await programs.require_program(session, merchant_id=merchant_id, program_id=data.program_id, field="programId")
    name = validation.required_text(data.name, "name", 200)
    if data.ends_on < data.starts_on:
        raise DomainError("endsOn", ErrorCode.INVALID_INPUT, "the campaign ends before it starts")
    if (data.ends_on - data.starts_on).days >= MAX_DAYS:
        raise DomainError("endsOn", ErrorCode.INVALID_INPUT, f"a campaign runs at most {MAX_DAYS} days")
    spec = validated_spec(data.kind, data.spec)
    settings = await locale.get_settings(session, merchant_id=merchant_id)
    zone = calendars.time_zone(settings.time_zone)
    campaign = Campaign(
        id=new_id(),
        merchant_id=merchant_id,
        program_id=data.program_id,
        name=name,
        kind=data.kind.value,
        status=CampaignStatus.ACTIVE,
        starts_at=_day_start(data.starts_on, zone),
        ends_at=_day_start(data.ends_on + timedelta(days=1), zone),
        time_zone=settings.time_zone,
        spec=spec.to_json(),
        created_at=utcnow(),
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def get_campaign(session: AsyncSession, *, merchant_id: uuid.UUID, campaign_id: uuid.UUID, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id, Campaign.merchant_id == merchant_id)
    campaign = await session.scalar(query.with_for_update() if lock else query)
    if campaign is None:
        raise NotFound("id", "campaign")
    return campaign


async def cancel_campaign(session: AsyncSession, *, merchant_id: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    """Stop counting; what was granted stays granted. A finalized contest cannot be cancelled."""
    campaign = await get_campaign(session, merchant_id=merchant_id, campaign_id=campaign_id, lock=True)
    if campaign.finalized_at is not None:
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, "the contest is already final")
    campaign.status = CampaignStatus.CANCELLED
    await session.flush()
    return campaign


async def list_campaigns(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Campaign]:
    query = select(Campaign).where(Campaign.merchant_id == merchant_id)
    if program_id is not None:
        query = query.where(Campaign.program_id == program_id)
    return await paginate(session, query, Campaign.id, first=first, after=after)


def spec_of(campaign: Campaign) -> CampaignSpec:
    return CampaignSpec.from_json(campaign.spec)
