"""What each rule grants, and what becomes of it: every reward kind and condition,
milestones, caps and budgets, recurring commission, hold and release, expiry, refunds (full
and partial, before and after the reward was spent), and claims after purchases.

Merchants act through the API; the clock moves through the services (release, expiry) and
the past is reached with `occurredAt` (and, for windows, a backdated referral)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from app.db import create_session_factory, utcnow
from app.referrals.models import Customer
from app.rewards.evaluation import month_start
from app.rewards.models import Reward
from tests.rewards.helpers import (
    CLAIM,
    UPDATE_RULE,
    backdate_referral,
    balance,
    create_rule,
    credit_rule,
    days,
    expire_due,
    ledger_entries,
    purchase,
    record,
    redeem_credit,
    refund,
    release_due,
    rewards_of,
    signup,
)
from tests.scenarios import PAY_AT_SIGNUP, active_program, allow_bursts, code_for


async def shop(tenant, *rules: dict) -> tuple[dict, str, list[dict]]:
    """An active program, jane's code, and the given rules."""
    program = await active_program(tenant, clearance=PAY_AT_SIGNUP)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    created = [await create_rule(tenant, program["id"], **rule) for rule in rules]
    return program, code, created


def amounts(rewards: list[dict]) -> list[tuple]:
    return sorted((r["customer"]["externalId"], r["kind"], r["amount"], r["unit"], r["status"]) for r in rewards)


# --- each kind ---------------------------------------------------------------------------


async def test_credit_to_the_referrer(tenant):
    _, code, _ = await shop(tenant, credit_rule())

    result = await purchase(tenant, "bob", "order-1", 5000, referralCode=code)

    [reward] = result["rewards"]
    assert (reward["kind"], reward["recipient"], reward["amount"], reward["unit"]) == ("CREDIT", "REFERRER", 1000, "USD")
    assert (reward["status"], reward["remaining"], reward["customer"]["externalId"]) == ("AVAILABLE", 1000, "jane")
    assert reward["availableAt"] is not None and reward["holdUntil"] is None and reward["expiresAt"] is None
    assert await balance(tenant, "jane") == {"available": 1000, "held": 0}
    assert await balance(tenant, "bob") == {"available": 0, "held": 0}


async def test_points_to_the_referee_on_signup(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            name="250 points",
            trigger="SIGNUP",
            recipient="REFEREE",
            kind="POINTS",
            amount=250,
            currency=None,
        ),
    )

    first = await signup(tenant, "bob", code)
    again = await record(tenant, type="SIGNUP", customerExternalId="bob", idempotencyKey="signup-2")

    [reward] = first["rewards"]
    assert (reward["kind"], reward["amount"], reward["unit"], reward["customer"]["externalId"]) == (
        "POINTS",
        250,
        "POINTS",
        "bob",
    )
    assert again["rewards"] == []  # once per referral and recipient
    assert await balance(tenant, "bob", "POINTS", "POINTS") == {"available": 250, "held": 0}


async def test_fixed_commission_in_its_own_currency(tenant):
    _, code, _ = await shop(tenant, credit_rule(name="$25 commission", kind="COMMISSION", amount=2500, currency="EUR"))

    result = await purchase(tenant, "bob", "order-1", 100, "USD", referralCode=code)

    assert amounts(result["rewards"]) == [("jane", "COMMISSION", 2500, "EUR", "AVAILABLE")]
    assert await balance(tenant, "jane", "COMMISSION", "EUR") == {"available": 2500, "held": 0}


@pytest.mark.parametrize(
    ("bps", "order", "currency", "expected"),
    [(1000, 10000, "USD", 1000), (1250, 8000, "EUR", 1000), (1500, 999, "USD", 149), (1, 99, "USD", None)],
    ids=["10%", "12.5%-eur", "rounds-down", "rounds-to-nothing"],
)
async def test_percent_commission_of_the_order_in_its_currency(tenant, bps, order, currency, expected):
    _, code, _ = await shop(tenant, credit_rule(kind="COMMISSION", amount=None, currency=None, percentBps=bps))

    result = await purchase(tenant, "bob", "order-1", order, currency, referralCode=code)

    if expected is None:
        assert result["rewards"] == []
    else:
        assert amounts(result["rewards"]) == [("jane", "COMMISSION", expected, currency, "AVAILABLE")]
    assert await balance(tenant, "jane", "COMMISSION", currency) == {"available": expected or 0, "held": 0}


