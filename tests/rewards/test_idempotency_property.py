"""Property: any interleaving of duplicated and retried requests yields the same ledger as
applying each request exactly once.

Hypothesis draws a small scenario (referees signing up, purchasing, orders refunded in part
or in full, credit spent at checkout, held rewards released) with an idempotency key per
request, and a set of retries: each one the same request with the same key, sent again at
any later point. The scenario runs twice, each time for a fresh merchant: once with every
request exactly once, in order; once with the retries interleaved. Balances, rewards and
the sequence of ledger transactions must be identical, and `ledger verify` clean.

A request the API refused (a redemption over the balance) is not retried: the caller saw a
definitive answer, and nothing was recorded under its key, so a later retry would be a new
request. Releases are the scheduler's work, not keyed requests, and are not duplicated.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import create_session_factory
from app.referrals.models import Action, Customer
from app.rewards.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Reward,
    RewardRule,
)
from tests.conftest import create_tenant
from tests.rewards.helpers import (
    create_rule,
    credit_rule,
    days,
    ledger_problems,
    record,
    redeem_credit,
    release_due,
)
from tests.scenarios import active_program, code_for

REFEREES = ("amy", "ben", "cat")

RULES = [
    credit_rule(name="Credit"),
    credit_rule(
        name="Commission",
        kind="COMMISSION",
        amount=None,
        currency=None,
        percentBps=1000,
        recurringMonths=12,
        conditions={"holdDays": 14},
    ),
    credit_rule(name="Referee credit", recipient="REFEREE", amount=300, conditions={"holdDays": 14}),
    credit_rule(name="Points", trigger="SIGNUP", recipient="REFEREE", kind="POINTS", amount=50, currency=None),
    credit_rule(name="Milestone", amount=700, conditions={"milestone": 2}),
]

steps = st.one_of(
    st.tuples(st.just("signup"), st.sampled_from(REFEREES)),
    st.tuples(st.just("purchase"), st.sampled_from(REFEREES), st.integers(100, 20000)),
    # the n-th purchase's order (maybe not placed yet, or never), refunded in full (None) or in part
    st.tuples(st.just("refund"), st.integers(0, 4), st.one_of(st.none(), st.integers(1, 12000))),
    st.tuples(st.just("redeem"), st.integers(1, 2500)),
    st.tuples(st.just("release")),
)


@st.composite
def scenarios(draw) -> tuple[list[tuple], list[tuple[int, int]]]:
    """Steps, and retries as (step, after): step `step` is sent again after step `after`."""
    plan = draw(st.lists(steps, min_size=1, max_size=10))
    keyed = [i for i, step in enumerate(plan) if step[0] != "release"]
    if not keyed:
        return plan, []
    retries = draw(st.lists(st.tuples(st.sampled_from(keyed), st.integers(0, len(plan) - 1)), max_size=12))
    return plan, [(i, max(i, after)) for i, after in retries]  # never before the original


class Shop:
    def __init__(self, tenant, code: str, plan: list[tuple]) -> None:
        self.tenant, self.code, self.plan = tenant, code, plan
        self.orders = [f"order-{i}" for i, step in enumerate(plan) if step[0] == "purchase"]
        self.buyers = {f"order-{i}": step[1] for i, step in enumerate(plan) if step[0] == "purchase"}

    async def send(self, i: int) -> dict[str, Any]:
        step, key = self.plan[i], f"request-{i}"
        if step[0] == "signup":
            return await record(
                self.tenant, type="SIGNUP", customerExternalId=step[1], idempotencyKey=key, referralCode=self.code
            )
        if step[0] == "purchase":
            return await record(
                self.tenant,
                type="PURCHASE",
                customerExternalId=step[1],
                idempotencyKey=key,
                orderId=f"order-{i}",
                amount=step[2],
                currency="USD",
                referralCode=self.code,
            )
        if step[0] == "refund":
            order = self.orders[step[1]] if step[1] < len(self.orders) else f"no-order-{step[1]}"
            money = {} if step[2] is None else {"amount": step[2], "currency": "USD"}
            return await record(
                self.tenant,
                type="REFUND",
                customerExternalId=self.buyers.get(order, "amy"),
                idempotencyKey=key,
                orderId=order,
                **money,
            )
        assert step[0] == "redeem"
        return await redeem_credit(self.tenant, "jane", step[1], key)


def same_answer(first: dict[str, Any], retry: dict[str, Any]) -> None:
    """A retry answers what the first request did, and says it was a replay."""
    assert retry["userErrors"] == [] and retry["replayed"] is True, retry
    if "transactionId" in first:
        assert (retry["transactionId"], retry["amount"]) == (first["transactionId"], first["amount"])
        return
    assert retry["action"]["id"] == first["action"]["id"]
    assert sorted(r["id"] for r in retry["rewards"]) == sorted(r["id"] for r in first["rewards"])
    assert (retry["refund"] is None) == (first["refund"] is None)
    if first["refund"] is not None:
        assert retry["refund"]["orderFound"] == first["refund"]["orderFound"]


async def run(db, tenant, code: str, plan: list[tuple], retries: list[tuple[int, int]]) -> None:
    shop = Shop(tenant, code, plan)
    after: dict[int, list[int]] = defaultdict(list)
    for i, at in retries:
        after[at].append(i)
    first: dict[int, dict[str, Any]] = {}
    for j, step in enumerate(plan):
        if step[0] == "release":
            await release_due(db, at=days(15))
        else:
            first[j] = await shop.send(j)
            if step[0] != "redeem":
                assert first[j]["userErrors"] == [], first[j]
        for i in after[j]:
            if first[i]["userErrors"]:
                continue  # refused: nothing was recorded, the caller does not retry a refusal
            same_answer(first[i], await shop.send(i))


async def snapshot(db, merchant_id) -> dict[str, Any]:
    """The merchant's ledger, named so two merchants can be compared (no ids)."""
    async with create_session_factory(db)() as session:
        names = {c.id: c.external_id for c in await session.scalars(select(Customer).where(Customer.merchant_id == merchant_id))}
        rules = {
            r.id: (r.name, r.version)
            for r in await session.scalars(select(RewardRule).where(RewardRule.merchant_id == merchant_id))
        }
        keys = {a.id: a.idempotency_key for a in await session.scalars(select(Action).where(Action.merchant_id == merchant_id))}
        accounts = {a.id: a for a in await session.scalars(select(LedgerAccount).where(LedgerAccount.merchant_id == merchant_id))}

        def owner(account: LedgerAccount) -> str:
            return names[account.owner_id] if account.owner_type == "CUSTOMER" else "program"

        balances = sorted(
            (owner(a), a.kind.value, a.account_type.value, a.unit, a.balance)
            for a in accounts.values()
            if a.owner_type == "CUSTOMER"
        )
        rewards = sorted(
            (
                names[r.customer_id],
                rules[r.rule_version_id],
                r.recipient.value,
                r.kind.value,
                r.amount,
                r.unit,
                r.status.value,
                r.remaining,
                r.reversed_amount,
                keys[r.trigger_action_id],
                r.milestone,
            )
            for r in await session.scalars(select(Reward).where(Reward.merchant_id == merchant_id))
        )
        entries: dict[Any, list[tuple]] = defaultdict(list)
        for e in await session.scalars(select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id)):
            account = accounts[e.account_id]
            entries[e.transaction_id].append((owner(account), account.kind.value, account.account_type.value, e.unit, e.amount))
        transactions = [
            (t.kind, names.get(t.customer_id), t.idempotency_key, t.reference, sorted(entries[t.id]))
            for t in await session.scalars(
                select(LedgerTransaction).where(LedgerTransaction.merchant_id == merchant_id).order_by(LedgerTransaction.id)
            )
        ]
    return {"balances": balances, "rewards": rewards, "transactions": transactions, "actions": sorted(keys.values())}


async def shop_for(db, client, name: str):
    tenant = await create_tenant(db, client, name)
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    for rule in RULES:
        await create_rule(tenant, program["id"], **rule)
    return tenant, code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
async def test_retries_and_duplicates_yield_the_same_ledger_as_each_request_once(db, client, scenario):
    plan, retries = scenario

    once, once_code = await shop_for(db, client, "Once")
    await run(db, once, once_code, plan, [])
    expected = await snapshot(db, once.id)  # before the other run's releases touch this merchant

    retried, retried_code = await shop_for(db, client, "Retried")
    await run(db, retried, retried_code, plan, retries)
    actual = await snapshot(db, retried.id)

    assert actual == expected
    assert await ledger_problems(db, once.id) == []
    assert await ledger_problems(db, retried.id) == []
