"""Purchases of one program never wait for each other: no row that every grant updates (a
program-wide balance, a counter). Program totals are derived from the append-only ledger.
PostgreSQL only: SQLite serialises all writers by design."""

from __future__ import annotations

import asyncio

import pytest

from app.actions import service as actions
from app.db import create_session_factory, scope_to_merchant
from tests.rewards.helpers import assert_ledger_consistent, create_rule, record
from tests.scenarios import active_program, code_for
from tests.schema.test_query_count import FIVE_RULES


async def program_with_referrers(tenant, count: int) -> list[str]:
    program = await active_program(tenant)
    for rule in FIVE_RULES:
        await create_rule(tenant, program["id"], **rule)
    return [(await code_for(tenant, program["id"], f"referrer-{n}"))["code"] for n in range(count)]


def referred_purchase(code: str, n: int) -> dict:
    return dict(
        type="PURCHASE",
        customerExternalId=f"friend-{n}",
        idempotencyKey=f"order-{n}",
        orderId=f"order-{n}",
        amount=5000,
        currency="USD",
        referralCode=code,
        context={
            "email": f"friend{n}@example.com",
            "deviceId": f"device-{n}",
            "ip": f"10.0.{n}.1",
            "paymentFingerprint": f"card-{n}",
        },
    )


@pytest.mark.postgresql_only
async def test_a_purchase_goes_through_while_another_purchase_of_the_program_holds_its_locks(tenant, db, backend):
    warm_code, first_code, second_code = await program_with_referrers(tenant, 3)
    # The program's ledger accounts are created by its first grant (a second creator waits for the
    # first to commit, once): a running program has them.
    assert len((await record(tenant, **referred_purchase(warm_code, 2)))["rewards"]) == 4

    async with create_session_factory(db)() as open_transaction:
        await scope_to_merchant(open_transaction, tenant.id)
        recorded = await actions.record_action(
            open_transaction,
            merchant_id=tenant.id,
            data=actions.ActionInput(
                type="PURCHASE",
                customer_external_id="friend-0",
                idempotency_key="order-0",
                order_id="order-0",
                amount=5000,
                currency="USD",
                referral_code=first_code,
            ),
        )
        assert len(recorded.rewards) == 4  # granted, booked, not committed: every lock it takes is held

        # Any row both purchases wrote (a program balance, a counter) would make this one wait.
        # Any row both purchases wrote (a program balance, a counter) would make this one wait.
        second = asyncio.ensure_future(record(tenant, **referred_purchase(second_code, 1)))
        done, _ = await asyncio.wait({second}, timeout=15)
        if not done:  # let it finish (it waits for our locks), then fail
            await open_transaction.rollback()
            await second
            pytest.fail("a purchase waited for another purchase of the same program")

        assert second.result()["userErrors"] == [] and len(second.result()["rewards"]) == 4
        await open_transaction.commit()
    await assert_ledger_consistent(db)


@pytest.mark.postgresql_only
async def test_thirty_two_concurrent_referred_purchases_of_one_program_are_all_granted(tenant, db, backend):
    codes = await program_with_referrers(tenant, 32)

    results = await asyncio.gather(*(record(tenant, **referred_purchase(code, n)) for n, code in enumerate(codes)))

    assert [r["userErrors"] for r in results] == [[]] * 32
    assert [len(r["rewards"]) for r in results] == [4] * 32
    await assert_ledger_consistent(db)