async def test_percent_commission_of_an_action_without_amount_grants_nothing(tenant):
    _, code, _ = await shop(tenant, credit_rule(trigger="SIGNUP", kind="COMMISSION", amount=None, currency=None, percentBps=1000))

    assert (await signup(tenant, "bob", code))["rewards"] == []


async def test_both_recipients(tenant):
    _, code, _ = await shop(tenant, credit_rule(name="Give $5, get $5", recipient="BOTH", amount=500))

    result = await purchase(tenant, "bob", "order-1", 5000, referralCode=code)

    assert amounts(result["rewards"]) == [("bob", "CREDIT", 500, "USD", "AVAILABLE"), ("jane", "CREDIT", 500, "USD", "AVAILABLE")]
    assert await balance(tenant, "jane") == await balance(tenant, "bob") == {"available": 500, "held": 0}


async def test_other_triggers_and_unreferred_customers_grant_nothing(tenant):
    _, code, _ = await shop(tenant, credit_rule())

    assert (await signup(tenant, "bob", code))["rewards"] == []  # the rule waits for a PURCHASE
    assert (await purchase(tenant, "stranger", "order-x", 5000))["rewards"] == []  # no referral
    assert [r["customer"]["externalId"] for r in await rewards_of(tenant)] == []


# --- conditions --------------------------------------------------------------------------


async def test_minimum_action_amount_in_its_currency(tenant):
    _, code, _ = await shop(tenant, credit_rule(conditions={"minActionAmount": 5000, "minActionCurrency": "USD"}))

    assert (await purchase(tenant, "bob", "order-1", 4999, "USD", referralCode=code))["rewards"] == []
    assert (await purchase(tenant, "bob", "order-2", 90000, "EUR"))["rewards"] == []  # enough, in another currency
    assert amounts((await purchase(tenant, "bob", "order-3", 5000, "USD"))["rewards"]) == [
        ("jane", "CREDIT", 1000, "USD", "AVAILABLE")
    ]


async def test_first_action_only(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            conditions={"firstActionOnly": True, "minActionAmount": 5000, "minActionCurrency": "USD"},
        ),
    )

    assert (await purchase(tenant, "bob", "bob-1", 1000, referralCode=code))["rewards"] == []  # first, too small
    assert (await purchase(tenant, "bob", "bob-2", 6000))["rewards"] == []  # big enough, not the first
    await signup(tenant, "carol", code)  # a signup is not a purchase
    carol = await purchase(tenant, "carol", "carol-1", 6000)
    assert amounts(carol["rewards"]) == [("jane", "CREDIT", 1000, "USD", "AVAILABLE")]


async def test_within_days_of_referral(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(conditions={"withinDaysOfReferral": 30}))
    referral = (await signup(tenant, "bob", code))["referral"]
    await backdate_referral(db, referral["id"], created_at=days(-40))

    assert (await purchase(tenant, "bob", "late", 5000))["rewards"] == []  # 40 days after the referral
    in_time = await purchase(tenant, "bob", "in-time", 5000, occurredAt=days(-35))  # 5 days after, reported late
    assert amounts(in_time["rewards"]) == [("jane", "CREDIT", 1000, "USD", "AVAILABLE")]


async def test_metadata_in(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            conditions={"metadataFilters": [{"key": "category", "op": "IN", "values": ["shoes", "bags"]}]},
        ),
    )

    assert (await purchase(tenant, "bob", "o-1", 5000, referralCode=code, metadata={"category": "food"}))["rewards"] == []
    assert (await purchase(tenant, "bob", "o-2", 5000))["rewards"] == []  # no category at all
    assert (await purchase(tenant, "bob", "o-3", 5000, metadata={"category": "Bags"}))["rewards"] == []  # exact match
    granted = await purchase(tenant, "bob", "o-4", 5000, metadata={"category": "bags", "other": 1})
    assert amounts(granted["rewards"]) == [("jane", "CREDIT", 1000, "USD", "AVAILABLE")]


