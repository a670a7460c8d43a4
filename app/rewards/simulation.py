"""Pricing a rule change before making it: replay recorded actions against proposed rules.

`simulate` takes the program's recorded actions in a period and runs each proposed rule over
them with the same `evaluation.decide` the live path uses, answering its `Facts` from memory
instead of from the rewards table. Beside that it reports what the rules in force really
granted for the same actions, so a merchant sees "what it would have cost" next to "what it
cost".

What is replayed, and how it differs from live evaluation:

- Actions of the program's referrals with `start <= occurred_at < end`, in `occurred_at`
  order (ties in id, i.e. recording, order), except REFUND / CANCELLATION: live evaluation
  never grants on them, and refunds are **not replayed**, so a proposed reward is never
  voided or reversed here (and a referral whose reward a refund voided is not rewarded
  again by a later purchase, which live evaluation would do).
- Rewards of the proposed rules count for "already rewarded", caps, budgets and milestones
  from the start of the period; rewards granted before `start`, and the current rules'
  rewards, do not (the proposed rules are priced as if they had started at `start`). A
  program budget therefore counts only the proposed rules' rewards.
- A proposed reward is dated at its action's `occurred_at`; live, caps and budgets count
  by the time the reward was recorded. The two agree when actions are reported promptly.
- A milestone counts the referrer's referrals that are QUALIFIED now and qualified at or
  before the action (`qualified_at`); "first action of the type" looks at all stored
  actions of the referee, including ones reported after the action took place.
- Referral statuses are today's: a referral rejected since is not rewarded.
- A proposed rule with `enabled: false` grants nothing, as it would live.

It writes nothing: the proposed rules are transient `RewardRule` objects, never added to
the session; the replay runs with autoflush off and never flushes; the caller's
transaction is only read from and is rolled back (the GraphQL query never commits).
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.db import new_id
from app.errors import DomainError, ErrorCode
from app.referrals import programs
from app.referrals.models import REVERSING_TYPES, Action, Referral, ReferralStatus
from app.rewards import rules as rule_service
from app.rewards.evaluation import Grant, decide
from app.rewards.models import Recipient, Reward, RewardKind, RewardRule, RewardStatus
from app.rewards.rules import RuleDefinition

MAX_RULES = 20
MAX_PERIOD = timedelta(days=366)
MAX_ACTIONS = 100_000  # ~80 µs each: a request stays under ~10 s of one connection
CHUNK = 1000  # actions fetched at a time while replaying


@dataclass(frozen=True)
class Total:
    kind: RewardKind
    unit: str
    amount: int  # sum of the rewards' amounts (for a percent-off DISCOUNT, of their basis points)
    count: int


@dataclass(frozen=True)
class SimulatedRule:
    index: int  # position in the proposed rules
    name: str
    count: int  # rewards it would have granted
    referrer_count: int
    referee_count: int
    totals: list[Total]


@dataclass(frozen=True)
class CurrentRule:
    rule_id: uuid.UUID
    name: str  # of the newest version that granted rewards for these actions
    count: int  # every reward, whatever became of it
    voided_count: int
    reversed_count: int
    totals: list[Total]  # gross: amounts as granted


@dataclass(frozen=True)
class SimulationResult:
    actions_replayed: int
    proposed: list[SimulatedRule]
    proposed_totals: list[Total]
    current: list[CurrentRule]
    current_totals: list[Total]


class _Tally:
    """Rewards counted per (kind, unit)."""

    def __init__(self) -> None:
        self.amounts: dict[tuple[RewardKind, str], int] = defaultdict(int)
        self.counts: dict[tuple[RewardKind, str], int] = defaultdict(int)

    def add(self, kind: RewardKind, unit: str, amount: int, count: int = 1) -> None:
        self.amounts[(kind, unit)] += amount
        self.counts[(kind, unit)] += count

    def merge(self, other: _Tally) -> None:
        for key, amount in other.amounts.items():
            self.add(key[0], key[1], amount, other.counts[key])

    def totals(self) -> list[Total]:
        return [
            Total(kind=kind, unit=unit, amount=self.amounts[(kind, unit)], count=self.counts[(kind, unit)])
            for kind, unit in sorted(self.amounts, key=lambda key: (key[0].value, key[1]))
        ]


@dataclass
class _RuleTally:
    index: int
    rule: RewardRule
    count: int = 0
    referrer_count: int = 0
    referee_count: int = 0
    tally: _Tally = field(default_factory=_Tally)


class SimulatedFacts:
    """`Facts` from the simulation's own grants, plus what preloaded rows say about the past.

    `first_actions` maps (customer, action type) to the earliest `occurred_at` of that
    customer's actions of the type and how many actions share it; `qualified` maps a referrer
    to the sorted `qualified_at` of their qualified referrals in the program.
    """

    def __init__(
        self,
        program_id: uuid.UUID,
        first_actions: dict[tuple[uuid.UUID, str], tuple[datetime, int]],
        qualified: dict[uuid.UUID, list[datetime]],
    ) -> None:
        self.program_id = program_id
        self.first_actions = first_actions
        self.qualified = qualified
        self.rewarded: set[tuple[uuid.UUID, uuid.UUID, Recipient]] = set()
        self.milestones: set[tuple[uuid.UUID, uuid.UUID, int]] = set()
        self.reward_times: dict[tuple[uuid.UUID, uuid.UUID], list[datetime]] = defaultdict(list)
        # per unit: grant times (non-decreasing: actions replay in time order) and running sums
        self.budget_times: dict[str, list[datetime]] = defaultdict(list)
        self.budget_sums: dict[str, list[int]] = defaultdict(lambda: [0])

    def record(self, grant: Grant, referral: Referral, at: datetime) -> None:
        rule_id = grant.rule.rule_id
        self.rewarded.add((rule_id, referral.id, grant.recipient))
        if grant.milestone is not None:
            self.milestones.add((rule_id, grant.customer_id, grant.milestone))
        self.reward_times[(rule_id, grant.customer_id)].append(at)
        self.budget_times[grant.unit].append(at)
        sums = self.budget_sums[grant.unit]
        sums.append(sums[-1] + grant.amount)

    async def is_first_of_type(self, referral: Referral, action: Action) -> bool:
        # Live: no other action of the referee's of this type with occurred_at <= this one's.
        found = self.first_actions.get((referral.referee_id, action.type))
        if found is None:
            return True
        first_at, at_first = found
        if first_at < action.occurred_at:
            return False
        if first_at > action.occurred_at:
            return True
        others = at_first - (1 if action.customer_id == referral.referee_id else 0)
        return others == 0

    async def already_rewarded(self, rule_id: uuid.UUID, referral_id: uuid.UUID, recipient: Recipient) -> bool:
        return (rule_id, referral_id, recipient) in self.rewarded

    async def qualified_referrals(self, referrer_id: uuid.UUID, program_id: uuid.UUID, as_of: datetime) -> int:
        assert program_id == self.program_id
        return bisect_right(self.qualified.get(referrer_id, []), as_of)

    async def milestone_granted(self, rule_id: uuid.UUID, customer_id: uuid.UUID, milestone: int) -> bool:
        return (rule_id, customer_id, milestone) in self.milestones

    async def rewards_of_rule(self, rule_id: uuid.UUID, customer_id: uuid.UUID, since: datetime | None) -> int:
        times = self.reward_times.get((rule_id, customer_id), [])
        return len(times) if since is None else len(times) - bisect_left(times, since)

    async def budget_used(self, program_id: uuid.UUID, unit: str, since: datetime) -> int:
        assert program_id == self.program_id
        times, sums = self.budget_times.get(unit, []), self.budget_sums.get(unit, [0])
        return sums[-1] - sums[bisect_left(times, since)]


def _validated_rules(definitions: Sequence[RuleDefinition]) -> list[RuleDefinition]:
    if len(definitions) > MAX_RULES:
        raise DomainError("rules", ErrorCode.INVALID_INPUT, f"at most {MAX_RULES} rules at a time")
    checked = []
    for index, definition in enumerate(definitions):
        try:
            checked.append(rule_service.validate_definition(definition))
        except DomainError as error:
            prefix = f"rules.{index}"
            raise DomainError(
                f"{prefix}.{error.field}" if error.field else prefix, error.code, f"rule {index}: {error.message}"
            ) from None
    return checked


def _validated_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start = validation.aware(start, "from")
    end = validation.aware(end, "to")
    if start is None or end is None:
        raise DomainError("from" if start is None else "to", ErrorCode.REQUIRED, "the period needs from and to")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to must be after from")
    if end - start > MAX_PERIOD:
        raise DomainError("to", ErrorCode.INVALID_INPUT, f"the period is at most {MAX_PERIOD.days} days")
    return start, end


def _transient_rule(merchant_id: uuid.UUID, program_id: uuid.UUID, definition: RuleDefinition) -> RewardRule:
    """A rule version as `create_rule` would make it, never added to the session."""
    # UUIDv7: in index order, as live evaluation orders rules by rule_id
    return rule_service.rule_version(new_id(), 1, merchant_id, program_id, definition)


def _replay_conditions(merchant_id: uuid.UUID, program_id: uuid.UUID, start: datetime, end: datetime) -> list:
    """Actions replayed, on `Action` joined to its `Referral`."""
    return [
        Action.merchant_id == merchant_id,
        Referral.merchant_id == merchant_id,
        Referral.program_id == program_id,
        Action.occurred_at >= start,
        Action.occurred_at < end,
        Action.type.not_in(REVERSING_TYPES),
    ]


async def _first_actions(
    session: AsyncSession, conditions: list, types: set[str]
) -> dict[tuple[uuid.UUID, str], tuple[datetime, int]]:
    """For the referees of the replayed actions: their earliest action of each type, and how
    many actions share that moment (all their actions, not only the program's: as live)."""
    if not types:
        return {}
    referees = (
        select(Referral.referee_id).join(Action, Action.referral_id == Referral.id).where(*conditions, Action.type.in_(types))
    )
    firsts = (
        select(Action.customer_id, Action.type, func.min(Action.occurred_at).label("first_at"))
        .where(Action.customer_id.in_(referees), Action.type.in_(types))
        .group_by(Action.customer_id, Action.type)
        .subquery()
    )
    rows = await session.execute(
        select(firsts.c.customer_id, firsts.c.type, firsts.c.first_at, func.count(Action.id))
        .join(
            Action,
            and_(
                Action.customer_id == firsts.c.customer_id,
                Action.type == firsts.c.type,
                Action.occurred_at == firsts.c.first_at,
            ),
        )
        .group_by(firsts.c.customer_id, firsts.c.type, firsts.c.first_at)
    )
    return {(customer_id, type_): (first_at, count) for customer_id, type_, first_at, count in rows}


async def _qualified(session: AsyncSession, conditions: list, program_id: uuid.UUID) -> dict[uuid.UUID, list[datetime]]:
    """For the referrers of the replayed actions: when each of their program's referrals that
    are QUALIFIED now qualified."""
    referrers = select(Referral.referrer_id).join(Action, Action.referral_id == Referral.id).where(*conditions)
    rows = await session.execute(
        select(Referral.referrer_id, Referral.qualified_at).where(
            Referral.program_id == program_id,
            Referral.status == ReferralStatus.QUALIFIED,
            Referral.referrer_id.in_(referrers),
        )
    )
    qualified: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for referrer_id, qualified_at in rows:
        qualified[referrer_id].append(qualified_at or datetime.min.replace(tzinfo=UTC))
    for times in qualified.values():
        times.sort()
    return qualified


async def _replay(session: AsyncSession, conditions: list, tallies: list[_RuleTally], facts: SimulatedFacts) -> int:
    """Evaluate every proposed rule on each action, in time order; returns the actions seen.

    One query, streamed in partitions (a server-side cursor on PostgreSQL): memory stays
    bounded and the sort runs once. Nothing else uses the session meanwhile: the facts are
    in memory."""
    replayed = 0
    query = (
        select(Action, Referral)
        .join(Referral, Action.referral_id == Referral.id)
        .where(*conditions)
        .order_by(Action.occurred_at, Action.id)
        .execution_options(yield_per=CHUNK)
    )
    result = await session.stream(query)
    try:
        async for partition in result.partitions():
            for action, referral in partition:
                replayed += 1
                if replayed > MAX_ACTIONS:
                    raise DomainError(
                        "from",
                        ErrorCode.INVALID_INPUT,
                        f"more than {MAX_ACTIONS} actions in the period; simulate a shorter one",
                    )
                for tally in tallies:
                    for grant in await decide(tally.rule, action, referral, facts):
                        facts.record(grant, referral, action.occurred_at)
                        tally.count += 1
                        if grant.recipient is Recipient.REFERRER:
                            tally.referrer_count += 1
                        else:
                            tally.referee_count += 1
                        tally.tally.add(grant.kind, grant.unit, grant.amount)
    finally:
        await result.close()
    return replayed


async def _current(session: AsyncSession, merchant_id: uuid.UUID, program_id: uuid.UUID, conditions: list) -> list[CurrentRule]:
    """What the rules in force really granted for the replayed actions, per rule."""
    replayed_ids = select(Action.id).join(Referral, Action.referral_id == Referral.id).where(*conditions)
    scope = (
        Reward.merchant_id == merchant_id,
        Reward.program_id == program_id,
        Reward.trigger_action_id.in_(replayed_ids),
    )
    rows = await session.execute(
        select(
            Reward.rule_id,
            Reward.kind,
            Reward.unit,
            func.count(Reward.id),
            money.total(Reward.amount),
            money.total(case((Reward.status == RewardStatus.VOIDED, 1), else_=0)),
            money.total(case((Reward.status == RewardStatus.REVERSED, 1), else_=0)),
        )
        .where(*scope)
        .group_by(Reward.rule_id, Reward.kind, Reward.unit)
    )
    tallies: dict[uuid.UUID, _Tally] = defaultdict(_Tally)
    ended: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for rule_id, kind, unit, count, amount, voided, reversed_ in rows:
        if rule_id is None:
            continue  # a campaign's or a partner sale's reward names the action but no rule
        tallies[rule_id].add(RewardKind(kind), unit, int(amount or 0), int(count))
        ended[rule_id][0] += int(voided or 0)
        ended[rule_id][1] += int(reversed_ or 0)
    if not tallies:
        return []
    versions = await session.execute(
        select(RewardRule.rule_id, RewardRule.version, RewardRule.name).where(
            RewardRule.id.in_(select(Reward.rule_version_id).where(*scope))
        )
    )
    names: dict[uuid.UUID, tuple[int, str]] = {}
    for rule_id, version, name in versions:
        if rule_id not in names or version > names[rule_id][0]:
            names[rule_id] = (version, name)
    return [
        CurrentRule(
            rule_id=rule_id,
            name=names[rule_id][1] if rule_id in names else "",
            count=sum(tally.counts.values()),
            voided_count=ended[rule_id][0],
            reversed_count=ended[rule_id][1],
            totals=tally.totals(),
        )
        for rule_id, tally in sorted(tallies.items())
    ]


async def simulate(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    definitions: Sequence[RuleDefinition],
    start: datetime,
    end: datetime,
) -> SimulationResult:
    """What `definitions` would have granted for the program's actions in [start, end),
    next to what the current rules granted for them. Writes nothing; see the module doc
    for how the replay differs from live evaluation (refunds are not replayed)."""
    checked = [await rule_service.with_merchant_time_zone(session, merchant_id, d) for d in _validated_rules(definitions)]
    start, end = _validated_period(start, end)
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)

    tallies = [_RuleTally(index, _transient_rule(merchant_id, program_id, d)) for index, d in enumerate(checked)]
    active = [t for t in tallies if t.rule.enabled]
    specs = [rule_service.spec_of(t.rule) for t in active]
    conditions = _replay_conditions(merchant_id, program_id, start, end)
    with session.no_autoflush:
        first_types = {t.rule.trigger for t, spec in zip(active, specs, strict=True) if spec.first_action_only}
        first_actions = await _first_actions(session, conditions, first_types)
        qualified = await _qualified(session, conditions, program_id) if any(s.milestone for s in specs) else {}
        facts = SimulatedFacts(program_id, first_actions, qualified)
        replayed = await _replay(session, conditions, active, facts)
        current = await _current(session, merchant_id, program_id, conditions)

    proposed_total, current_total = _Tally(), _Tally()
    for tally in tallies:
        proposed_total.merge(tally.tally)
    for rule in current:
        for total in rule.totals:
            current_total.add(total.kind, total.unit, total.amount, total.count)
    return SimulationResult(
        actions_replayed=replayed,
        proposed=[
            SimulatedRule(
                index=t.index,
                name=t.rule.name,
                count=t.count,
                referrer_count=t.referrer_count,
                referee_count=t.referee_count,
                totals=t.tally.totals(),
            )
            for t in tallies
        ],
        proposed_totals=proposed_total.totals(),
        current=current,
        current_totals=current_total.totals(),
    )
