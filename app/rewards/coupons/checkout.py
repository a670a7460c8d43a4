"""Checkout: `validate_coupon` (a preview) and `redeem_coupon` (single use, idempotent by the order id),
with codes matched the way people type them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, text, validation
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.rewards.models import Coupon, CouponStatus, Reward, RewardStatus


@dataclass(frozen=True)
class CouponCheck:
    valid: bool
    reason: ErrorCode | None
    coupon: Coupon | None
    field: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class CouponRedemption:
    coupon: Coupon
    replayed: bool


def _lookup_code(code: str) -> str:
    code = validation.required_text(code, "code", 255)
    return text.typed_code(code, 255) or code.upper()


def _order_terms(order_amount: int | None, currency: str | None) -> tuple[int | None, str | None]:
    if order_amount is not None and (
        isinstance(order_amount, bool) or not isinstance(order_amount, int) or not 0 <= order_amount <= money.MAX_AMOUNT
    ):
        raise DomainError(
            "orderAmount",
            ErrorCode.INVALID_AMOUNT,
            f"orderAmount must be a whole number of minor units between 0 and {money.MAX_AMOUNT}",
        )
    return order_amount, money.currency(currency, "currency")


def discount_on(coupon: Coupon, order_amount: int | None, currency: str | None) -> int | None:
    """What the coupon takes off an order of this amount, in the order's minor units: a fixed
    amount at most the order, a percentage rounded down; None when the order's amount or
    currency is unknown (or a fixed amount in another currency)."""
    if order_amount is None or currency is None:
        return None
    if coupon.percent_off_bps is not None:
        return order_amount * coupon.percent_off_bps // 10_000
    if coupon.amount_off is not None and coupon.currency == currency:
        return min(coupon.amount_off, order_amount)
    return None


def check(coupon: Coupon | None, *, order_amount: int | None, currency: str | None, now: datetime) -> CouponCheck:
    """Whether the coupon can be used on this order. A term the caller leaves out (amount,
    currency) is not checked here; `redeem_coupon` requires the ones the coupon depends on."""

    def refuse(reason: ErrorCode, message: str, field: str = "code") -> CouponCheck:
        return CouponCheck(valid=False, reason=reason, coupon=coupon, field=field, message=message)

    if coupon is None:
        return refuse(ErrorCode.COUPON_NOT_FOUND, "coupon not found")
    status = CouponStatus(coupon.status)
    if status is CouponStatus.REDEEMED:
        return refuse(ErrorCode.COUPON_ALREADY_REDEEMED, "the coupon was already redeemed")
    if status is CouponStatus.EXPIRED or (
        status is CouponStatus.ISSUED and coupon.expires_at is not None and coupon.expires_at <= now
    ):
        return refuse(ErrorCode.COUPON_EXPIRED, "the coupon has expired")
    if status is not CouponStatus.ISSUED:  # POOLED (not given to anyone) or VOIDED
        return refuse(ErrorCode.COUPON_NOT_ACTIVE, "the coupon is not active")
    if coupon.currency is not None and currency is not None and currency != coupon.currency:
        return refuse(ErrorCode.CURRENCY_MISMATCH, f"the coupon is in {coupon.currency}", "currency")
    if coupon.min_order_amount is not None and order_amount is not None and order_amount < coupon.min_order_amount:
        return refuse(
            ErrorCode.ORDER_BELOW_MINIMUM,
            f"the order must be at least {coupon.min_order_amount}{' ' + coupon.currency if coupon.currency else ''}",
            "orderAmount",
        )
    return CouponCheck(valid=True, reason=None, coupon=coupon)


async def _find(session: AsyncSession, merchant_id: uuid.UUID, code: str) -> Coupon | None:
    """The coupon exactly as typed, else the only one with its key (one indexed query)."""
    found = list(
        (
            await session.scalars(
                select(Coupon)
                .where(Coupon.merchant_id == merchant_id, or_(Coupon.code == code, Coupon.lookup_key == text.code_key(code)))
                .limit(3)
            )
        ).all()
    )
    exact = [c for c in found if c.code == code]
    return exact[0] if exact else (found[0] if len(found) == 1 else None)


async def _lock(session: AsyncSession, coupon: Coupon) -> Coupon | None:
    return await session.scalar(
        select(Coupon).where(Coupon.id == coupon.id).with_for_update().execution_options(populate_existing=True)
    )


async def validate_coupon(
    session: AsyncSession, *, merchant_id: uuid.UUID, code: str, order_amount: int | None = None, currency: str | None = None
) -> CouponCheck:
    """A preview for the checkout page: nothing is written."""
    code = _lookup_code(code)
    order_amount, currency = _order_terms(order_amount, currency)
    coupon = await _find(session, merchant_id, code)
    return check(coupon, order_amount=order_amount, currency=currency, now=utcnow())


async def redeem_coupon(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    code: str,
    order_id: str,
    order_amount: int | None = None,
    currency: str | None = None,
) -> CouponRedemption:
    """Use a coupon on an order, once. The same order again returns the first result
    (`replayed`); another order gets COUPON_ALREADY_REDEEMED. Of concurrent redemptions of
    one code exactly one succeeds: the reward, then the coupon row, is locked for the check
    and the write (the order refunds and expiry lock them in, so they cannot deadlock)."""
    code = _lookup_code(code)
    order_id = validation.required_text(order_id, "orderId", 255)
    order_amount, currency = _order_terms(order_amount, currency)
    coupon = await _find(session, merchant_id, code)
    reward = None
    if coupon is not None and coupon.reward_id is not None:
        reward = await session.scalar(
            select(Reward).where(Reward.id == coupon.reward_id).with_for_update().execution_options(populate_existing=True)
        )
    if coupon is not None:
        coupon = await _lock(session, coupon)
    if coupon is not None and coupon.status == CouponStatus.REDEEMED and coupon.redeemed_order_id == order_id:
        return CouponRedemption(coupon=coupon, replayed=True)
    result = check(coupon, order_amount=order_amount, currency=currency, now=utcnow())
    if not result.valid:
        assert result.reason is not None and result.message is not None
        raise DomainError(result.field, result.reason, result.message)
    assert coupon is not None
    if coupon.amount_off is not None and currency is None:
        raise DomainError("currency", ErrorCode.REQUIRED, "currency is required for a fixed-amount coupon")
    if coupon.min_order_amount is not None and order_amount is None:
        raise DomainError("orderAmount", ErrorCode.REQUIRED, "orderAmount is required: the coupon has a minimum order")
    now = utcnow()
    coupon.status = CouponStatus.REDEEMED
    coupon.redeemed_order_id = order_id
    coupon.redeemed_at = now
    coupon.redeemed_discount = discount_on(coupon, order_amount, currency)
    coupon.redeemed_currency = currency if coupon.redeemed_discount is not None else None
    if reward is not None and reward.status == RewardStatus.AVAILABLE:
        reward.status = RewardStatus.REDEEMED
        reward.ended_at = now
        reward.end_reason = f"coupon redeemed on order {order_id}"[:200]
    await session.flush()
    return CouponRedemption(coupon=coupon, replayed=False)