async def test_metadata_not_in(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            conditions={"metadataFilters": [{"key": "channel", "op": "NOT_IN", "values": ["marketplace"]}]},
        ),
    )

    assert (await purchase(tenant, "bob", "bob-1", 5000, referralCode=code, metadata={"channel": "marketplace"}))["rewards"] == []
    assert len((await purchase(tenant, "carol", "carol-1", 5000, referralCode=code))["rewards"]) == 1  # no channel
    assert len((await purchase(tenant, "dave", "dave-1", 5000, referralCode=code, metadata={"channel": "web"}))["rewards"]) == 1


async def test_every_filter_must_match(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            conditions={
                "metadataFilters": [
                    {"key": "category", "op": "IN", "values": ["shoes"]},
                    {"key": "channel", "op": "NOT_IN", "values": ["marketplace"]},
                ]
            }
        ),
    )

    both = {"category": "shoes", "channel": "marketplace"}
    assert (await purchase(tenant, "bob", "o-1", 5000, referralCode=code, metadata=both))["rewards"] == []
    assert len((await purchase(tenant, "bob", "o-2", 5000, metadata={"category": "shoes"}))["rewards"]) == 1


async def test_milestone_at_the_second_qualified_referral_is_granted_once(tenant):
    _, code, _ = await shop(tenant, credit_rule(name="2 friends: $50", amount=5000, conditions={"milestone": 2}))

    assert (await purchase(tenant, "bob", "bob-1", 5000, referralCode=code))["rewards"] == []  # 1st qualified
    assert (await purchase(tenant, "bob", "bob-2", 5000))["rewards"] == []  # still one qualified referral
    assert (await signup(tenant, "carol", code))["rewards"] == []  # pending, not qualified
    second = await purchase(tenant, "carol", "carol-1", 5000)  # 2nd qualified referral
    third = await purchase(tenant, "dave", "dave-1", 5000, referralCode=code)
    carol_again = await purchase(tenant, "carol", "carol-2", 5000)

    [reward] = second["rewards"]
    assert (reward["customer"]["externalId"], reward["amount"], reward["milestone"]) == ("jane", 5000, 2)
    assert third["rewards"] == [] and carol_again["rewards"] == []
    assert [(r["amount"], r["milestone"]) for r in await rewards_of(tenant, "jane")] == [(5000, 2)]
    assert await balance(tenant, "jane") == {"available": 5000, "held": 0}


async def backdate_rewards(db, tenant, to: datetime) -> None:
    async with create_session_factory(db)() as session:
        await session.execute(update(Reward).where(Reward.merchant_id == tenant.id).values(created_at=to))
        await session.commit()


async def test_cap_per_referrer_monthly(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(amount=100, conditions={"capPerReferrerMonthly": 2}))

    granted = [
        len((await purchase(tenant, who, f"{who}-1", 5000, referralCode=code))["rewards"]) for who in ("bob", "carol", "dave")
    ]
    assert granted == [1, 1, 0]
    await backdate_rewards(db, tenant, month_start(utcnow()) - timedelta(days=1))  # they were last month's
    assert len((await purchase(tenant, "erin", "erin-1", 5000, referralCode=code))["rewards"]) == 1
    assert len(await rewards_of(tenant, "jane")) == 3


async def test_cap_per_referrer_lifetime(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(amount=100, conditions={"capPerReferrerLifetime": 2}))

    granted = [len((await purchase(tenant, who, f"{who}-1", 5000, referralCode=code))["rewards"]) for who in ("bob", "carol")]
    await backdate_rewards(db, tenant, month_start(utcnow()) - timedelta(days=40))
    granted.append(len((await purchase(tenant, "dave", "dave-1", 5000, referralCode=code))["rewards"]))

    assert granted == [1, 1, 0]
    assert await balance(tenant, "jane") == {"available": 200, "held": 0}


