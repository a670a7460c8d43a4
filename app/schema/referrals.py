"""Recording actions, referrals and their queries."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.actions import service as actions
from app.referrals import queries
from app.schema.context import preload
from app.schema.errors import UserError, not_found
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKey, SecretKeyOrAdmin
from app.schema.referral_types import Action, Referral, ReferralStatus
from app.schema.reward_types import Reward
from app.schema.scalars import JSON, BigInt
from app.schema.transactions import mutate, query


@strawberry.input
class AddressInput:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


@strawberry.input(description="What the merchant's server knows about the request, for fraud checks.")
class ActionContextInput:
    device_id: str | None = None
    device_fingerprint: str | None = strawberry.field(
        default=None, description="The widget's coarse browser hash (Referral.getAttribution()); a weak fraud signal."
    )
    ip: str | None = None
    user_agent: str | None = None
    email: str | None = None
    payment_fingerprint: str | None = strawberry.field(default=None, description="e.g. the card fingerprint from the PSP.")
    shipping_address: AddressInput | None = None


@strawberry.input
class RecordActionInput:
    type: str = strawberry.field(
        description="SIGNUP, PURCHASE, SUBSCRIPTION_STARTED, REFUND, CANCELLATION, or a custom name (A-Z, 0-9, _)."
    )
    customer_external_id: str = strawberry.field(description="Created if new.")
    idempotency_key: str = strawberry.field(
        description="e.g. the order id. A retry with the same key and input returns the first result."
    )
    amount: BigInt | None = strawberry.field(default=None, description="Minor units (cents).")
    currency: str | None = strawberry.field(default=None, description="ISO 4217, required with amount.")
    occurred_at: datetime | None = strawberry.field(default=None, description="Defaults to now; with a timezone.")
    order_id: str | None = None
    program_id: strawberry.ID | None = strawberry.field(default=None, description="Limit attribution to one program.")
    referral_code: str | None = None
    attribution_token: str | None = strawberry.field(default=None, description="From trackClick; wins over referralCode.")
    customer_name: str | None = None
    context: ActionContextInput | None = None
    metadata: JSON | None = None

    def to_domain(self) -> actions.ActionInput:
        ctx = self.context or ActionContextInput()
        address = None
        if ctx.shipping_address is not None:
            a = ctx.shipping_address
            address = {
                "line1": a.line1,
                "line2": a.line2,
                "city": a.city,
                "region": a.region,
                "postalCode": a.postal_code,
                "country": a.country,
            }
        return actions.ActionInput(
            type=self.type,
            customer_external_id=self.customer_external_id,
            idempotency_key=self.idempotency_key,
            amount=self.amount,
            currency=self.currency,
            occurred_at=self.occurred_at,
            order_id=self.order_id,
            program_id=validation.parse_id(self.program_id, "programId") if self.program_id else None,
            referral_code=self.referral_code,
            attribution_token=self.attribution_token,
            customer_email=ctx.email,
            customer_name=self.customer_name,
            device_id=ctx.device_id,
            device_fingerprint=ctx.device_fingerprint,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            payment_fingerprint=ctx.payment_fingerprint,
            shipping_address=address,
            metadata=self.metadata,
        )


@strawberry.type(description="What a REFUND or CANCELLATION naming an order took back.")
class RefundResult:
    order_found: bool = strawberry.field(description="False: no purchase with this orderId; recorded, nothing reversed.")
    rewards: list[Reward] = strawberry.field(description="Rewards voided or (partly) reversed.")


@strawberry.type
class RecordActionPayload:
    action: Action | None = None
    referral: Referral | None = strawberry.field(default=None, description="The referral the action belongs to, if any.")
    rewards: list[Reward] = strawberry.field(default_factory=list, description="Rewards this action granted.")
    refund: RefundResult | None = None
    replayed: bool = strawberry.field(default=False, description="True when this was a retry: nothing new was written.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ClaimReferralInput:
    program_id: strawberry.ID
    customer_external_id: str
    code: str


@strawberry.type
class ReferralPayload:
    referral: Referral | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReferralQuery:
    @strawberry.field(permission_classes=[SecretKeyOrAdmin])
    async def referral(self, info: Info, id: strawberry.ID) -> Referral | None:
        async def work(session: AsyncSession) -> Referral | None:
            found = await queries.get_referral(
                session, merchant_id=info.context.merchant_id, referral_id=validation.parse_id(id, "id")
            )
            if found is None:
                raise not_found("referral")
            return Referral.from_model(found)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="Newest first.")
    async def referrals(
        self,
        info: Info,
        program_id: strawberry.ID | None = None,
        status: ReferralStatus | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Referral]:
        async def work(session: AsyncSession) -> Connection[Referral]:
            page = await queries.list_referrals(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId") if program_id else None,
                status=status,
                first=first,
                after=after,
            )
            return to_connection(page, Referral.from_model)

        connection = await query(info, work)
        nodes = [edge.node for edge in connection.edges]
        loaders = info.context.get_loaders()
        await preload(
            info,
            [
                ("referrer", loaders.customer, [node.referrer_id for node in nodes]),
                ("referee", loaders.customer, [node.referee_id for node in nodes]),
                ("program", loaders.program, [node.program_id for node in nodes]),
                ("code", loaders.referral_code, [node.code_id for node in nodes]),
            ],
        )
        return connection

    @strawberry.field(permission_classes=[SecretKey], description="Newest first.")
    async def actions(
        self,
        info: Info,
        customer_external_id: str | None = None,
        referral_id: strawberry.ID | None = None,
        type: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Action]:
        async def work(session: AsyncSession) -> Connection[Action]:
            page = await queries.list_actions(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=customer_external_id,
                referral_id=validation.parse_id(referral_id, "referralId") if referral_id else None,
                action_type=type,
                first=first,
                after=after,
            )
            return to_connection(page, Action.from_model)

        return await query(info, work)


@strawberry.type
class ReferralMutation:
    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="The merchant's server reports a signup, purchase, refund...; attributes it to a referral.",
    )
    async def record_action(self, info: Info, input: RecordActionInput) -> RecordActionPayload:
        async def work(session: AsyncSession) -> RecordActionPayload:
            recorded = await actions.record_action(
                session,
                merchant_id=info.context.merchant_id,
                data=input.to_domain(),
                config_version=info.context.config_version,
            )
            refund = recorded.refund
            return RecordActionPayload(
                action=Action.from_model(recorded.action),
                referral=Referral.from_model(recorded.referral) if recorded.referral else None,
                rewards=[Reward.from_model(r) for r in recorded.rewards],
                refund=RefundResult(order_found=refund.order_found, rewards=[Reward.from_model(r) for r in refund.rewards])
                if refund is not None
                else None,
                replayed=recorded.replayed,
            )

        return await mutate(info, RecordActionPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="A referee who lost the referral link names the code after signing up (within the claim window).",
    )
    async def claim_referral(self, info: Info, input: ClaimReferralInput) -> ReferralPayload:
        async def work(session: AsyncSession) -> ReferralPayload:
            referral = await actions.claim_referral(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(input.program_id, "programId"),
                customer_external_id=input.customer_external_id,
                code=input.code,
                config_version=info.context.config_version,
            )
            return ReferralPayload(referral=Referral.from_model(referral))

        return await mutate(info, ReferralPayload, work)
