"""Pool administration: the merchant's uploaded codes, their stock, and the rewards waiting for one."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import text, validation
from app.db import insert_ignoring_conflicts, is_postgresql, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.referrals import programs
from app.rewards.coupons.issuing import discount_terms, give, lock_pool, pooled_count, take_from_pool, warn_if_low
from app.rewards.models import Coupon, CouponPool, CouponStatus, Reward, RewardRule, RewardStatus
from app.rewards.rules import spec_of

logger = logging.getLogger("app.rewards")
MAX_CODES_PER_CALL = 1000
MAX_LOW_STOCK_THRESHOLD = 1_000_000
_CODE = re.compile(r"^[A-Z0-9_-]{3,64}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PoolStock:
    available: int  # POOLED: uploaded, not handed out yet
    issued: int
    redeemed: int
    waiting_rewards: int  # AVAILABLE rewards of the pool's rules with no code yet
    low_stock_threshold: int

    @property
    def low_stock(self) -> bool:
        return self.available <= self.low_stock_threshold

    @property
    def exhausted(self) -> bool:
        return self.available == 0 or self.waiting_rewards > 0


@dataclass(frozen=True)
class CodesAdded:
    pool: CouponPool
    added: int
    skipped: int  # already in this call or already a coupon code of the merchant
    handed_out: int  # to rewards that were waiting


async def create_pool(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, name: str, low_stock_threshold: int = 10
) -> CouponPool:
    name = validation.required_text(name, "name", 200)
    threshold = validation.int_range(low_stock_threshold, "lowStockThreshold", 0, MAX_LOW_STOCK_THRESHOLD)
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    pool = CouponPool(
        id=new_id(),
        merchant_id=merchant_id,
        program_id=program_id,
        name=name,
        low_stock_threshold=10 if threshold is None else threshold,
        created_at=utcnow(),
    )
    session.add(pool)
    await session.flush()
    return pool


async def list_pools(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> list[CouponPool]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = select(CouponPool).where(CouponPool.merchant_id == merchant_id, CouponPool.program_id == program_id)
    return list((await session.scalars(query.order_by(CouponPool.id))).all())


def normalize_code(raw: str, field: str = "code") -> str:
    """The stored form of an uploaded code; refuses anything else, naming it."""
    shown = repr(raw if len(raw) <= 70 else raw[:67] + "...")  # repr: control characters stay escaped
    if _CONTROL_CHARS.search(raw):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"coupon code {shown} contains control characters")
    code = raw.strip()
    if not any(ch.isspace() for ch in code):  # a code with a space is refused, not guessed at
        code = text.typed_code(code) or code.upper()  # digits in any script, full-width forms
    if not _CODE.match(code):
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"coupon code {shown} must be 3-64 characters of A-Z, 0-9, - and _")
    return code


async def add_codes(session: AsyncSession, *, merchant_id: uuid.UUID, pool_id: uuid.UUID, codes: list[str]) -> CodesAdded:
    """Upload codes to a pool; codes the merchant already has are skipped, not errors.
    Then serve the rewards waiting for this pool, oldest first."""
    if len(codes) > MAX_CODES_PER_CALL:
        raise DomainError("codes", ErrorCode.INVALID_INPUT, f"at most {MAX_CODES_PER_CALL} codes per call")
    normalized = [normalize_code(code, "codes") for code in codes]
    unique = list(dict.fromkeys(normalized))
    # Held until commit: a grant finding the pool empty waits for us (see issue_for_reward).
    pool = await lock_pool(session, merchant_id, pool_id)
    if pool is None:
        raise NotFound("poolId", "coupon pool")
    added = 0
    if unique:
        now = utcnow()
        inserted = await session.scalars(
            insert_ignoring_conflicts(session, Coupon)
            .values(
                [
                    {
                        "id": new_id(),
                        "merchant_id": merchant_id,
                        "pool_id": pool.id,
                        "code": code,
                        "lookup_key": text.code_key(code),
                        "status": CouponStatus.POOLED,
                        "created_at": now,
                    }
                    for code in unique
                ]
            )
            .returning(Coupon.id)
        )
        added = len(inserted.all())
    handed_out = await _serve_waiting_rewards(session, pool)
    if handed_out:
        await warn_if_low(session, pool)
    return CodesAdded(pool=pool, added=added, skipped=len(codes) - added, handed_out=handed_out)


def _waiting_rewards_query(pool: CouponPool) -> Select[Reward]:
    return (
        select(Reward)
        .join(RewardRule, (RewardRule.id == Reward.rule_version_id) & (RewardRule.merchant_id == Reward.merchant_id))
        .where(
            Reward.merchant_id == pool.merchant_id,
            Reward.awaiting_coupon.is_(True),
            Reward.status == RewardStatus.AVAILABLE,
            RewardRule.spec["coupon_pool_id"].as_string() == str(pool.id),
        )
    )


async def _serve_waiting_rewards(session: AsyncSession, pool: CouponPool) -> int:
    now = utcnow()
    query = (
        _waiting_rewards_query(pool)
        .where(or_(Reward.expires_at.is_(None), Reward.expires_at > now))  # the expiry job ends the others
        .order_by(Reward.created_at, Reward.id)
        .limit(await pooled_count(session, pool))
    )
    if is_postgresql(session):
        query = query.with_for_update(of=Reward, skip_locked=True)  # one being refunded right now is skipped
    served = 0
    for reward in (await session.scalars(query)).all():
        coupon = await take_from_pool(session, pool.merchant_id, pool.id)
        if coupon is None:
            break
        rule = await session.get_one(RewardRule, reward.rule_version_id)
        give(coupon, reward, discount_terms(spec_of(rule), expires_at=reward.expires_at))
        await session.flush()
        served += 1
    return served


async def pool_stocks(session: AsyncSession, pools: list[CouponPool]) -> dict[uuid.UUID, PoolStock]:
    """The stock of each pool (pools of one merchant), in three queries whatever the number of pools."""
    if not pools:
        return {}
    counts: dict[tuple[uuid.UUID | None, CouponStatus], int] = {}  # (pool_id, status): pooled coupons have a pool
    rows = await session.execute(
        select(Coupon.pool_id, Coupon.status, func.count())
        .where(Coupon.merchant_id == pools[0].merchant_id, Coupon.pool_id.in_([p.id for p in pools]))  # one merchant's
        .group_by(Coupon.pool_id, Coupon.status)
    )
    for pool_id, status, count in rows:
        counts[(pool_id, status)] = count
    by_key = {str(p.id): p.id for p in pools}
    pool_key = RewardRule.spec["coupon_pool_id"].as_string()
    versions = await session.execute(
        select(RewardRule.id, pool_key).where(RewardRule.merchant_id == pools[0].merchant_id, pool_key.in_(list(by_key)))
    )
    pool_of_version = {version_id: by_key[key] for version_id, key in versions}
    waiting: dict[uuid.UUID, int] = {}
    if pool_of_version:
        waiting_rows = await session.execute(
            select(Reward.rule_version_id, func.count())
            .where(
                Reward.rule_version_id.in_(list(pool_of_version)),
                Reward.awaiting_coupon.is_(True),
                Reward.status == RewardStatus.AVAILABLE,
                or_(Reward.expires_at.is_(None), Reward.expires_at > utcnow()),  # as _serve_waiting_rewards
            )
            .group_by(Reward.rule_version_id)
        )
        for version_id, count in waiting_rows:
            pool_id = pool_of_version[version_id]
            waiting[pool_id] = waiting.get(pool_id, 0) + count
    return {
        p.id: PoolStock(
            available=counts.get((p.id, CouponStatus.POOLED), 0),
            issued=counts.get((p.id, CouponStatus.ISSUED), 0),
            redeemed=counts.get((p.id, CouponStatus.REDEEMED), 0),
            waiting_rewards=waiting.get(p.id, 0),
            low_stock_threshold=p.low_stock_threshold,
        )
        for p in pools
    }


async def pool_stock(session: AsyncSession, pool: CouponPool) -> PoolStock:
    return (await pool_stocks(session, [pool]))[pool.id]