async def test_caps_limit_the_referrer_not_the_referee(tenant):
    _, code, _ = await shop(tenant, credit_rule(recipient="BOTH", amount=100, conditions={"capPerReferrerLifetime": 1}))

    bob = await purchase(tenant, "bob", "bob-1", 5000, referralCode=code)
    carol = await purchase(tenant, "carol", "carol-1", 5000, referralCode=code)

    assert sorted(r["recipient"] for r in bob["rewards"]) == ["REFEREE", "REFERRER"]
    assert [r["recipient"] for r in carol["rewards"]] == ["REFEREE"]


async def test_a_refunded_reward_frees_its_place_under_the_cap(tenant):
    _, code, _ = await shop(tenant, credit_rule(amount=100, conditions={"capPerReferrerLifetime": 1}))
    await purchase(tenant, "bob", "bob-1", 5000, referralCode=code)
    await refund(tenant, "bob-1", "refund-bob-1", customer="bob")

    carol = await purchase(tenant, "carol", "carol-1", 5000, referralCode=code)

    assert len(carol["rewards"]) == 1
    assert sorted(r["status"] for r in await rewards_of(tenant, "jane")) == ["AVAILABLE", "REVERSED"]


async def test_program_monthly_budget(tenant):
    _, code, _ = await shop(tenant, credit_rule(conditions={"programMonthlyBudget": 2500}))

    granted = [
        len((await purchase(tenant, who, f"{who}-1", 5000, referralCode=code))["rewards"]) for who in ("bob", "carol", "dave")
    ]
    assert granted == [1, 1, 0]  # 1000 + 1000 + 1000 > 2500
    await refund(tenant, "bob-1", "refund-bob-1", customer="bob")  # gives 1000 back to the budget
    assert len((await purchase(tenant, "erin", "erin-1", 5000, referralCode=code))["rewards"]) == 1
    assert await balance(tenant, "jane") == {"available": 2000, "held": 0}


async def test_recurring_commission_for_n_months_after_the_referral(tenant, db):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            name="10% for 2 months",
            kind="COMMISSION",
            amount=None,
            currency=None,
            percentBps=1000,
            recurringMonths=2,
        ),
    )
    referral = (await signup(tenant, "bob", code))["referral"]
    await backdate_referral(db, referral["id"], created_at=days(-100))

    inside = [
        await purchase(tenant, "bob", "month-0", 10000, occurredAt=days(-95)),
        await purchase(tenant, "bob", "month-1", 20000, occurredAt=days(-50)),  # 50 days after the referral
    ]
    outside = [
        await purchase(tenant, "bob", "month-3", 30000, occurredAt=days(-30)),  # 70 days after: past 2 months
        await purchase(tenant, "bob", "today", 40000),
    ]

    assert [amounts(r["rewards"]) for r in inside] == [
        [("jane", "COMMISSION", 1000, "USD", "AVAILABLE")],
        [("jane", "COMMISSION", 2000, "USD", "AVAILABLE")],
    ]
    assert [r["rewards"] for r in outside] == [[], []]
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 3000, "held": 0}


async def test_a_commission_that_does_not_recur_pays_once_per_referral(tenant):
    _, code, _ = await shop(tenant, credit_rule(kind="COMMISSION", amount=None, currency=None, percentBps=1000))

    first = await purchase(tenant, "bob", "o-1", 10000, referralCode=code)
    second = await purchase(tenant, "bob", "o-2", 20000)

    assert len(first["rewards"]) == 1 and second["rewards"] == []


# --- hold, release, expiry ---------------------------------------------------------------


async def test_hold_then_release_after_the_hold(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(conditions={"holdDays": 14}))

    [reward] = (await purchase(tenant, "bob", "order-1", 5000, referralCode=code))["rewards"]
    assert (reward["status"], reward["remaining"], reward["availableAt"]) == ("HELD", 0, None)
    hold_until = datetime.fromisoformat(reward["holdUntil"])
    assert abs(hold_until - days(14)) < timedelta(minutes=1)
    assert await balance(tenant, "jane") == {"available": 0, "held": 1000}

    assert await release_due(db, at=days(13)) == 0
    assert (await rewards_of(tenant, "jane"))[0]["status"] == "HELD"
    assert await release_due(db, at=days(15)) == 1
    assert await release_due(db, at=days(16)) == 0  # once

    [released] = await rewards_of(tenant, "jane")
    assert (released["status"], released["remaining"]) == ("AVAILABLE", 1000) and released["availableAt"] is not None
    assert await balance(tenant, "jane") == {"available": 1000, "held": 0}
    entries = await ledger_entries(tenant, "jane")
    assert sorted((e["accountType"], e["amount"]) for e in entries) == [("AVAILABLE", 1000), ("HELD", -1000), ("HELD", 1000)]


