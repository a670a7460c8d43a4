"""The reward kinds' registry (app.rewards.kinds): every kind has its entry, the entries are
consistent, and what an entry says a rule of its kind needs, allows and refuses is what the
API does."""

from __future__ import annotations

from typing import Any

import graphql
import pytest

from app.errors import DomainError
from app.rewards import kinds, redemption
from app.rewards.kinds import KINDS, Holding, Percent, Spending, Value
from app.rewards.models import POINTS, RewardKind
from app.schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.rewards.helpers import CREATE_RULE
from tests.scenarios import active_program


def test_every_reward_kind_has_its_entry():
    missing = [kind.value for kind in RewardKind if kind not in KINDS]
    assert missing == [], f"describe {missing} in app.rewards.kinds.KINDS"
    assert all(entry.kind is kind for kind, entry in KINDS.items())
    assert all(kinds.behaviour_of(kind.value) is kinds.behaviour_of(kind) is KINDS[kind] for kind in RewardKind)


@pytest.mark.parametrize("kind", list(RewardKind), ids=lambda kind: kind.value)
def test_each_entry_is_consistent(kind):
    entry = KINDS[kind]
    assert len(kind.value) <= 16  # the kind columns are String(16)
    assert entry.description and entry.description in kinds.GRAPHQL_DESCRIPTION
    assert (entry.percent is not None) == (entry.value is Value.MONEY_OR_PERCENT)  # percentBps means something
    assert (entry.unit is not None) == (entry.value is Value.POINTS)  # points have their own unit, money the rule's
    # a coupon is used at checkout by its code; balances are spent from the ledger
    assert (entry.holding is Holding.COUPON) == (entry.spending is Spending.COUPON)
    if entry.spending is Spending.PAYOUT:
        assert entry.has_ledger and not entry.expires  # cash owed is paid out, never expired
    if entry.percent is Percent.OFF_ORDER:
        assert not entry.budgeted  # a percentage off has no amount to count


def test_the_documented_kinds():
    """What the README and the GraphQL schema say of the four kinds."""
    assert [kind for kind in RewardKind if KINDS[kind].has_coupon] == [RewardKind.DISCOUNT]
    assert kinds.kinds_where(lambda b: b.spending is Spending.CHECKOUT) == [RewardKind.CREDIT, RewardKind.POINTS]
    assert kinds.PAID_OUT is RewardKind.COMMISSION and kinds.NEVER_EXPIRE == [RewardKind.COMMISSION]
    assert kinds.kinds_where(lambda b: b.recurs) == kinds.kinds_where(lambda b: b.has_seasons) == [RewardKind.COMMISSION]
    assert KINDS[RewardKind.POINTS].unit == POINTS


async def test_only_kinds_spent_at_checkout_are_redeemed_there():
    for kind in RewardKind:
        if KINDS[kind].spending is Spending.CHECKOUT:
            continue
        with pytest.raises(DomainError) as refused:
            await redemption.redeem(
                None,  # refused before the database is asked
                merchant_id=None,
                customer_external_id="jane",
                kind=kind,
                amount=100,
                unit="USD",
                idempotency_key="k",
            )
        assert (refused.value.field, refused.value.message) == ("kind", "only credit and points are redeemed at checkout")


def valid_rule(kind: RewardKind, **extra: Any) -> dict[str, Any]:
    """The smallest rule of `kind` its entry accepts."""
    value = {
        Value.MONEY: {"amount": 1000, "currency": "USD"},
        Value.POINTS: {"amount": 250},
        Value.MONEY_OR_PERCENT: {"percentBps": 1000},
    }[KINDS[kind].value]
    return {"name": "A rule", "trigger": "PURCHASE", "recipient": "REFERRER", "kind": kind.value, **value, **extra}


def refusals(kind: RewardKind) -> list[tuple[dict[str, Any], str | None]]:
    """Changes to a valid rule of `kind` and the field the API must refuse each with (None: accepted),
    read from the kind's entry."""
    entry = KINDS[kind]
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"amount": None, "percentBps": None}, "amount"),  # every kind states its value
        (
            {"percentBps": 1000, "amount": None, "currency": None},
            None if entry.value is Value.MONEY_OR_PERCENT else "amount",
        ),
        (
            {"amount": 1000, "currency": "USD", "percentBps": None},
            "currency" if entry.value is Value.POINTS else None,
        ),
        ({"recurringMonths": 6}, None if entry.recurs else "recurringMonths"),
        ({"conditions": {"expiresInDays": 30}}, None if entry.expires else "conditions.expiresInDays"),
        ({"conditions": {"programMonthlyBudget": 100_000}}, None if entry.budgeted else "conditions.programMonthlyBudget"),
        # kinds with pools look for the pool (and do not find this one); the others refuse it
        ({"couponPoolId": "00000000-0000-7000-8000-000000000000"}, "couponPoolId"),
        (
            {"seasons": [{"startsOn": "2026-12-01", "endsOn": "2026-12-31", "percentBps": 2000}]},
            None if entry.has_seasons else "seasons",
        ),
    ]
    if entry.value is Value.POINTS:
        cases.append(({"currency": "USD"}, "currency"))  # points are points, in no currency
        cases.append(({"percentBps": 1000}, "percentBps"))
    if entry.value is Value.MONEY:
        cases.append(({"currency": None}, "currency"))
        cases.append(({"percentBps": 1000}, "percentBps"))
    if entry.value is Value.MONEY_OR_PERCENT:
        cases.append(({"amount": 1000, "currency": "USD"}, "amount"))  # both amount and percentBps
        cases.append(({"amount": 1000, "currency": None, "percentBps": None}, "currency"))
    return cases


@pytest.mark.parametrize("kind", list(RewardKind), ids=lambda kind: kind.value)
async def test_the_api_refuses_what_the_entry_says_and_accepts_the_rest(tenant, kind):
    program = await active_program(tenant)
    entry = KINDS[kind]
    for change, field in refusals(kind):
        rule = {**valid_rule(kind), **change}
        payload = (await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": rule}))["createRewardRule"]
        errors = [(e["field"], e["code"]) for e in payload["userErrors"]]
        if field is None:
            assert errors == [], (change, errors)
        elif field == "couponPoolId":
            assert errors == [(field, "NOT_FOUND" if entry.uses_coupon_pools else "INVALID_INPUT")], (change, errors)
        else:
            assert errors == [(field, "INVALID_INPUT")], (change, errors)


async def test_points_with_a_currency_are_refused(tenant):
    program = await active_program(tenant)
    rule = valid_rule(RewardKind.POINTS, currency="USD")
    payload = (await tenant.gql(CREATE_RULE, {"programId": program["id"], "input": rule}))["createRewardRule"]
    assert payload["rewardRule"] is None
    assert [(e["field"], e["code"], e["message"]) for e in payload["userErrors"]] == [
        ("currency", "INVALID_INPUT", "POINTS needs an amount of points and no currency or percentBps")
    ]


def test_the_graphql_schema_describes_each_kind():
    described = graphql.build_schema(build_schema(make_settings()).as_str()).get_type("RewardKind")
    assert isinstance(described, graphql.GraphQLEnumType)
    assert described.description == kinds.GRAPHQL_DESCRIPTION
    assert list(described.values) == [kind.value for kind in RewardKind]
