"""Evaluating an action against the program's reward rules.

`decide` is the rule logic alone: given a rule, an action, its referral and a `Facts` source
(what has happened before), it says what to grant. The live path (`evaluate_action`, in the
same transaction as the action) answers Facts from the database; the simulation answers them
from memory. Either way the same code decides.
"""

from __future__ import annotations

import calendar
import enum
import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Integer, Uuid, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money
from app.db import Base, new_id, utcnow
from app.referrals import notify
from app.referrals.models import Action, Customer, Program, Referral, ReferralStatus
from app.rewards import granting, kinds, lifecycle
from app.rewards import rules as rule_service
from app.rewards.models import Recipient, Reward, RewardKind, RewardRule, RewardStatus
from app.rewards.rules import RuleSpec
from app.tenancy import scoped
from app.webhooks import events as webhook_events

# Rewards in these states no longer count towards caps, budgets or "already rewarded".
ENDED_WITHOUT_VALUE = (RewardStatus.VOIDED.value, RewardStatus.REVERSED.value)


class Screening(enum.Enum):
    """What the caller's check (the fraud engine, run by app.actions) says about granting:
    rewards has no idea why, only whether to grant, grant held, or grant nothing."""

    GRANT = "GRANT"
    HOLD = "HOLD"
    SKIP = "SKIP"


Screen = Callable[[], Awaitable[Screening]]
# Whether a reward to (recipient, kind) must wait for its referral to be cleared, and from when
# it may be (None: until the caller clears it). The caller's fraud policy decides (app.fraud.clearance).
ClearanceWait = Callable[[Recipient, RewardKind], tuple[bool, datetime | None]]


@dataclass(frozen=True)
class Grant:
    rule: RewardRule
    recipient: Recipient  # REFERRER or REFEREE
    customer_id: uuid.UUID
    kind: RewardKind
    amount: int
    unit: str
    milestone: int | None
    hold_until: datetime | None


class Facts(Protocol):
    async def is_first_of_type(self, referral: Referral, action: Action) -> bool: ...
    async def already_rewarded(self, rule_id: uuid.UUID, referral_id: uuid.UUID, recipient: Recipient) -> bool: ...
    async def qualified_referrals(self, referrer_id: uuid.UUID, program_id: uuid.UUID, as_of: datetime) -> int: ...
    async def milestone_granted(self, rule_id: uuid.UUID, customer_id: uuid.UUID, milestone: int) -> bool: ...
    async def rewards_of_rule(self, rule_id: uuid.UUID, customer_id: uuid.UUID, since: datetime | None) -> int: ...
    async def budget_used(self, program_id: uuid.UUID, unit: str, since: datetime) -> int: ...


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def reward_value(rule: RewardRule, spec: RuleSpec, action: Action) -> tuple[int, str] | None:
    """(amount, unit) of the rule's reward for `action`, by its kind (app.rewards.kinds); None
    when a share of the action is nothing."""
    behaviour = kinds.behaviour_of(rule.kind)
    if behaviour.share_of_action(spec):
        if action.amount is None or action.currency is None:
            return None
        amount = action.amount * (rule_service.percent_in_force(spec, action.occurred_at) or 0) // 10_000
        return (amount, action.currency) if amount > 0 else None
    return behaviour.fixed_value(spec)


