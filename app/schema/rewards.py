"""Reward rules, rewards and redemption at checkout."""

from __future__ import annotations

from datetime import date

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.referrals import customers
from app.rewards import kinds, models, redemption
from app.rewards import queries as reward_queries
from app.rewards import rules as rule_service
from app.schema.errors import UserError, not_found
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKey, SecretKeyOrAdmin, SecretKeyOrManager
from app.schema.reward_types import Recipient, Reward, RewardKind, RewardRule, RewardStatus
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query


@strawberry.input
class MetadataFilterInput:
    key: str
    op: str = strawberry.field(default="IN", description="IN or NOT_IN")
    values: list[str] = strawberry.field(default_factory=list)


@strawberry.input(description="When the rule pays; leave a condition out to not apply it.")
class RewardConditionsInput:
    min_action_amount: BigInt | None = None
    min_action_currency: str | None = None
    first_action_only: bool = False
    within_days_of_referral: int | None = None
    metadata_filters: list[MetadataFilterInput] = strawberry.field(default_factory=list)
    milestone: int | None = strawberry.field(default=None, description="Pay the referrer at their Nth qualified referral, once.")
    cap_per_referrer_monthly: int | None = None
    cap_per_referrer_lifetime: int | None = None
    program_monthly_budget: BigInt | None = strawberry.field(
        default=None, description="In the reward's unit, per calendar month."
    )
    hold_days: int = strawberry.field(default=0, description="Days the reward stays HELD (your refund window).")
    expires_in_days: int | None = None


@strawberry.input(description="A COMMISSION rate for a date range (both days included) in the merchant's time zone.")
class CommissionSeasonInput:
    starts_on: date
    ends_on: date
    percent_bps: int


@strawberry.input(description="Give `recipient` a reward of `kind` when `trigger` happens and the conditions hold.")
class RewardRuleInput:
    name: str
    trigger: str = strawberry.field(description="An action type, e.g. PURCHASE.")
    recipient: Recipient
    kind: RewardKind
    enabled: bool = True
    amount: BigInt | None = strawberry.field(default=None, description="Fixed value: minor units, or points for POINTS.")
    currency: str | None = None
    percent_bps: int | None = strawberry.field(default=None, description=f"{kinds.PERCENT_MEANINGS}; 1500 = 15 %.")
    coupon_pool_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=f"{kinds.spoken(kinds.kinds_where(lambda b: b.uses_coupon_pools))}: hand out the merchant's uploaded codes.",
    )
    coupon_min_order_amount: BigInt | None = None
    recurring_months: int | None = strawberry.field(
        default=None, description=f"{kinds.spoken(kinds.kinds_where(lambda b: b.recurs))} on every trigger for N months."
    )
    conditions: RewardConditionsInput | None = None
    seasons: list[CommissionSeasonInput] = strawberry.field(
        default_factory=list,
        description=f"Percentage {kinds.spoken(kinds.kinds_where(lambda b: b.has_seasons))}: other rates for date ranges "
        "(no overlaps); the rate "
        "applied is the one in force on the local day the action occurred.",
    )

    def definition(self) -> rule_service.RuleDefinition:
        c = self.conditions or RewardConditionsInput()
        return rule_service.RuleDefinition(
            name=self.name,
            trigger=self.trigger,
            recipient=self.recipient,
            kind=self.kind,
            enabled=self.enabled,
            spec=rule_service.RuleSpec(
                amount=self.amount,
                currency=self.currency,
                percent_bps=self.percent_bps,
                coupon_pool_id=self.coupon_pool_id,
                coupon_min_order_amount=self.coupon_min_order_amount,
                recurring_months=self.recurring_months,
                min_action_amount=c.min_action_amount,
                min_action_currency=c.min_action_currency,
                first_action_only=c.first_action_only,
                within_days_of_referral=c.within_days_of_referral,
                metadata_filters=tuple(
                    rule_service.MetadataFilter(key=f.key, op=f.op, values=tuple(f.values)) for f in c.metadata_filters
                ),
                milestone=c.milestone,
                cap_per_referrer_monthly=c.cap_per_referrer_monthly,
                cap_per_referrer_lifetime=c.cap_per_referrer_lifetime,
                program_monthly_budget=c.program_monthly_budget,
                hold_days=c.hold_days,
                expires_in_days=c.expires_in_days,
                seasons=tuple(rule_service.Season(s.starts_on, s.ends_on, s.percent_bps) for s in self.seasons),
            ),
        )


@strawberry.type
class RewardRulePayload:
    reward_rule: RewardRule | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RedeemCreditInput:
    customer_external_id: str
    amount: BigInt = strawberry.field(description="Minor units.")
    currency: str
    idempotency_key: str = strawberry.field(description="e.g. the checkout id; a retry returns the first result.")
    order_id: str | None = None


@strawberry.input
class RedeemPointsInput:
    customer_external_id: str
    points: BigInt
    idempotency_key: str
    order_id: str | None = None


