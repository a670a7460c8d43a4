"""Reward kinds, each described once: what a rule of it states, what a reward of it is worth,
how it is held, spent, expired and taken back. The rules (`rules.validate_definition`),
evaluation (`evaluation.reward_value`), the lifecycle (grant, release, expiry, reversal,
clawback, refunds), checkout redemption and payouts read `KINDS` instead of naming kinds.

Adding a reward kind:
1. a member of `RewardKind` (app/rewards/models.py); its value fits the String(16) `kind` columns
   of rewards, reward_rules and ledger_accounts, which no constraint restricts (no migration,
   unless the columns have become database enums by then: then one that adds the value);
2. its entry in `KINDS` below (tests/rewards/test_kinds.py fails until there is one); the
   GraphQL descriptions of RewardKind and of the rule input's kind-specific fields are made
   from the entries (app/schema/reward_types.py, app/schema/rewards.py);
3. its label in the console (console/src/i18n.js, every language, then `npm run build` in
   console/ for app/static/console/console.js) and in the widget panel (sdk/js/src/panel.ts:
   the `kind` type and its amount template, then the sdk/js build), the Python SDK's comment
   (sdk/python/src/referral_client/operations.py) and README's list of kinds.
A kind held, spent or valued in a way no entry is yet (a new `Holding`, `Spending` or
`Percent`) needs that way written where the enum is matched: app/rewards/lifecycle.py (Holding),
app/rewards/redemption.py with a redeem mutation in app/schema/rewards.py, or app/payouts
(Spending), app/rewards/evaluation.py `reward_value` (Percent). Some features pick kinds on
purpose, to be looked at for a new one: campaign bonuses and lead fees are COMMISSION or CREDIT
(app/campaigns/service.py, app/leads/service.py), affiliates earn COMMISSION (app/partners/sales.py,
rules._PAID_BY_PARTNERS), clearance may release referees' DISCOUNT early (app/fraud/clearance.py),
analytics count commission paid out (app/analytics).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.rewards.models import POINTS, RewardKind

PERCENT = "PERCENT"  # the unit of a percent-off coupon's value, in basis points


class Value(enum.Enum):
    """What a rule of the kind states as the reward (`amount`, `currency`, `percentBps`);
    the value is what `rules.validate_definition` says the kind needs."""

    MONEY = "an amount and a currency (no percentBps)"
    POINTS = "an amount of points and no currency or percentBps"
    MONEY_OR_PERCENT = "either an amount with a currency or percentBps"


class Percent(enum.Enum):
    """What `percentBps` means, for a kind whose value may be a percentage."""

    # A share of the action's amount, in its currency (seasons may set other rates for some
    # days); a partial refund of the order takes back the same share of the reward.
    OF_ACTION = "share of the order"
    OFF_ORDER = "percent off"  # the reward is the percentage (unit PERCENT): a percent-off coupon


class Holding(enum.Enum):
    """How a customer holds a reward of the kind (app.rewards.lifecycle)."""

    # Lots in the customer's HELD and AVAILABLE ledger accounts of the kind and unit, booked
    # against the program's accounts: granted, released, expired and reversed by ledger entries.
    LEDGER = "LEDGER"
    # A single-use coupon code (app.rewards.coupons), issued when the reward becomes available,
    # voided when it is reversed, expired with it; no ledger entries.
    COUPON = "COUPON"


class Spending(enum.Enum):
    """How the customer uses a reward of the kind."""

    CHECKOUT = "CHECKOUT"  # redeemed at the merchant's checkout (app.rewards.redemption: redeemCredit, redeemPoints)
    COUPON = "COUPON"  # the coupon's code at checkout (redeemCoupon)
    PAYOUT = "PAYOUT"  # paid out in cash (app.payouts)


class Terms(Protocol):
    """What a kind reads of a rule (app.rewards.rules.RuleSpec)."""

    @property
    def amount(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def percent_bps(self) -> int | None: ...


@dataclass(frozen=True)
class KindBehaviour:
    kind: RewardKind
    description: str  # for people: the GraphQL description, the error messages
    value: Value
    holding: Holding
    spending: Spending
    percent: Percent | None = None  # what percentBps means; None: the kind has no percentage
    unit: str | None = None  # the unit of every reward of the kind; None: the rule's currency
    no_expiry: str | None = None  # why its rules have no expiresInDays; None: they may
    recurs: bool = False  # recurringMonths: rewarded on every trigger for that long after the referral
    budgeted: bool = True  # conditions.programMonthlyBudget applies

    @property
    def has_ledger(self) -> bool:
        return self.holding is Holding.LEDGER

    @property
    def has_coupon(self) -> bool:
        return self.holding is Holding.COUPON

    @property
    def uses_coupon_pools(self) -> bool:
        """couponPoolId: codes from the merchant's pool instead of generated ones."""
        return self.holding is Holding.COUPON

    @property
    def has_seasons(self) -> bool:
        """seasons: other rates for some days, for percentage rules."""
        return self.percent is Percent.OF_ACTION

    @property
    def expires(self) -> bool:
        return self.no_expiry is None

    def share_of_action(self, terms: Terms) -> bool:
        """The rule rewards a share of the action's amount (and a partial refund takes back as much)."""
        return self.percent is Percent.OF_ACTION and terms.percent_bps is not None

    def unit_of(self, terms: Terms) -> str:
        """The unit of the rule's rewards ("" for a share of the action: the action's currency)."""
        if self.unit is not None:
            return self.unit
        if self.percent is Percent.OFF_ORDER and terms.percent_bps is not None:
            return PERCENT
        return terms.currency or ""

    def fixed_value(self, terms: Terms) -> tuple[int, str]:
        """The value of the rule's rewards whatever the action: its amount, or its percent off."""
        if self.percent is Percent.OFF_ORDER and terms.percent_bps is not None:
            return terms.percent_bps, PERCENT
        assert terms.amount is not None  # validate_definition
        return terms.amount, self.unit_of(terms)