async def decide(rule: RewardRule, action: Action, referral: Referral, facts: Facts) -> list[Grant]:
    """What `rule` grants for `action` of `referral`; [] when a condition does not hold."""
    spec = rule_service.spec_of(rule)
    if referral.status == ReferralStatus.REJECTED or action.type != rule.trigger:
        return []
    if spec.min_action_amount is not None and (
        action.currency != spec.min_action_currency or (action.amount or 0) < spec.min_action_amount
    ):
        return []
    if spec.within_days_of_referral is not None and action.occurred_at > referral.created_at + timedelta(
        days=spec.within_days_of_referral
    ):
        return []
    if spec.recurring_months is not None and action.occurred_at >= add_months(referral.created_at, spec.recurring_months):
        return []
    if not all(f.matches(action.metadata_) for f in spec.metadata_filters):
        return []
    if spec.first_action_only and not await facts.is_first_of_type(referral, action):
        return []
    value = reward_value(rule, spec, action)
    if value is None:
        return []
    amount, unit = value
    kind = RewardKind(rule.kind)

    if spec.milestone is not None:
        reached = await facts.qualified_referrals(referral.referrer_id, referral.program_id, action.occurred_at)
        if reached < spec.milestone or await facts.milestone_granted(rule.rule_id, referral.referrer_id, spec.milestone):
            return []

    grants = []
    for role in Recipient(rule.recipient).roles():
        customer_id = referral.referrer_id if role is Recipient.REFERRER else referral.referee_id
        once = spec.milestone is None and spec.recurring_months is None
        if once and await facts.already_rewarded(rule.rule_id, referral.id, role):
            continue  # one reward per referral and recipient, unless the rule recurs
        if role is Recipient.REFERRER:
            lifetime_cap = spec.cap_per_referrer_lifetime
            if lifetime_cap is not None and await facts.rewards_of_rule(rule.rule_id, customer_id, None) >= lifetime_cap:
                continue
            if spec.cap_per_referrer_monthly is not None:
                since = month_start(action.occurred_at)
                if await facts.rewards_of_rule(rule.rule_id, customer_id, since) >= spec.cap_per_referrer_monthly:
                    continue
        if spec.program_monthly_budget is not None:
            used = await facts.budget_used(referral.program_id, unit, month_start(action.occurred_at))
            if used + amount > spec.program_monthly_budget:
                continue
        hold_until = action.occurred_at + timedelta(days=spec.hold_days) if spec.hold_days else None
        grants.append(Grant(rule, role, customer_id, kind, amount, unit, spec.milestone, hold_until))
    return grants


_MERCHANT = bindparam("merchant_id", type_=Uuid())
_QUALIFIED_COUNT = scoped(
    select(func.count(Referral.id)).where(
        Referral.referrer_id == bindparam("referrer_id"),
        Referral.program_id == bindparam("program_id"),
        Referral.status == ReferralStatus.QUALIFIED,
    ),
    _MERCHANT,
)
_REWARDED = scoped(
    select(Reward.rule_id, Reward.recipient).where(
        Reward.referral_id == bindparam("referral_id"), Reward.status.not_in(ENDED_WITHOUT_VALUE)
    ),
    _MERCHANT,
)

_EARLIER_OF_TYPE = scoped(
    select(Action.id).where(
        Action.customer_id == bindparam("customer_id"),
        Action.type == bindparam("type"),
        Action.id != bindparam("action_id"),
        Action.occurred_at <= bindparam("occurred_at"),
    ),
    _MERCHANT,
).limit(1)


def _milestone_granted(index: int) -> Any:
    """Whether the referrer (`referrer_id`) has the bonus of milestone rule number `index`
    (`milestone_rule_<i>`, `milestone_<i>`): a column of `_lock_statement`."""
    granted = select(Reward.id).where(
        Reward.rule_id == bindparam(f"milestone_rule_{index}", type_=Uuid()),
        Reward.customer_id == bindparam("referrer_id"),
        Reward.milestone == bindparam(f"milestone_{index}", type_=Integer()),
    )
    return scoped(granted, _MERCHANT).exists().label(f"milestone_granted_{index}")


_REWARDS_OF_RULE = scoped(
    select(func.count(Reward.id)).where(
        Reward.rule_id == bindparam("rule_id"),
        Reward.customer_id == bindparam("customer_id"),
        Reward.status.not_in(ENDED_WITHOUT_VALUE),
    ),
    _MERCHANT,
)
_REWARDS_OF_RULE_SINCE = _REWARDS_OF_RULE.where(Reward.created_at >= bindparam("since"))
_BUDGET_USED = scoped(
    select(money.total(Reward.amount - Reward.reversed_amount)).where(
        Reward.program_id == bindparam("program_id"),
        Reward.unit == bindparam("unit"),
        Reward.created_at >= bindparam("since"),
        Reward.status.not_in(ENDED_WITHOUT_VALUE),
    ),
    _MERCHANT,
)


