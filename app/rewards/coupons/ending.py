"""A reward's coupon ends with it: voided when the reward is voided or reversed, expired with it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.rewards.models import Coupon, CouponStatus, Reward


async def coupon_of(session: AsyncSession, reward: Reward) -> Coupon | None:
    return await session.scalar(select(Coupon).where(Coupon.merchant_id == reward.merchant_id, Coupon.reward_id == reward.id))


async def void_for_reward(session: AsyncSession, reward: Reward) -> None:
    await _end(session, reward, CouponStatus.VOIDED)


async def expire_for_reward(session: AsyncSession, reward: Reward) -> None:
    await _end(session, reward, CouponStatus.EXPIRED)


async def _end(session: AsyncSession, reward: Reward, status: CouponStatus) -> None:
    """An unused coupon stops working; a used one stays used. A reward still waiting for a pool's
    code stops waiting."""
    coupon = await coupon_of(session, reward)
    if coupon is not None and coupon.status == CouponStatus.ISSUED:
        coupon.status = status
    reward.awaiting_coupon = False
    await session.flush()
