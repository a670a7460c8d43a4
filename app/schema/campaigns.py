"""Campaigns, contests and their leaderboards; a program's promotion rules and their acceptance."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.campaigns import contests, promotion_rules, referrers, service
from app.campaigns import models as campaign_models
from app.errors import DomainError, ErrorCode
from app.merchants.models import ApiKeyKind
from app.referrals import customers
from app.referrals.models import Customer as CustomerModel
from app.schema.common import gid
from app.schema.errors import UserError
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import AnyKey, SecretKey, SecretKeyOrAdmin
from app.schema.reward_types import RewardKind
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query

CampaignKind: TypeAlias = campaign_models.CampaignKind
strawberry.enum(
    CampaignKind,
    description=(
        "THRESHOLD_BONUS: bonusAmount once at `threshold` qualified sales. RATE_BOOST: boostBps extra commission on the "
        "sale's part in `category`. TIERED_RATE: commission by tier, earlier sales topped up when a tier is crossed. "
        "CONTEST: prizeAmount to the top N by qualified sales."
    ),
)
CampaignStatus: TypeAlias = campaign_models.CampaignStatus
strawberry.enum(CampaignStatus)


@strawberry.enum
class LeaderboardStatus(enum.Enum):
    PROVISIONAL = "PROVISIONAL"  # refunds may still change it
    FINAL = "FINAL"


@strawberry.type
class CampaignTier:
    from_sale: int = strawberry.field(description="The referrer's Nth sale of the period and later ones earn rateBps.")
    rate_bps: int


@strawberry.type
class Campaign:
    id: strawberry.ID
    program_id: strawberry.ID
    name: str
    kind: CampaignKind
    status: CampaignStatus
    starts_at: datetime = strawberry.field(description="The first day's start in the merchant's time zone.")
    ends_at: datetime = strawberry.field(description="Exclusive: the day after the last day, at its start.")
    time_zone: str
    currency: str
    reward_kind: RewardKind
    hold_days: int
    threshold: int | None
    bonus_amount: BigInt | None
    category: str | None
    boost_bps: int | None
    tiers: list[CampaignTier]
    top_n: int | None
    prize_amount: BigInt | None
    refund_window_days: int
    finalized_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: campaign_models.Campaign) -> Campaign:
        spec = service.spec_of(m)
        return cls(
            id=gid(m.id),
            program_id=gid(m.program_id),
            name=m.name,
            kind=campaign_models.CampaignKind(m.kind),
            status=campaign_models.CampaignStatus(m.status),
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            time_zone=m.time_zone,
            currency=spec.currency,
            reward_kind=RewardKind(spec.reward_kind),
            hold_days=spec.hold_days,
            threshold=spec.threshold,
            bonus_amount=spec.bonus_amount,
            category=spec.category,
            boost_bps=spec.boost_bps,
            tiers=[CampaignTier(from_sale=t.from_sale, rate_bps=t.rate_bps) for t in spec.tiers],
            top_n=spec.top_n,
            prize_amount=spec.prize_amount,
            refund_window_days=spec.refund_window_days,
            finalized_at=m.finalized_at,
            created_at=m.created_at,
        )


@strawberry.type(description="A line of a contest's standing. Referrers see display names only (first name and initial).")
class LeaderboardLine:
    rank: int = strawberry.field(description="Equal sales share a rank; the next rank skips (1, 2, 2, 4).")
    display_name: str
    sales: int
    wins_prize: bool = strawberry.field(description="Within the top N (ties at the last winning rank all win).")
    referrer_external_id: str | None = strawberry.field(description="The merchant's view only; null for referrers.")


@strawberry.type
class CampaignLeaderboard:
    campaign: Campaign
    status: LeaderboardStatus
    final_after: datetime = strawberry.field(description="The standing is fixed (and prizes granted) after this.")
    top: list[LeaderboardLine]
    own: LeaderboardLine | None = strawberry.field(description="The asking referrer's line (null: no sale counted yet).")

    @classmethod
    def of(cls, board: contests.Leaderboard, external_ids: dict | None = None) -> CampaignLeaderboard:
        def line(s: contests.Standing) -> LeaderboardLine:
            return LeaderboardLine(
                rank=s.rank,
                display_name=s.display_name,
                sales=s.sales,
                wins_prize=s.wins_prize,
                referrer_external_id=(external_ids or {}).get(s.referrer_id),
            )

        return cls(
            campaign=Campaign.from_model(board.campaign),
            status=LeaderboardStatus(board.status),
            final_after=board.final_after,
            top=[line(s) for s in board.top],
            own=line(board.own) if board.own else None,
        )


@strawberry.input
class CampaignTierInput:
    from_sale: int
    rate_bps: int


@strawberry.input
class CampaignInput:
    program_id: strawberry.ID
    name: str
    kind: CampaignKind
    starts_on: date = strawberry.field(description="The first day, in the merchant's time zone.")
    ends_on: date = strawberry.field(description="The last day (inclusive), in the merchant's time zone.")
    currency: str = strawberry.field(description="Only sales in this currency count; amounts are in its minor units.")
    reward_kind: RewardKind = RewardKind.COMMISSION
    hold_days: int = 0
    threshold: int | None = None
    bonus_amount: BigInt | None = None
    category: str | None = None
    boost_bps: int | None = None
    tiers: list[CampaignTierInput] | None = None
    top_n: int | None = None
    prize_amount: BigInt | None = None
    refund_window_days: int = 0

    def to_domain(self) -> service.CampaignInput:
        if len(self.tiers or []) > service.MAX_TIERS:
            raise DomainError("tiers", ErrorCode.TOO_MANY, f"at most {service.MAX_TIERS} tiers")
        return service.CampaignInput(
            program_id=validation.parse_id(self.program_id, "programId"),
            name=self.name,
            kind=campaign_models.CampaignKind(self.kind.value),
            starts_on=self.starts_on,
            ends_on=self.ends_on,
            spec=service.CampaignSpec(
                currency=self.currency,
                reward_kind=self.reward_kind.value,
                hold_days=self.hold_days,
                threshold=self.threshold,
                bonus_amount=self.bonus_amount,
                category=self.category,
                boost_bps=self.boost_bps,
                tiers=tuple(service.Tier(from_sale=t.from_sale, rate_bps=t.rate_bps) for t in self.tiers or ()),
                top_n=self.top_n,
                prize_amount=self.prize_amount,
                refund_window_days=self.refund_window_days,
            ),
        )


@strawberry.type
class CampaignPayload:
    campaign: Campaign | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromotionRuleClause:
    id: str
    text: str


@strawberry.type(description="One version of a program's promotion rules.")
class PromotionRules:
    program_id: strawberry.ID
    version: int
    text: str
    clauses: list[PromotionRuleClause]
    created_at: datetime

    @classmethod
    def from_model(cls, m: campaign_models.PromotionRules) -> PromotionRules:
        return cls(
            program_id=gid(m.program_id),
            version=m.version,
            text=m.text,
            created_at=m.created_at,
            clauses=[PromotionRuleClause(id=c["id"], text=c["text"]) for c in m.clauses],
        )


@strawberry.type(
    description=(
        "A referrer and the program's current promotion rules. Earning continues while an acceptance is pending; "
        "a reviewer may reject commissions that break the rules, citing the clause."
    )
)
class PromotionRulesStatus:
    current: PromotionRules | None
    accepted_at: datetime | None = strawberry.field(description="When the current version was accepted.")
    accepted_via: str | None = strawberry.field(description="WIDGET (signed customer session) or API.")
    pending_acceptance: bool


@strawberry.input
class PromotionRuleClauseInput:
    id: str = strawberry.field(description='A stable id to cite, e.g. "no-brand-bidding" (a-z, 0-9, -).')
    text: str


@strawberry.type
class PromotionRulesPayload:
    promotion_rules: PromotionRules | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromotionRulesStatusPayload:
    status: PromotionRulesStatus | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _status(found: promotion_rules.AcceptanceStatus) -> PromotionRulesStatus:
    return PromotionRulesStatus(
        current=PromotionRules.from_model(found.current) if found.current else None,
        accepted_at=found.accepted.accepted_at if found.accepted else None,
        accepted_via=found.accepted.via if found.accepted else None,
        pending_acceptance=found.pending,
    )


async def referrer_of(
    info: Info, session: AsyncSession, external_id: str, timestamp: int | None, signature: str | None
) -> CustomerModel:
    """The referrer a call is for: from a browser (publishable key) only a signed customer."""
    caller = await info.context.caller()
    return await referrers.referrer(
        session,
        merchant_id=info.context.merchant_id,
        external_id=external_id,
        timestamp=timestamp,
        signature=signature,
        signed_only=caller.kind is ApiKeyKind.PUBLISHABLE,
        app_settings=info.context.settings,
    )


@strawberry.type
class CampaignQuery:
    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The merchant's campaigns, newest first.")
    async def campaigns(
        self, info: Info, program_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[Campaign]:
        async def work(session: AsyncSession) -> Connection[Campaign]:
            page = await service.list_campaigns(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId") if program_id else None,
                first=first,
                after=after,
            )
            return to_connection(page, Campaign.from_model)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="A campaign's standing, with referrers' external ids.")
    async def campaign_leaderboard(self, info: Info, campaign_id: strawberry.ID, first: int = 10) -> CampaignLeaderboard:
        async def work(session: AsyncSession) -> CampaignLeaderboard:
            campaign = await service.get_campaign(
                session, merchant_id=info.context.merchant_id, campaign_id=validation.parse_id(campaign_id, "campaignId")
            )
            board = await contests.leaderboard(session, campaign=campaign, limit=first)
            external_ids = await customers.external_ids(
                session, merchant_id=info.context.merchant_id, ids=[s.referrer_id for s in board.top]
            )
            return CampaignLeaderboard.of(board, external_ids)

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyKey],
        description="A referrer's view of a campaign's standing: the public top (display names) and their own line. "
        "With the publishable key, the widget's signed customer (timestamp, signature) is required.",
    )
    async def referrer_campaign_leaderboard(
        self,
        info: Info,
        campaign_id: strawberry.ID,
        customer_external_id: str,
        timestamp: BigInt | None = None,
        signature: str | None = None,
        first: int = 10,
    ) -> CampaignLeaderboard:
        async def work(session: AsyncSession) -> CampaignLeaderboard:
            referrer = await referrer_of(info, session, customer_external_id, timestamp, signature)
            campaign = await service.get_campaign(
                session, merchant_id=info.context.merchant_id, campaign_id=validation.parse_id(campaign_id, "campaignId")
            )
            return CampaignLeaderboard.of(
                await contests.leaderboard(session, campaign=campaign, referrer_id=referrer.id, limit=first)
            )

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The program's current promotion rules.")
    async def promotion_rules(self, info: Info, program_id: strawberry.ID) -> PromotionRules | None:
        async def work(session: AsyncSession) -> PromotionRules | None:
            found = await promotion_rules.current(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(program_id, "programId")
            )
            return PromotionRules.from_model(found) if found else None

        return await query(info, work)

    @strawberry.field(
        permission_classes=[AnyKey],
        description="The program's current rules and whether the referrer accepted them (publishable key: signed customer).",
    )
    async def promotion_rules_status(
        self,
        info: Info,
        program_id: strawberry.ID,
        customer_external_id: str,
        timestamp: BigInt | None = None,
        signature: str | None = None,
    ) -> PromotionRulesStatus:
        async def work(session: AsyncSession) -> PromotionRulesStatus:
            referrer = await referrer_of(info, session, customer_external_id, timestamp, signature)
            return _status(
                await promotion_rules.status(
                    session,
                    merchant_id=info.context.merchant_id,
                    program_id=validation.parse_id(program_id, "programId"),
                    customer_id=referrer.id,
                )
            )

        return await query(info, work)


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(
        permission_classes=[SecretKey], description="Start a campaign or contest over local dates of the merchant's time zone."
    )
    async def create_campaign(self, info: Info, input: CampaignInput) -> CampaignPayload:
        async def work(session: AsyncSession) -> CampaignPayload:
            campaign = await service.create_campaign(session, merchant_id=info.context.merchant_id, data=input.to_domain())
            return CampaignPayload(campaign=Campaign.from_model(campaign))

        return await mutate(info, CampaignPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Stop counting; what was granted stays.")
    async def cancel_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        async def work(session: AsyncSession) -> CampaignPayload:
            campaign = await service.cancel_campaign(
                session, merchant_id=info.context.merchant_id, campaign_id=validation.parse_id(id, "id")
            )
            return CampaignPayload(campaign=Campaign.from_model(campaign))

        return await mutate(info, CampaignPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey], description="A new version of the program's promotion rules; referrers accept it again."
    )
    async def publish_promotion_rules(
        self, info: Info, program_id: strawberry.ID, text: str, clauses: list[PromotionRuleClauseInput]
    ) -> PromotionRulesPayload:
        async def work(session: AsyncSession) -> PromotionRulesPayload:
            rules = await promotion_rules.publish(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                text=text,
                clauses=[promotion_rules.Clause(id=c.id, text=c.text) for c in clauses[: promotion_rules.MAX_CLAUSES + 1]],
            )
            return PromotionRulesPayload(promotion_rules=PromotionRules.from_model(rules))

        return await mutate(info, PromotionRulesPayload, work)

    @strawberry.mutation(
        permission_classes=[AnyKey],
        description="The referrer accepts the current version (from the widget with the signed customer, or the API).",
    )
    async def accept_promotion_rules(
        self,
        info: Info,
        program_id: strawberry.ID,
        version: int,
        customer_external_id: str,
        timestamp: BigInt | None = None,
        signature: str | None = None,
    ) -> PromotionRulesStatusPayload:
        async def work(session: AsyncSession) -> PromotionRulesStatusPayload:
            referrer = await referrer_of(info, session, customer_external_id, timestamp, signature)
            program_id_ = validation.parse_id(program_id, "programId")
            caller = await info.context.caller()
            await promotion_rules.accept(
                session,
                merchant_id=info.context.merchant_id,
                program_id=program_id_,
                customer_id=referrer.id,
                version=version,
                via=promotion_rules.WIDGET if caller.kind is ApiKeyKind.PUBLISHABLE else promotion_rules.API,
            )
            return PromotionRulesStatusPayload(
                status=_status(
                    await promotion_rules.status(
                        session, merchant_id=info.context.merchant_id, program_id=program_id_, customer_id=referrer.id
                    )
                )
            )

        return await mutate(info, PromotionRulesStatusPayload, work)