class DatabaseFacts:
    """Facts from the database, inside the action's transaction."""

    def __init__(self, session: AsyncSession, merchant_id: uuid.UUID) -> None:
        self.session = session
        self.merchant_id = merchant_id
        self._rewarded: set[tuple[uuid.UUID, str]] | None = None
        self._planned_budget: dict[tuple[uuid.UUID, str], int] = {}
        self._qualified: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        self._milestones: dict[tuple[uuid.UUID, uuid.UUID, int], bool] = {}

    async def is_first_of_type(self, referral: Referral, action: Action) -> bool:
        parameters = {
            "customer_id": referral.referee_id,
            "type": action.type,
            "action_id": action.id,
            "occurred_at": action.occurred_at,
            "merchant_id": self.merchant_id,
        }
        return await self.session.scalar(_EARLIER_OF_TYPE, parameters) is None

    async def already_rewarded(self, rule_id: uuid.UUID, referral_id: uuid.UUID, recipient: Recipient) -> bool:
        """One query per evaluation: the referral is locked, so only our own grants add to it."""
        if self._rewarded is None:
            rows = await self.session.execute(_REWARDED, {"referral_id": referral_id, "merchant_id": self.merchant_id})
            self._rewarded = {(row.rule_id, row.recipient.value) for row in rows}
        return (rule_id, recipient.value) in self._rewarded

    def note_nothing_rewarded(self) -> None:
        self._rewarded = set()

    def note_planned(self, grant: Grant, program_id: uuid.UUID) -> None:
        """Grants decided but not inserted yet count like granted ones for the next rules."""
        if self._rewarded is not None:
            self._rewarded.add((grant.rule.rule_id, grant.recipient.value))
        self._planned_budget[(program_id, grant.unit)] = self._planned_budget.get((program_id, grant.unit), 0) + grant.amount

    async def qualified_referrals(self, referrer_id: uuid.UUID, program_id: uuid.UUID, as_of: datetime) -> int:
        if (referrer_id, program_id) in self._qualified:  # counted with the locks (evaluate_action)
            return self._qualified[(referrer_id, program_id)]
        parameters = {"referrer_id": referrer_id, "program_id": program_id, "merchant_id": self.merchant_id}
        return await self.session.scalar(_QUALIFIED_COUNT, parameters) or 0

    def note_qualified(self, referrer_id: uuid.UUID, program_id: uuid.UUID, count: int) -> None:
        self._qualified[(referrer_id, program_id)] = count

    async def milestone_granted(self, rule_id: uuid.UUID, customer_id: uuid.UUID, milestone: int) -> bool:
        """Read with the locks for every milestone rule of the evaluation (`evaluate_action`)."""
        return self._milestones[(rule_id, customer_id, milestone)]

    def note_milestone_granted(self, rule_id: uuid.UUID, customer_id: uuid.UUID, milestone: int, granted: bool) -> None:
        self._milestones[(rule_id, customer_id, milestone)] = granted

    async def rewards_of_rule(self, rule_id: uuid.UUID, customer_id: uuid.UUID, since: datetime | None) -> int:
        parameters = {"rule_id": rule_id, "customer_id": customer_id, "merchant_id": self.merchant_id}
        if since is None:
            return await self.session.scalar(_REWARDS_OF_RULE, parameters) or 0
        return await self.session.scalar(_REWARDS_OF_RULE_SINCE, {**parameters, "since": since}) or 0

    async def budget_used(self, program_id: uuid.UUID, unit: str, since: datetime) -> int:
        parameters = {"program_id": program_id, "unit": unit, "since": since, "merchant_id": self.merchant_id}
        used = await self.session.scalar(_BUDGET_USED, parameters)
        return self._planned_budget.get((program_id, unit), 0) + (used or 0)


