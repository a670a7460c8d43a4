"""Writing an action's rewards with their bookings and coupons (app/rewards/granting.py): on
PostgreSQL in one statement, on SQLite step by step. Every grant of the suite runs through it;
these are the cases a normal purchase never meets: a reward that meets an existing one on its
unique key (a concurrent retry won it), and a generated coupon code that is taken already."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db import create_session_factory, new_id
from app.rewards import granting
from app.rewards.coupons import issuing
from app.rewards.models import Coupon, LedgerTransaction, Reward, RewardStatus
from app.rewards.rules import RuleSpec
from tests.rewards.helpers import balance, credit_rule, ledger_problems, purchase
from tests.scenarios import PAY_AT_SIGNUP, active_program, code_for

DISCOUNT = {"name": "15% off", "trigger": "PURCHASE", "recipient": "REFEREE", "kind": "DISCOUNT", "percentBps": 1500}


async def shop(tenant, *rules: dict) -> str:
    from tests.rewards.helpers import create_rule

    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    for rule in rules:
        await create_rule(tenant, program["id"], **rule)
    return (await code_for(tenant, program["id"], "jane"))["code"]


async def test_a_reward_meeting_an_existing_one_is_left_out_and_nothing_of_it_is_booked(tenant, db):
    code = await shop(tenant, credit_rule(name="$10", amount=1000))
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    before = await balance(tenant, "jane")
    assert before["available"] + before["held"] == 1000

    async with create_session_factory(db)() as session:
        (existing,) = (await session.scalars(select(Reward).where(Reward.merchant_id == tenant.id))).all()
        row = {column.name: getattr(existing, column.key) for column in Reward.__table__.c}
        again = {**row, "id": new_id()}  # the same rule, referral, action and recipient: the unique key
        other = {**row, "id": new_id(), "rule_version_id": None, "amount": 123, "remaining": 123 if row["remaining"] else 0}
        granted = await granting.write_rewards(session, [again, other], [RuleSpec(), RuleSpec()])
        await session.commit()
        transactions = await session.scalar(
            select(func.count(LedgerTransaction.id)).where(LedgerTransaction.reward_id == again["id"])
        )

    assert [reward.id for reward, _spec in granted] == [other["id"]]
    assert transactions == 0
    after = await balance(tenant, "jane")
    assert after["available"] + after["held"] == 1000 + 123  # only the reward written was booked
    assert await ledger_problems(db) == []


async def test_a_generated_coupon_code_that_is_taken_already_is_drawn_again(tenant, db, monkeypatch):
    code = await shop(tenant, DISCOUNT)
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    async with create_session_factory(db)() as session:
        taken = await session.scalar(select(Coupon.code).where(Coupon.merchant_id == tenant.id))
    draws = [taken]
    draw = issuing.random_part
    monkeypatch.setattr(issuing, "random_part", lambda length: draws.pop() if draws else draw(length))

    await purchase(tenant, "carol", "order-2", 5000, referralCode=code)

    async with create_session_factory(db)() as session:
        rows = (
            await session.execute(
                select(Reward.status, Coupon.code)
                .join(Coupon, Coupon.reward_id == Reward.id)
                .where(Reward.merchant_id == tenant.id)
            )
        ).all()
    assert draws == []  # the taken code was drawn first
    assert len(rows) == 2 and len({code for _status, code in rows}) == 2
    assert {status for status, _code in rows} == {RewardStatus.AVAILABLE}


async def test_a_reward_reads_back_column_for_column_as_it_was_granted(tenant, db):
    """The grant passes its rows to PostgreSQL as JSON documents: every value must come back
    as it went in (times to the microsecond, ids read from the database, enums, text that JSON
    escapes, the largest amounts), and the ledger must book its amount."""
    code = await shop(tenant, credit_rule(name="$10", amount=1000))
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    at = datetime(2026, 11, 30, 18, 5, 7, 123456, tzinfo=UTC)
    async with create_session_factory(db)() as session:
        (existing,) = (await session.scalars(select(Reward).where(Reward.merchant_id == tenant.id))).all()
        row = {column.name: getattr(existing, column.key) for column in Reward.__table__.c}
        granted_row = {
            **row,
            "id": new_id(),
            "rule_version_id": None,
            "grant_key": 'manual "bonus" \\ é ☃ \n',
            "amount": 2**62,
            "remaining": 2**62,
            "milestone": 7,
            "hold_until": at,
            "clearance_due_at": at + timedelta(days=3),
            "expires_at": at + timedelta(days=90, microseconds=1),
            "review_hold": True,
        }
        granted = await granting.write_rewards(session, [granted_row], [RuleSpec()])
        await session.commit()
    assert [reward.id for reward, _spec in granted] == [granted_row["id"]]

    async with create_session_factory(db)() as session:
        stored = await session.get(Reward, granted_row["id"])
        assert stored is not None
        assert {column.name: getattr(stored, column.key) for column in Reward.__table__.c} == granted_row
    assert await ledger_problems(db) == []