async def test_a_purchase_reported_after_its_hold_is_available_at_once(tenant):
    _, code, _ = await shop(tenant, credit_rule(conditions={"holdDays": 14}))

    [reward] = (await purchase(tenant, "bob", "order-1", 5000, referralCode=code, occurredAt=days(-20)))["rewards"]

    assert reward["status"] == "AVAILABLE"
    assert await balance(tenant, "jane") == {"available": 1000, "held": 0}


async def test_expiry_removes_exactly_the_unspent_remainder(tenant, db):
    _, code, _ = await shop(
        tenant,
        credit_rule(name="Expiring $10", conditions={"expiresInDays": 30}),
        credit_rule(name="Lasting $5", amount=500),
    )
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    spent = await redeem_credit(tenant, "jane", 300, "checkout-1")
    assert spent["userErrors"] == [] and spent["balance"] == 1200

    rewards = {r["rule"]["name"]: r for r in await rewards_of(tenant, "jane")}
    assert rewards["Expiring $10"]["remaining"] == 700  # the expiring lot is spent first
    assert rewards["Lasting $5"]["remaining"] == 500
    assert abs(datetime.fromisoformat(rewards["Expiring $10"]["expiresAt"]) - days(30)) < timedelta(minutes=1)

    assert await expire_due(db, at=days(29)) == 0
    assert await expire_due(db, at=days(31)) == 1
    assert await expire_due(db, at=days(32)) == 0

    rewards = {r["rule"]["name"]: r for r in await rewards_of(tenant, "jane")}
    assert (rewards["Expiring $10"]["status"], rewards["Expiring $10"]["remaining"]) == ("EXPIRED", 0)
    assert (rewards["Lasting $5"]["status"], rewards["Lasting $5"]["remaining"]) == ("AVAILABLE", 500)
    assert await balance(tenant, "jane") == {"available": 500, "held": 0}
    assert sorted(e["amount"] for e in await ledger_entries(tenant, "jane")) == [-700, -300, 500, 1000]
    assert (await redeem_credit(tenant, "jane", 501, "checkout-2"))["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"
    assert (await redeem_credit(tenant, "jane", 500, "checkout-3"))["balance"] == 0


async def test_a_held_reward_expires_counting_from_its_release(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(conditions={"holdDays": 14, "expiresInDays": 30}))
    [reward] = (await purchase(tenant, "bob", "order-1", 5000, referralCode=code))["rewards"]
    assert reward["expiresAt"] is None

    await release_due(db, at=days(15))

    [released] = await rewards_of(tenant, "jane")
    assert released["expiresAt"] is not None
    assert await expire_due(db, at=days(5)) == 0  # the hold does not eat into the 30 days
    assert datetime.fromisoformat(released["expiresAt"]) > datetime.fromisoformat(released["availableAt"]) + timedelta(days=29)


# --- refunds -----------------------------------------------------------------------------


async def test_refund_voids_a_held_reward(tenant, db):
    _, code, _ = await shop(tenant, credit_rule(conditions={"holdDays": 14}))
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    assert await balance(tenant, "jane") == {"available": 0, "held": 1000}

    result = await refund(tenant, "order-1", "refund-1", 5000)

    assert result["refund"]["orderFound"] is True
    [voided] = result["refund"]["rewards"]
    assert (voided["status"], voided["reversedAmount"], voided["remaining"]) == ("VOIDED", 1000, 0)
    assert "order-1 refunded" in voided["endReason"]
    assert await balance(tenant, "jane") == {"available": 0, "held": 0}
    assert await release_due(db, at=days(15)) == 0  # nothing left to release
    assert await balance(tenant, "jane") == {"available": 0, "held": 0}


async def test_refund_reverses_an_available_reward(tenant):
    _, code, _ = await shop(tenant, credit_rule())
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)

    result = await refund(tenant, "order-1", "refund-1")  # no amount: the whole order

    [reversed_] = result["refund"]["rewards"]
    assert (reversed_["status"], reversed_["reversedAmount"], reversed_["remaining"]) == ("REVERSED", 1000, 0)
    assert await balance(tenant, "jane") == {"available": 0, "held": 0}
    assert sorted(e["amount"] for e in await ledger_entries(tenant, "jane")) == [-1000, 1000]

    replay = await refund(tenant, "order-1", "refund-1")
    assert replay["replayed"] is True and replay["refund"]["orderFound"] is True
    assert [r["status"] for r in replay["refund"]["rewards"]] == ["REVERSED"]
    assert await balance(tenant, "jane") == {"available": 0, "held": 0}


