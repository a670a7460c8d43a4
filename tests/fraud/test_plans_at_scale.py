"""The fraud check's first read stays a handful of index lookups for the referrer at hand when
PostgreSQL's statistics are behind: rows written since the last ANALYZE lie past its histogram
(an ascending key), so a "last day" window looks empty to the planner. Before, it then read the
program's referrals of the window, and the merchant's actions of the window once per reward of
the referrer, to find a few rows of one referrer: thousands of rows per purchase in a busy shop."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import event, text

from app.db import new_id
from tests import scenarios
from tests.rewards.helpers import create_rule, credit_rule

pytestmark = pytest.mark.postgresql_only(reason="PostgreSQL's planner and its statistics")

BUSY = 1500  # another referrer's referrals and purchases in the last hour


async def _busy_hour_of_another_referrer(owner_engine, merchant_id: str, program_id: str, code: str, minutes_ago: int) -> None:
    """BUSY referees of another referrer, each with a purchase, written as a bulk import would."""
    batch = uuid.uuid4().hex[:8]
    async with owner_engine.begin() as connection:
        params = {"m": merchant_id, "p": program_id, "code": code, "batch": f"bulk-{batch}-", "n": BUSY, "ago": minutes_ago}
        await connection.execute(
            text(
                "INSERT INTO customers (id, merchant_id, external_id, created_at, updated_at) "
                "SELECT gen_random_uuid(), :m, :batch || g, now(), now() FROM generate_series(1, :n) g"
            ),
            params,
        )
        await connection.execute(
            text(
                "INSERT INTO referrals (id, merchant_id, program_id, referrer_id, referee_id, code_id, source, status, "
                "created_at, referred_at, qualified_at) "
                "SELECT gen_random_uuid(), :m, :p, rc.customer_id, c.id, rc.id, 'CODE', 'QUALIFIED', "
                "now() - make_interval(mins => :ago), now() - make_interval(mins => :ago), now() - make_interval(mins => :ago) "
                "FROM customers c, referral_codes rc WHERE c.merchant_id = :m AND c.external_id LIKE :batch || '%' "
                "AND rc.merchant_id = :m AND rc.code = :code"
            ),
            params,
        )
        await connection.execute(
            text(
                "INSERT INTO actions (id, merchant_id, customer_id, program_id, type, idempotency_key, request_hash, "
                "amount, currency, order_id, occurred_at, created_at, attribution_status) "
                "SELECT gen_random_uuid(), :m, c.id, :p, 'PURCHASE', c.external_id, 'bulk', 5000, 'USD', c.external_id, "
                "now() - make_interval(mins => :ago), now(), 'NONE' "
                "FROM customers c WHERE c.merchant_id = :m AND c.external_id LIKE :batch || '%'"
            ),
            params,
        )


async def _referred_purchase(tenant, code: str, n: int) -> dict[str, Any]:
    """A new referee's purchase with `code`, from a device and address of their own."""
    key = f"{new_id()}"
    done = await scenarios.record(
        tenant,
        type="PURCHASE",
        customerExternalId=f"referee-{n}-{key}",
        idempotencyKey=key,
        orderId=key,
        amount=5000,
        currency="USD",
        referralCode=code,
        context={"email": f"r{n}-{key}@example.com", "ip": f"10.0.{n}.1", "deviceId": f"d-{key}"},
    )
    assert done["userErrors"] == [] and done["referral"] is not None, done
    return done