@strawberry.type
class RedemptionPayload:
    transaction_id: strawberry.ID | None = None
    amount: BigInt | None = None
    unit: str | None = None
    balance: BigInt | None = strawberry.field(default=None, description="Available after this redemption.")
    replayed: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _redemption_payload(result: redemption.Redemption) -> RedemptionPayload:
    return RedemptionPayload(
        transaction_id=strawberry.ID(str(result.transaction.id)),
        amount=result.amount,
        unit=result.unit,
        balance=result.balance,
        replayed=result.replayed,
    )


@strawberry.type
class RewardQuery:
    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="The current version of each rule of a program.")
    async def reward_rules(self, info: Info, program_id: strawberry.ID, include_disabled: bool = True) -> list[RewardRule]:
        async def work(session: AsyncSession) -> list[RewardRule]:
            rows = await rule_service.list_rules(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                include_disabled=include_disabled,
            )
            return [RewardRule.from_model(r) for r in rows]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="A rule's current version; `history` lists them all.")
    async def reward_rule(self, info: Info, rule_id: strawberry.ID) -> RewardRule | None:
        async def work(session: AsyncSession) -> RewardRule | None:
            rule = await rule_service.current_rule(
                session, merchant_id=info.context.merchant_id, rule_id=validation.parse_id(rule_id, "ruleId")
            )
            if rule is None:
                raise not_found("reward rule")
            return RewardRule.from_model(rule)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="Newest first.")
    async def rewards(
        self,
        info: Info,
        customer_external_id: str | None = None,
        status: RewardStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Reward]:
        async def work(session: AsyncSession) -> Connection[Reward]:
            customer_id = None
            if customer_external_id is not None:
                customer = await customers.require_customer(
                    session,
                    merchant_id=info.context.merchant_id,
                    external_id=customers.external_id(customer_external_id),
                    field="customerExternalId",
                )
                customer_id = customer.id
            page = await reward_queries.list_rewards(
                session, merchant_id=info.context.merchant_id, customer_id=customer_id, status=status, first=first, after=after
            )
            return to_connection(page, Reward.from_model)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey])
    async def reward(self, info: Info, id: strawberry.ID) -> Reward | None:
        async def work(session: AsyncSession) -> Reward | None:
            found = await reward_queries.get_reward(
                session, merchant_id=info.context.merchant_id, reward_id=validation.parse_id(id, "id")
            )
            if found is None:
                raise not_found("reward")
            return Reward.from_model(found)

        return await query(info, work)


@strawberry.type
class RewardMutation:
    @strawberry.mutation(permission_classes=[SecretKeyOrManager])
    async def create_reward_rule(self, info: Info, program_id: strawberry.ID, input: RewardRuleInput) -> RewardRulePayload:
        async def work(session: AsyncSession) -> RewardRulePayload:
            rule = await rule_service.create_rule(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                definition=input.definition(),
            )
            return RewardRulePayload(reward_rule=RewardRule.from_model(rule))

        return await mutate(info, RewardRulePayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrManager], description="Adds a version; granted rewards keep theirs.")
    async def update_reward_rule(self, info: Info, rule_id: strawberry.ID, input: RewardRuleInput) -> RewardRulePayload:
        async def work(session: AsyncSession) -> RewardRulePayload:
            rule = await rule_service.update_rule(
                session,
                merchant_id=info.context.merchant_id,
                rule_id=validation.parse_id(rule_id, "ruleId"),
                definition=input.definition(),
            )
            return RewardRulePayload(reward_rule=RewardRule.from_model(rule))

        return await mutate(info, RewardRulePayload, work)

    @strawberry.mutation(permission_classes=[SecretKeyOrManager])
    async def set_reward_rule_enabled(self, info: Info, rule_id: strawberry.ID, enabled: bool) -> RewardRulePayload:
        async def work(session: AsyncSession) -> RewardRulePayload:
            rule = await rule_service.set_rule_enabled(
                session, merchant_id=info.context.merchant_id, rule_id=validation.parse_id(rule_id, "ruleId"), enabled=enabled
            )
            return RewardRulePayload(reward_rule=RewardRule.from_model(rule))

        return await mutate(info, RewardRulePayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Spend store credit at checkout; never below zero.")
    async def redeem_credit(self, info: Info, input: RedeemCreditInput) -> RedemptionPayload:
        async def work(session: AsyncSession) -> RedemptionPayload:
            result = await redemption.redeem(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=input.customer_external_id,
                kind=models.RewardKind.CREDIT,
                amount=input.amount,
                unit=input.currency,
                idempotency_key=input.idempotency_key,
                order_id=input.order_id,
            )
            return _redemption_payload(result)

        return await mutate(info, RedemptionPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Spend loyalty points; never below zero.")
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> RedemptionPayload:
        async def work(session: AsyncSession) -> RedemptionPayload:
            result = await redemption.redeem(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=input.customer_external_id,
                kind=models.RewardKind.POINTS,
                amount=input.points,
                unit=None,
                idempotency_key=input.idempotency_key,
                order_id=input.order_id,
            )
            return _redemption_payload(result)

        return await mutate(info, RedemptionPayload, work)