async def test_a_cancellation_takes_back_the_whole_order(tenant):
    _, code, _ = await shop(tenant, credit_rule(kind="COMMISSION", amount=None, currency=None, percentBps=1000))
    await purchase(tenant, "bob", "order-1", 10000, referralCode=code)

    result = await refund(tenant, "order-1", "cancel-1", 100, type="CANCELLATION")

    assert [(r["status"], r["reversedAmount"]) for r in result["refund"]["rewards"]] == [("REVERSED", 1000)]
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 0, "held": 0}


async def test_partial_refunds_reduce_a_percent_commission_in_proportion_not_a_fixed_reward(tenant):
    _, code, _ = await shop(
        tenant,
        credit_rule(name="10%", kind="COMMISSION", amount=None, currency=None, percentBps=1000),
        credit_rule(name="$5", amount=500),
    )
    await purchase(tenant, "bob", "order-1", 10000, referralCode=code)

    first = await refund(tenant, "order-1", "refund-1", 2500)
    [commission] = first["refund"]["rewards"]
    assert (commission["kind"], commission["amount"], commission["reversedAmount"], commission["remaining"]) == (
        "COMMISSION",
        1000,
        250,
        750,
    )
    assert commission["status"] == "AVAILABLE"
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 750, "held": 0}
    assert await balance(tenant, "jane", "CREDIT", "USD") == {"available": 500, "held": 0}  # fixed: unaffected

    second = await refund(tenant, "order-1", "refund-2", 2500)  # refunds accumulate: 5000 of 10000
    assert [(r["reversedAmount"], r["remaining"]) for r in second["refund"]["rewards"]] == [(500, 500)]
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 500, "held": 0}
    assert await balance(tenant, "jane", "CREDIT", "USD") == {"available": 500, "held": 0}

    rest = await refund(tenant, "order-1", "refund-3", 5000)  # now fully refunded: everything goes
    assert sorted((r["kind"], r["status"], r["reversedAmount"]) for r in rest["refund"]["rewards"]) == [
        ("COMMISSION", "REVERSED", 1000),
        ("CREDIT", "REVERSED", 500),
    ]
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 0, "held": 0}
    assert await balance(tenant, "jane", "CREDIT", "USD") == {"available": 0, "held": 0}


async def test_a_partial_refund_of_a_held_commission_voids_part_of_it(tenant, db):
    _, code, _ = await shop(
        tenant,
        credit_rule(
            kind="COMMISSION",
            amount=None,
            currency=None,
            percentBps=1000,
            conditions={"holdDays": 14},
        ),
    )
    await purchase(tenant, "bob", "order-1", 10000, referralCode=code)

    [held] = (await refund(tenant, "order-1", "refund-1", 2500))["refund"]["rewards"]

    assert (held["status"], held["reversedAmount"]) == ("HELD", 250)
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 0, "held": 750}
    assert await release_due(db, at=days(15)) == 1
    [released] = await rewards_of(tenant, "jane")
    assert (released["status"], released["remaining"]) == ("AVAILABLE", 750)
    assert await balance(tenant, "jane", "COMMISSION", "USD") == {"available": 750, "held": 0}