@functools.cache
def _lock_statement(lock_referrer: bool, lock_program: bool, milestone_rules: int) -> Any:
    """One statement: the referral's row, the referrer's (caps, milestones) and the program's
    (budgets) locked in that order; for `milestone_rules` rules with a milestone, the
    referrer's qualified referrals counted and, per rule, whether the referrer has its bonus
    (`milestone_rule_<i>`, `milestone_<i>`). Built once per shape.

    The reads see the database as of the statement's start, before it waited for a lock:
    a concurrent purchase of the same referrer that granted a bonus meanwhile is not seen.
    Its reward's unique key (rule, customer, milestone) is: the grant that follows meets it
    and writes nothing (`granting.write_rewards`), so the bonus is granted once. The answer
    to the count is not stale in a way that grants more: it may count one referral fewer,
    and the bonus then goes with the referrer's next purchase. (Asked after the lock in a
    statement of its own, whether the bonus was granted cost a round trip on every purchase
    of a referrer past a milestone.)"""
    locked: list[type[Base]] = [Referral]
    columns: list[Any] = [Referral.id]
    query = select().select_from(Referral)
    if lock_referrer:
        query = query.join(Customer, Customer.id == Referral.referrer_id)
        locked.append(Customer)
    if lock_program:
        query = query.join(Program, Program.id == Referral.program_id)
        locked.append(Program)
    if milestone_rules:
        columns.append(_QUALIFIED_COUNT.scalar_subquery().label("qualified"))
    columns.extend(_milestone_granted(index) for index in range(milestone_rules))
    query = scoped(query.add_columns(*columns).where(Referral.id == bindparam("referral_id")), _MERCHANT)
    return query.with_for_update(key_share=True, of=locked)


async def evaluate_action(
    session: AsyncSession,
    *,
    action: Action,
    referral: Referral,
    screen: Screen | None = None,
    clearance: Callable[[], Awaitable[ClearanceWait]] | None = None,
    referral_is_new: bool = False,
) -> list[Reward]:
    """Grant what the program's current rules give for this action, exactly once.

    `screen` (the fraud check, see app.fraud.engine) runs before the first grant: BLOCK
    grants nothing, REVIEW grants everything HELD until a reviewer decides. `referral_is_new`:
    the referral was created in this transaction (no reward can point at it yet).

    Runs in the action's transaction. The referral row is locked first, so two actions of
    one referral are evaluated one after the other; caps and budgets lock the referrer and
    the program rows as well. The unique keys on rewards are the last line of defence.
    """
    candidates = await rule_service.active_rules_for_trigger(
        session, merchant_id=referral.merchant_id, program_id=referral.program_id, trigger=action.type
    )
    if not candidates:
        return []
    # FOR NO KEY UPDATE (key_share): these locks serialise evaluations, but must not wait for
    # the KEY SHARE locks that inserting an action or a reward pointing at the row takes. Plain
    # FOR UPDATE does, and concurrent purchases of one referral deadlocked on it.
    specs = [rule_service.spec_of(rule) for rule in candidates]
    facts = DatabaseFacts(session, referral.merchant_id)
    if referral_is_new:  # made by this transaction: nobody else can have rewarded it yet
        facts.note_nothing_rewarded()
    milestones = [(rule.rule_id, spec.milestone) for rule, spec in zip(candidates, specs, strict=True) if spec.milestone]
    lock = _lock_statement(
        any(s.cap_per_referrer_monthly or s.cap_per_referrer_lifetime or s.milestone for s in specs),
        any(s.program_monthly_budget for s in specs),
        len(milestones),
    )
    parameters: dict[str, Any] = {
        "referral_id": referral.id,
        "referrer_id": referral.referrer_id,
        "program_id": referral.program_id,
        "merchant_id": referral.merchant_id,
    }
    for index, (rule_id, milestone) in enumerate(milestones):
        parameters |= {f"milestone_rule_{index}": rule_id, f"milestone_{index}": milestone}
    row = (await session.execute(lock, parameters)).one()
    if milestones:
        facts.note_qualified(referral.referrer_id, referral.program_id, row.qualified or 0)
    for index, (rule_id, milestone) in enumerate(milestones):
        facts.note_milestone_granted(rule_id, referral.referrer_id, milestone, bool(getattr(row, f"milestone_granted_{index}")))
    planned: list[tuple[Grant, RuleSpec]] = []
    for rule, spec in zip(candidates, specs, strict=True):
        for grant in await decide(rule, action, referral, facts):
            facts.note_planned(grant, referral.program_id)
            planned.append((grant, spec))
    if not planned:
        return []
    # The fraud check runs once, with this action's evidence, before anything is granted.
    screening = await screen() if screen is not None else Screening.GRANT
    if screening is Screening.SKIP:
        return []
    clearance_wait = await clearance() if clearance is not None else None
    granted = await _insert_rewards(
        session, planned, action, referral, review_hold=screening is Screening.HOLD, clearance_wait=clearance_wait
    )
    rewards = [reward for reward, _spec in granted]
    await notify.reward_events(
        session,
        [(webhook_events.REWARD_GRANTED, reward) for reward in rewards]
        + [(webhook_events.REWARD_AVAILABLE, reward) for reward in rewards if reward.status == RewardStatus.AVAILABLE],
    )
    return rewards


