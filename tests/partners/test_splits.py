"""Commission splits: each sale's commission shared among the affiliate and co-producers, each
share its own reward, versioned, reversed in proportion by refunds, never losing or creating a cent."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select

from app.db import create_session_factory
from app.partners import sales as partner_sales
from app.partners.models import PartnerSale
from app.partners.splits import PartyShare, allocate, reversal_target
from app.referrals.models import Action
from app.unit_of_work import commit
from tests import graphql_ops as ops
from tests.conftest import system_connection
from tests.partners.helpers import (
    affiliate_program,
    books_balance,
    commission_balance,
    customer,
    enrol,
    ledger_rows,
    partner_rewards,
    refund,
    sale,
    sales,
    set_split,
)
from tests.scenarios import active_program

# --- the arithmetic, on its own -------------------------------------------------------------


def test_allocation_pays_exactly_the_floor_of_the_total_with_the_largest_remainders_first():
    parties = [PartyShare(key, bps) for key, bps in (("aff", 4000), ("a", 1000), ("b", 500))]  # type: ignore[arg-type]
    # 9999 * 40 % = 3999.6, * 10 % = 999.9, * 5 % = 499.95: floors 3999 + 999 + 499 = 5497 of 5499.45
    assert allocate(9999, parties) == [3999, 1000, 500]  # B (.95) and A (.9) get the two cents, not the affiliate (.6)
    ties = [PartyShare(key, 3333) for key in ("x", "y", "z")]  # type: ignore[arg-type]
    assert allocate(1, ties) == [0, 0, 0]  # 0.9999 of a cent stays with the merchant
    assert allocate(2, ties) == [1, 0, 0]  # three equal remainders: the first in the split's order


def test_allocation_and_reversals_conserve_every_cent_over_many_odd_amounts_and_partial_refunds():
    rng = random.Random(15)
    for _ in range(3000):
        count = rng.randint(1, 5)
        bps = [rng.randint(1, 10_000 // count) for _ in range(count)]
        parties = [PartyShare(i, b) for i, b in enumerate(bps)]  # type: ignore[arg-type]
        amount = rng.randint(0, 10**9) | 1
        granted = allocate(amount, parties)
        assert sum(granted) == amount * sum(bps) // 10_000
        assert all(abs(g * 10_000 - amount * b) < 10_000 * 2 for g, b in zip(granted, bps, strict=True))  # within a cent of exact
        reversed_ = [0] * count
        refunded = 0
        while refunded < amount:
            refunded = min(amount, refunded + rng.randint(1, amount))
            for i, g in enumerate(granted):
                delta = reversal_target(g, refunded, amount) - reversed_[i]
                assert delta >= 0
                reversed_[i] += delta
                assert reversed_[i] <= g
        assert reversed_ == granted  # a full refund, in however many parts, takes back exactly what was paid


# --- through the API --------------------------------------------------------------------------


async def split_program(tenant) -> tuple[dict, dict]:
    program = await affiliate_program(tenant, rule=None)
    ann = await enrol(tenant, program["id"], "ann")
    for co_producer in ("carla", "dan"):
        await customer(tenant, co_producer)
    payload = await set_split(tenant, program["id"], [("carla", 1000), ("dan", 500)], affiliateBps=4000)
    assert payload["userErrors"] == []
    return program, ann


async def test_a_sale_pays_every_party_its_share_as_its_own_reward(tenant):
    program, ann = await split_program(tenant)
    await sale(tenant, "bob", code=ann["code"], amount=9999, key="order-1")

    (only,) = await sales(tenant, program["id"])
    assert only["status"] == "EARNED" and only["commission"] == 5499
    assert [(s["customerExternalId"], s["role"], s["shareBps"], s["amount"]) for s in only["shares"]] == [
        ("ann", "AFFILIATE", 4000, 3999),
        ("carla", "CO_PRODUCER", 1000, 1000),
        ("dan", "CO_PRODUCER", 500, 500),
    ]
    assert sorted((who, amount) for who, amount, _reversed, _status in await partner_rewards(tenant)) == [
        ("ann", 3999),
        ("carla", 1000),
        ("dan", 500),
    ]
    grants = await ledger_rows(tenant, "GRANT")  # the reward grant path: one balanced transaction per reward
    assert len(grants) == 3 and all(entries == 2 and total == 0 for _, entries, total in grants)
    assert [await commission_balance(tenant, who) for who in ("ann", "carla", "dan")] == [3999, 1000, 500]
    await books_balance(tenant)


async def test_partial_refunds_reverse_each_party_in_proportion_and_the_last_takes_back_the_rest(tenant):
    program, ann = await split_program(tenant)
    await sale(tenant, "bob", code=ann["code"], amount=9999, key="order-1")
    await refund(tenant, "bob", "order-1", 3333, "refund-1")
    (after_one,) = await sales(tenant, program["id"])
    assert [s["reversedAmount"] for s in after_one["shares"]] == [3999 * 3333 // 9999, 1000 * 3333 // 9999, 500 * 3333 // 9999]
    await refund(tenant, "bob", "order-1", 3333, "refund-2")
    await refund(tenant, "bob", "order-1", 3333, "refund-2")  # a retry of the same refund reverses nothing more
    await refund(tenant, "bob", "order-1", None, "refund-3")  # the rest of the order

    (final,) = await sales(tenant, program["id"])
    assert final["refundedAmount"] == 9999
    assert [(s["reversedAmount"], s["netAmount"]) for s in final["shares"]] == [(3999, 0), (1000, 0), (500, 0)]
    assert sorted((who, amount, reversed_) for who, amount, reversed_, _status in await partner_rewards(tenant)) == [
        ("ann", 3999, 3999),
        ("carla", 1000, 1000),
        ("dan", 500, 500),
    ]
    reversals = await ledger_rows(tenant, "VOID") + await ledger_rows(tenant, "REVERSAL")
    assert len(reversals) == 9 and all(total == 0 for _, _, total in reversals)  # 3 refunds x 3 parties
    assert [await commission_balance(tenant, who) for who in ("ann", "carla", "dan")] == [0, 0, 0]
    await refund(tenant, "bob", "order-1", 500, "refund-4")  # more than the order: nothing left to take back
    assert [await commission_balance(tenant, who) for who in ("ann", "carla", "dan")] == [0, 0, 0]
    await books_balance(tenant)


async def test_odd_amounts_with_several_partial_refunds_conserve_every_cent_in_the_books(tenant):
    program, ann = await split_program(tenant)
    rng = random.Random(7)
    for n in range(4):
        amount = rng.randint(101, 99_999) | 1
        order = f"odd-{n}"
        await sale(tenant, f"buyer-{n}", code=ann["code"], amount=amount, key=order)
        for r in range(3):
            await refund(tenant, f"buyer-{n}", order, rng.randint(1, amount // 2), f"{order}-refund-{r}")
        (found,) = await sales(tenant, program["id"], order_id=order)
        for share in found["shares"]:
            assert share["reversedAmount"] == share["amount"] * min(found["refundedAmount"], amount) // amount
            assert share["netAmount"] + share["reversedAmount"] == share["amount"]
        assert sum(s["amount"] for s in found["shares"]) == found["commission"] == amount * 5500 // 10_000
    everything = await sales(tenant, program["id"])
    for who in ("ann", "carla", "dan"):
        owed = sum(s["netAmount"] for found in everything for s in found["shares"] if s["customerExternalId"] == who)
        assert await commission_balance(tenant, who) == owed
    await books_balance(tenant)


async def test_a_new_split_version_supersedes_the_old_and_each_sale_keeps_the_version_it_was_paid_under(tenant):
    program, ann = await split_program(tenant)
    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="before")
    second = await set_split(tenant, program["id"], [("carla", 2000)], affiliateBps=3000)
    await sale(tenant, "cid", code=ann["code"], amount=10_000, key="after")

    history = (await tenant.gql(ops.COMMISSION_SPLIT_HISTORY, {"programId": program["id"]}))["commissionSplitHistory"]
    assert [(v["version"], v["supersededAt"] is None) for v in history] == [(1, False), (2, True)]
    by_order = {s["orderId"]: s for s in await sales(tenant, program["id"])}
    assert by_order["before"]["splitVersionId"] == history[0]["id"] and by_order["before"]["commission"] == 5500
    assert by_order["after"]["splitVersionId"] == second["split"]["id"] and by_order["after"]["commission"] == 5000


async def test_a_skus_own_split_applies_to_sales_of_that_sku(tenant):
    program, ann = await split_program(tenant)
    sku = await set_split(tenant, program["id"], [("dan", 3000)], affiliateBps=2000, sku="EBOOK-1")
    assert sku["userErrors"] == [] and sku["split"]["sku"] == "EBOOK-1"
    await sale(tenant, "bob", code=ann["code"], amount=10_000, key="ebook", metadata={"sku": "EBOOK-1"})
    await sale(tenant, "cid", code=ann["code"], amount=10_000, key="other", metadata={"sku": "MUG"})
    by_order = {s["orderId"]: s for s in await sales(tenant, program["id"])}
    assert [(s["customerExternalId"], s["amount"]) for s in by_order["ebook"]["shares"]] == [("ann", 2000), ("dan", 3000)]
    assert by_order["other"]["commission"] == 5500  # the program's split


async def test_invalid_splits_are_refused_with_the_field_at_fault_and_nothing_written(tenant, other_tenant):
    program, _ann = await split_program(tenant)
    await customer(other_tenant, "eve")
    cases = [
        ([("carla", 6000), ("dan", 1000)], {"affiliateBps": 4000}, "parties", "INVALID_AMOUNT"),
        ([("carla", 0)], {}, "parties.0.shareBps", "INVALID_INPUT"),
        ([("carla", 100), ("carla", 100)], {}, "parties.1.customerExternalId", "INVALID_INPUT"),
        ([("nobody", 100)], {}, "parties.0.customerExternalId", "NOT_FOUND"),
        ([("eve", 100)], {}, "parties.0.customerExternalId", "NOT_FOUND"),  # another merchant's customer
        ([("carla", 100)], {"sku": "no spaces please"}, "sku", "INVALID_INPUT"),
    ]
    for parties, extra, field, code in cases:
        payload = await set_split(tenant, program["id"], parties, **extra)
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], (parties, extra)
    plain = await active_program(tenant)
    payload = await set_split(tenant, plain["id"], [("carla", 100)])
    assert payload["userErrors"][0]["field"] == "programId"
    history = (await tenant.gql(ops.COMMISSION_SPLIT_HISTORY, {"programId": program["id"]}))["commissionSplitHistory"]
    assert len(history) == 1


async def test_concurrent_duplicate_sales_and_duplicate_job_runs_pay_once(tenant):
    program, ann = await split_program(tenant)
    results = await asyncio.gather(
        *[sale(tenant, "bob", code=ann["code"], amount=9999, key="dup-order", run=False) for _ in range(5)]
    )
    assert sum(not r["replayed"] for r in results) == 1
    async with system_connection(tenant.engine) as connection:
        action_id = (await connection.execute(select(Action.id).where(Action.idempotency_key == "dup-order"))).scalar_one()
    factory = create_session_factory(tenant.engine)

    async def settle() -> None:
        async with factory() as session:
            await commit(session, lambda s: partner_sales.settle_action(s, action_id=action_id))

    await asyncio.gather(settle(), settle(), settle())
    await refund(tenant, "bob", "dup-order", 5000, "dup-refund", run=False)
    async with system_connection(tenant.engine) as connection:
        refund_id = (await connection.execute(select(Action.id).where(Action.idempotency_key == "dup-refund"))).scalar_one()

    async def reverse() -> None:
        async with factory() as session:
            await commit(session, lambda s: partner_sales.settle_action(s, action_id=refund_id))

    await asyncio.gather(reverse(), reverse())
    from tests.payouts.helpers import run_jobs

    await run_jobs(tenant.engine)  # the outbox's own runs of both jobs find them done

    async with system_connection(tenant.engine) as connection:
        count = (await connection.execute(select(func.count(PartnerSale.id)))).scalar_one()
    assert count == 1
    assert sorted((who, amount, reversed_) for who, amount, reversed_, _status in await partner_rewards(tenant)) == [
        ("ann", 3999, 3999 * 5000 // 9999),
        ("carla", 1000, 1000 * 5000 // 9999),
        ("dan", 500, 500 * 5000 // 9999),
    ]
    assert len(await ledger_rows(tenant, "VOID") + await ledger_rows(tenant, "REVERSAL")) == 3  # once per party
    assert await commission_balance(tenant, "ann") == 3999 - 3999 * 5000 // 9999
    await books_balance(tenant)