async def test_a_refund_after_the_credit_was_spent_leaves_a_debt_that_nets_against_the_next_reward(tenant):
    _program, code, [rule] = await shop(tenant, credit_rule())
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    assert (await redeem_credit(tenant, "jane", 1000, "checkout-1"))["balance"] == 0
    assert [r["status"] for r in await rewards_of(tenant, "jane")] == ["REDEEMED"]

    await refund(tenant, "order-1", "refund-1", 5000)

    assert [(r["status"], r["reversedAmount"]) for r in await rewards_of(tenant, "jane")] == [("REVERSED", 1000)]
    assert await balance(tenant, "jane") == {"available": -1000, "held": 0}
    refused = await redeem_credit(tenant, "jane", 1, "checkout-2")
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [("amount", "INSUFFICIENT_BALANCE")]
    assert "is 0 USD" in refused["userErrors"][0]["message"]

    updated = await tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=1500)})
    assert updated["updateRewardRule"]["userErrors"] == []
    [new] = (await purchase(tenant, "carol", "order-2", 5000, referralCode=code))["rewards"]

    assert (new["amount"], new["status"], new["remaining"]) == (1500, "AVAILABLE", 500)  # 1000 paid the debt
    assert await balance(tenant, "jane") == {"available": 500, "held": 0}
    assert (await redeem_credit(tenant, "jane", 501, "checkout-3"))["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"
    assert (await redeem_credit(tenant, "jane", 500, "checkout-4"))["balance"] == 0
    assert sorted(r["status"] for r in await rewards_of(tenant, "jane")) == ["REDEEMED", "REVERSED"]


async def test_a_debt_larger_than_the_next_reward_absorbs_all_of_it(tenant):
    _program, code, [rule] = await shop(tenant, credit_rule())
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    await redeem_credit(tenant, "jane", 1000, "checkout-1")
    await refund(tenant, "order-1", "refund-1")
    await tenant.gql(UPDATE_RULE, {"ruleId": rule["ruleId"], "input": credit_rule(amount=400)})

    [new] = (await purchase(tenant, "carol", "order-2", 5000, referralCode=code))["rewards"]

    assert (new["amount"], new["remaining"]) == (400, 0)
    assert await balance(tenant, "jane") == {"available": -600, "held": 0}


async def test_a_refund_of_an_unknown_order_is_recorded_and_reported(tenant):
    await shop(tenant, credit_rule())

    result = await refund(tenant, "no-such-order", "refund-1", 500)
    replay = await refund(tenant, "no-such-order", "refund-1", 500)
    without_order = await record(
        tenant, type="REFUND", customerExternalId="bob", idempotencyKey="refund-2", amount=500, currency="USD"
    )

    assert result["action"]["id"] and result["action"]["orderId"] == "no-such-order"
    assert result["refund"] == {"orderFound": False, "rewards": []}
    assert replay["replayed"] is True and replay["refund"] == {"orderFound": False, "rewards": []}
    assert without_order["userErrors"] == [] and without_order["refund"] is None


async def test_a_refund_of_a_purchase_outside_any_referral_takes_nothing(tenant):
    _, code, _ = await shop(tenant, credit_rule())
    await purchase(tenant, "bob", "order-1", 5000, referralCode=code)
    await purchase(tenant, "stranger", "order-2", 5000)

    result = await refund(tenant, "order-2", "refund-2", customer="stranger")

    assert result["refund"] == {"orderFound": True, "rewards": []}
    assert await balance(tenant, "jane") == {"available": 1000, "held": 0}


# --- claims ------------------------------------------------------------------------------


async def test_claim_after_purchases_grants_the_rewards_of_the_attached_purchase(tenant):
    program, code, _ = await shop(
        tenant,
        credit_rule(),
        credit_rule(name="100 points", recipient="REFEREE", kind="POINTS", amount=100, currency=None),
    )
    assert (await purchase(tenant, "bob", "order-1", 5000))["rewards"] == []  # no code at checkout

    claim = await tenant.gql(CLAIM, {"input": {"programId": program["id"], "customerExternalId": "bob", "code": code}})
    payload = claim["claimReferral"]
    again = await tenant.gql(CLAIM, {"input": {"programId": program["id"], "customerExternalId": "bob", "code": code}})

    assert payload["userErrors"] == [] and payload["referral"]["status"] == "QUALIFIED"
    assert amounts(payload["referral"]["rewards"]) == [
        ("bob", "POINTS", 100, "POINTS", "AVAILABLE"),
        ("jane", "CREDIT", 1000, "USD", "AVAILABLE"),
    ]
    assert again["claimReferral"]["userErrors"] == [] and len(again["claimReferral"]["referral"]["rewards"]) == 2
    assert await balance(tenant, "jane") == {"available": 1000, "held": 0}
    assert await balance(tenant, "bob", "POINTS", "POINTS") == {"available": 100, "held": 0}

    refunded = await refund(tenant, "order-1", "refund-1")  # the attached purchase can be refunded as usual
    assert sorted(r["status"] for r in refunded["refund"]["rewards"]) == ["REVERSED", "REVERSED"]


async def one_friend_short_of_a_milestone(tenant) -> str:
    """jane's code: $10 per friend, $50 more at the 2nd; one friend has bought (bursts allowed)."""
    program, code, _ = await shop(
        tenant,
        credit_rule(name="Per friend", amount=1000),
        credit_rule(name="2 friends: $50", amount=5000, conditions={"milestone": 2}),
    )
    await allow_bursts(tenant, program["id"])
    assert len((await purchase(tenant, "first", "first-1", 5000, referralCode=code))["rewards"]) == 1
    return code


async def test_concurrent_purchases_that_each_reach_a_milestone_grant_its_bonus_once(tenant):
    """Six new referees of one referrer buy at once, the referrer one qualified referral short
    of the milestone: each purchase reads 'not granted yet' with its locks, and whichever of
    them waited for the referrer's lock read it as of before the others committed. The bonus
    is granted once, with every referral's own reward; the ledger holds exactly that."""
    code = await one_friend_short_of_a_milestone(tenant)

    results = await asyncio.gather(*(purchase(tenant, f"friend-{i}", f"friend-{i}-1", 5000, referralCode=code) for i in range(6)))

    bonuses = [r for result in results for r in result["rewards"] if r["milestone"] == 2]
    assert len(bonuses) == 1 and bonuses[0]["amount"] == 5000
    assert sum(len(result["rewards"]) for result in results) == 7
    assert sorted(r["amount"] for r in await rewards_of(tenant, "jane")) == [1000] * 7 + [5000]
    assert await balance(tenant, "jane") == {"available": 7 * 1000 + 5000, "held": 0}


async def test_a_purchase_that_read_the_bonus_as_not_granted_before_waiting_for_the_lock_grants_nothing_twice(
    tenant, owner_engine, backend
):
    """The evaluation reads whether the referrer has the bonus in the statement that takes the
    locks, as of that statement's start. Two purchases wait for the referrer's row together;
    the first to get it grants the bonus and commits, the second read 'not granted' before
    that and plans it too: the reward's unique key turns it away, and nothing else of that
    purchase is lost. (SQLite's writers take turns: no purchase reads before another commits.)"""
    if backend != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    code = await one_friend_short_of_a_milestone(tenant)

    async with owner_engine.connect() as holder:
        jane = await holder.scalar(
            select(Customer.id)
            .where(Customer.merchant_id == tenant.id, Customer.external_id == "jane")
            .with_for_update(key_share=True)
        )
        assert jane is not None
        waiting = [
            asyncio.create_task(purchase(tenant, f"friend-{i}", f"friend-{i}-1", 5000, referralCode=code)) for i in range(2)
        ]

        async def lock_waits() -> int:
            async with owner_engine.connect() as watcher:
                query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                return await watcher.scalar(text(query))

        for _ in range(200):
            if await lock_waits() == 2:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the purchases never waited for the referrer's row")
        await holder.rollback()
    results = await asyncio.gather(*waiting)

    assert sorted(len(result["rewards"]) for result in results) == [1, 2]  # the bonus once, each its own $10
    assert sorted(r["amount"] for r in await rewards_of(tenant, "jane")) == [1000, 1000, 1000, 5000]
    assert await balance(tenant, "jane") == {"available": 3 * 1000 + 5000, "held": 0}