async def _insert_rewards(
    session: AsyncSession,
    planned: list[tuple[Grant, RuleSpec]],
    action: Action,
    referral: Referral,
    *,
    review_hold: bool,
    clearance_wait: ClearanceWait | None,
) -> list[tuple[Reward, RuleSpec]]:
    """All the action's rewards, booked (app.rewards.granting); a grant that meets an existing
    reward (a concurrent retry won the unique key) is skipped."""
    now = utcnow()
    rows = [
        reward_row(
            grant,
            spec,
            action,
            referral,
            now,
            review_hold=review_hold,
            clearance_wait=clearance_wait(grant.recipient, grant.kind) if clearance_wait else (False, None),
        )
        for grant, spec in planned
    ]
    return await granting.write_rewards(session, rows, [spec for _grant, spec in planned])


def reward_row(
    grant: Grant,
    spec: RuleSpec,
    action: Action,
    referral: Referral,
    now: datetime,
    *,
    review_hold: bool,
    clearance_wait: tuple[bool, datetime | None],
) -> dict:
    """Every column of the reward `grant` makes, granted at `now` (what `granting.write_rewards`
    takes; `bench/suite.py` writes the seeded purchases' rewards with it too)."""
    clearance_hold, clearance_due_at = clearance_wait
    held = review_hold or clearance_hold or (grant.hold_until is not None and grant.hold_until > now)
    available_now = {} if held else lifecycle.availability(grant.kind, grant.amount, spec, now)
    return dict(
        id=new_id(),
        merchant_id=referral.merchant_id,
        program_id=referral.program_id,
        rule_id=grant.rule.rule_id,
        rule_version_id=grant.rule.id,
        referral_id=referral.id,
        trigger_action_id=action.id,
        recipient=grant.recipient.value,
        customer_id=grant.customer_id,
        kind=grant.kind.value,
        amount=grant.amount,
        unit=grant.unit,
        reversed_amount=0,
        **{"remaining": 0, **available_now},
        status=(RewardStatus.HELD if held else RewardStatus.AVAILABLE).value,
        milestone=grant.milestone,
        hold_until=grant.hold_until,
        review_hold=review_hold,
        clearance_hold=clearance_hold,
        clearance_due_at=clearance_due_at,
        leaked_amount=0,
        awaiting_coupon=False,
        created_at=now,
        source="RULE",
        grant_key=None,
        ended_at=None,
        end_reason=None,
        **{name: None for name in _OPTIONAL_REWARD_COLUMNS if name not in available_now},
    )


# Every row of a multi-row INSERT must name the same columns.
_OPTIONAL_REWARD_COLUMNS = ("available_at", "expires_at")