async def _plan_of(owner_engine, captured: list[tuple[str, Any]]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the one statement captured, with its parameters."""
    assert len(captured) == 1
    statement, parameters = captured[0]
    async with owner_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        explained = await raw.driver_connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *parameters)
        await connection.rollback()
    return (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]


def _rows_thrown_away(plan: dict[str, Any]) -> int:
    """Rows a plan read and then dropped by a filter, over all its nodes."""
    own = plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Join Filter", 0)
    return own * plan.get("Actual Loops", 1) + sum(_rows_thrown_away(child) for child in plan.get("Plans", []))


async def test_the_first_read_finds_the_referrers_rows_by_their_own_indexes(backend, tenant, db, owner_engine):
    program = await scenarios.active_program(tenant)
    await create_rule(tenant, program["id"], **credit_rule())
    ours = (await scenarios.code_for(tenant, program["id"], "ref-a"))["code"]
    busy = (await scenarios.code_for(tenant, program["id"], "ref-b"))["code"]

    async def purchase(n: int) -> None:
        await _referred_purchase(tenant, ours, n)

    # Yesterday the shop was quiet, and its statistics were taken then.
    await _busy_hour_of_another_referrer(owner_engine, str(tenant.id), program["id"], busy, minutes_ago=26 * 60)
    async with owner_engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    # Today's hour: the other referrer is busy, ours made two sales; the third is checked.
    await _busy_hour_of_another_referrer(owner_engine, str(tenant.id), program["id"], busy, minutes_ago=30)
    await purchase(1)
    await purchase(2)

    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "AS part" in statement:  # the check's first read (app.fraud.case._prefetch_statement)
            captured.append((statement, parameters))

    event.listen(db.sync_engine, "before_cursor_execute", capture)
    try:
        await purchase(3)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", capture)
    plan = await _plan_of(owner_engine, captured)
    assert _rows_thrown_away(plan) < 100, json.dumps(plan)[:4000]


async def _rewards_of_the_busy_referrer(owner_engine, merchant_id: str, status: str) -> None:
    """A CREDIT reward in `status` to each side of every bulk-imported referral that has none yet."""
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO rewards (id, merchant_id, program_id, rule_id, rule_version_id, referral_id, trigger_action_id, "
                "source, recipient, customer_id, kind, amount, unit, remaining, reversed_amount, status, review_hold, "
                "clearance_hold, leaked_amount, awaiting_coupon, created_at) "
                "SELECT gen_random_uuid(), r.merchant_id, r.program_id, rr.rule_id, rr.id, r.id, a.id, 'RULE', side.recipient, "
                "CASE side.recipient WHEN 'REFERRER' THEN r.referrer_id ELSE r.referee_id END, 'CREDIT', 1000, 'USD', 0, 0, "
                "CAST(:status AS VARCHAR), false, CAST(:status AS VARCHAR) = 'HELD', 0, false, now() "
                "FROM referrals r JOIN actions a ON a.customer_id = r.referee_id "
                "JOIN customers c ON c.id = r.referee_id AND c.external_id LIKE 'bulk-%' "
                "CROSS JOIN (SELECT id, rule_id FROM reward_rules WHERE merchant_id = :m LIMIT 1) rr "
                "CROSS JOIN (VALUES ('REFERRER'), ('REFEREE')) AS side(recipient) "
                "WHERE r.merchant_id = :m AND NOT EXISTS (SELECT 1 FROM rewards x WHERE x.referral_id = r.id)"
            ),
            {"m": merchant_id, "status": status},
        )


async def test_a_review_finds_the_referrals_held_rewards_by_the_referral(backend, tenant, db, owner_engine):
    """Every new reward starts HELD (until its referral is cleared). With statistics taken while
    few were, the index on the status looked the more selective, and putting one referral in
    review read every HELD reward of the shop: once per referral in a burst of reviews."""
    from app.db import create_session_factory
    from app.rewards import lifecycle

    program = await scenarios.active_program(tenant)
    await create_rule(tenant, program["id"], **credit_rule())
    ours = (await scenarios.code_for(tenant, program["id"], "ref-a"))["code"]
    busy = (await scenarios.code_for(tenant, program["id"], "ref-b"))["code"]
    done = await _referred_purchase(tenant, ours, 9)
    referral_id = uuid.UUID(done["referral"]["id"])

    # Last month's rewards, all spendable by now, when the statistics were taken; then today's, HELD.
    await _busy_hour_of_another_referrer(owner_engine, str(tenant.id), program["id"], busy, minutes_ago=40 * 24 * 60)
    await _rewards_of_the_busy_referrer(owner_engine, str(tenant.id), "AVAILABLE")
    async with owner_engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    await _busy_hour_of_another_referrer(owner_engine, str(tenant.id), program["id"], busy, minutes_ago=30)
    await _rewards_of_the_busy_referrer(owner_engine, str(tenant.id), "HELD")

    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().startswith("SELECT rewards.id") and "referral_id" in statement:
            captured.append((statement, parameters))

    event.listen(db.sync_engine, "before_cursor_execute", capture)
    try:
        async with create_session_factory(db)() as session:
            assert await lifecycle.hold_for_review(session, [referral_id], merchant_id=tenant.id) == 1
            await session.rollback()
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", capture)
    plan = await _plan_of(owner_engine, captured)
    assert _rows_thrown_away(plan) < 100, json.dumps(plan)[:4000]
