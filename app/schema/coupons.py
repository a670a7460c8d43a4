"""Coupon pools (codes the merchant uploads for DISCOUNT rewards) and coupons at checkout."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.rewards import coupons as service
from app.rewards import models
from app.schema.common import gid
from app.schema.errors import UserError, UserErrorCode
from app.schema.permissions import SecretKey
from app.schema.reward_types import Coupon
from app.schema.scalars import BigInt
from app.schema.transactions import mutate, query


@strawberry.type(description="Codes uploaded for a program's DISCOUNT rules, and how many are left.")
class CouponPool:
    id: strawberry.ID
    name: str
    low_stock_threshold: int
    available: int = strawberry.field(description="Uploaded, not handed out yet.")
    issued: int = strawberry.field(description="Handed out, not used yet.")
    redeemed: int
    low_stock: bool = strawberry.field(description="available <= lowStockThreshold.")
    exhausted: bool = strawberry.field(description="No codes left, or rewards are waiting for codes.")
    waiting_rewards: int = strawberry.field(description="Rewards waiting for a code; adding codes serves them, oldest first.")
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.CouponPool, stock: service.PoolStock) -> CouponPool:
        return cls(
            id=gid(m.id),
            name=m.name,
            low_stock_threshold=m.low_stock_threshold,
            available=stock.available,
            issued=stock.issued,
            redeemed=stock.redeemed,
            low_stock=stock.low_stock,
            exhausted=stock.exhausted,
            waiting_rewards=stock.waiting_rewards,
            created_at=m.created_at,
        )


async def _pool(session: AsyncSession, pool: models.CouponPool) -> CouponPool:
    return CouponPool.from_model(pool, await service.pool_stock(session, pool))


@strawberry.input
class CreateCouponPoolInput:
    program_id: strawberry.ID
    name: str
    low_stock_threshold: int = strawberry.field(default=10, description="Warn when this many codes or fewer are left.")


@strawberry.input
class RedeemCouponInput:
    code: str = strawberry.field(description="Case-insensitive.")
    order_id: str = strawberry.field(description="Redeeming again for the same order returns the first result.")
    order_amount: BigInt | None = strawberry.field(
        default=None, description="Minor units; required when the coupon has a minimum order."
    )
    currency: str | None = strawberry.field(default=None, description="Required for a fixed-amount coupon.")


@strawberry.type
class CouponPoolPayload:
    coupon_pool: CouponPool | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AddCouponCodesPayload:
    coupon_pool: CouponPool | None = None
    added: int = 0
    skipped: int = strawberry.field(default=0, description="Repeated in the call, or already a code of yours.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Whether a coupon can be used on an order; nothing is written.")
class CouponValidation:
    valid: bool
    reason: UserErrorCode | None = strawberry.field(description="Why not, when not valid.")
    coupon: Coupon | None


@strawberry.type
class RedeemCouponPayload:
    coupon: Coupon | None = None
    replayed: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CouponQuery:
    @strawberry.field(permission_classes=[SecretKey], description="A program's coupon pools with their stock.")
    async def coupon_pools(self, info: Info, program_id: strawberry.ID) -> list[CouponPool]:
        async def work(session: AsyncSession) -> list[CouponPool]:
            pools = await service.list_pools(
                session, merchant_id=info.context.merchant_id, program_id=validation.parse_id(program_id, "programId")
            )
            stocks = await service.pool_stocks(session, pools)
            return [CouponPool.from_model(p, stocks[p.id]) for p in pools]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="Check a coupon at checkout without using it.")
    async def validate_coupon(
        self, info: Info, code: str, order_amount: BigInt | None = None, currency: str | None = None
    ) -> CouponValidation:
        async def work(session: AsyncSession) -> CouponValidation:
            result = await service.validate_coupon(
                session, merchant_id=info.context.merchant_id, code=code, order_amount=order_amount, currency=currency
            )
            return CouponValidation(
                valid=result.valid,
                reason=result.reason,
                coupon=Coupon.from_model(result.coupon) if result.coupon is not None else None,
            )

        return await query(info, work)


@strawberry.type
class CouponMutation:
    @strawberry.mutation(permission_classes=[SecretKey])
    async def create_coupon_pool(self, info: Info, input: CreateCouponPoolInput) -> CouponPoolPayload:
        async def work(session: AsyncSession) -> CouponPoolPayload:
            pool = await service.create_pool(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(input.program_id, "programId"),
                name=input.name,
                low_stock_threshold=input.low_stock_threshold,
            )
            return CouponPoolPayload(coupon_pool=await _pool(session, pool))

        return await mutate(info, CouponPoolPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="Upload up to 1000 codes (3-64 characters of A-Z, 0-9, - and _; case-insensitive). "
        "Codes you already have are skipped. Rewards waiting for codes get them, oldest first.",
    )
    async def add_coupon_codes(self, info: Info, pool_id: strawberry.ID, codes: list[str]) -> AddCouponCodesPayload:
        async def work(session: AsyncSession) -> AddCouponCodesPayload:
            result = await service.add_codes(
                session, merchant_id=info.context.merchant_id, pool_id=validation.parse_id(pool_id, "poolId"), codes=codes
            )
            return AddCouponCodesPayload(
                coupon_pool=await _pool(session, result.pool), added=result.added, skipped=result.skipped
            )

        return await mutate(info, AddCouponCodesPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Use a coupon on an order; single use.")
    async def redeem_coupon(self, info: Info, input: RedeemCouponInput) -> RedeemCouponPayload:
        async def work(session: AsyncSession) -> RedeemCouponPayload:
            result = await service.redeem_coupon(
                session,
                merchant_id=info.context.merchant_id,
                code=input.code,
                order_id=input.order_id,
                order_amount=input.order_amount,
                currency=input.currency,
            )
            return RedeemCouponPayload(coupon=Coupon.from_model(result.coupon), replayed=result.replayed)

        return await mutate(info, RedeemCouponPayload, work)