KINDS: dict[RewardKind, KindBehaviour] = {
    behaviour.kind: behaviour
    for behaviour in (
        KindBehaviour(
            RewardKind.DISCOUNT,
            "a single-use coupon code for an amount or a percentage off an order",
            value=Value.MONEY_OR_PERCENT,
            percent=Percent.OFF_ORDER,
            holding=Holding.COUPON,
            spending=Spending.COUPON,
            budgeted=False,  # a percentage has no amount to count against a budget
        ),
        KindBehaviour(
            RewardKind.CREDIT,
            "store credit, spent at the merchant's checkout",
            value=Value.MONEY,
            holding=Holding.LEDGER,
            spending=Spending.CHECKOUT,
        ),
        KindBehaviour(
            RewardKind.POINTS,
            "loyalty points, spent at the merchant's checkout",
            value=Value.POINTS,
            unit=POINTS,
            holding=Holding.LEDGER,
            spending=Spending.CHECKOUT,
        ),
        KindBehaviour(
            RewardKind.COMMISSION,
            "cash (a fixed amount or a share of the action's amount), paid out through payouts",
            value=Value.MONEY_OR_PERCENT,
            percent=Percent.OF_ACTION,
            holding=Holding.LEDGER,
            spending=Spending.PAYOUT,
            # an EXPIRED commission would keep its balance with no lot behind it
            no_expiry="commission is cash: it is paid out, it does not expire",
            recurs=True,
        ),
    )
}


_LOOKUP: dict[RewardKind | str, KindBehaviour] = {key: entry for kind, entry in KINDS.items() for key in (kind, kind.value)}


def behaviour_of(kind: RewardKind | str) -> KindBehaviour:
    """The entry of a kind, given as a member or as its stored value."""
    found = _LOOKUP.get(kind)
    return found if found is not None else KINDS[RewardKind(kind)]  # ValueError / KeyError: no such kind / no entry


def kinds_where(test: Callable[[KindBehaviour], bool]) -> list[RewardKind]:
    """The kinds whose entry passes `test`, in `RewardKind`'s order."""
    return [kind for kind in RewardKind if kind in KINDS and test(KINDS[kind])]


def spoken(kinds: list[RewardKind], *, lower: bool = False) -> str:
    """Kinds for a message: "CREDIT, POINTS and COMMISSION"."""
    names = [kind.value.lower() if lower else kind.value for kind in kinds]
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else "none"


def _only(kinds: list[RewardKind]) -> RewardKind:
    assert len(kinds) == 1, kinds
    return kinds[0]


PAID_OUT = _only(kinds_where(lambda b: b.spending is Spending.PAYOUT))  # what app.payouts pays
NEVER_EXPIRE = kinds_where(lambda b: not b.expires)
GRAPHQL_DESCRIPTION = "; ".join(f"{kind.value}: {KINDS[kind].description}" for kind in kinds_where(lambda b: True)) + "."
# What percentBps means, for its GraphQL description: "DISCOUNT percent off, or COMMISSION share of the order".
PERCENT_MEANINGS = ", or ".join(
    f"{entry.kind.value} {entry.percent.value}"
    for entry in map(behaviour_of, kinds_where(lambda b: True))
    if entry.percent is not None
)
