"""Reward rules: what a referral pays, to whom, and when. Versioned: a change adds a version."""

from __future__ import annotations

import re
import uuid
import weakref
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import calendars, config_cache, money, validation
from app.db import merchant_rows, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.merchants.models import LocaleSettings
from app.referrals import programs
from app.referrals.models import Program, ProgramType
from app.rewards import kinds
from app.rewards.models import CouponPool, Recipient, RewardKind, RewardRule
from app.tenancy import merchant_is, scoped

_ACTION_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_BPS = 10_000  # 100 %


@dataclass(frozen=True)
class MetadataFilter:
    """`metadata[key]` must be (IN) or must not be (NOT_IN) one of `values`."""

    key: str
    op: str  # IN | NOT_IN
    values: tuple[str, ...]

    def matches(self, metadata: dict[str, Any] | None) -> bool:
        value = (metadata or {}).get(self.key)
        found = value is not None and str(value) in self.values
        return found if self.op == "IN" else not found


@dataclass(frozen=True)
class Season:
    """A commission rate in force from `starts_on` to `ends_on` (both days included), in the
    merchant's time zone at the time the rule was saved (`RuleSpec.season_time_zone`)."""

    starts_on: date
    ends_on: date
    percent_bps: int

    def to_json(self) -> dict[str, Any]:
        return {"starts_on": self.starts_on.isoformat(), "ends_on": self.ends_on.isoformat(), "percent_bps": self.percent_bps}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Season:
        return cls(date.fromisoformat(data["starts_on"]), date.fromisoformat(data["ends_on"]), data["percent_bps"])


MAX_SEASONS = 24


@dataclass(frozen=True)
class RuleSpec:
    """The reward and its conditions. Stored as JSON on the rule version."""

    # The reward
    amount: int | None = None  # CREDIT/COMMISSION/DISCOUNT fixed, in minor units; POINTS in points
    currency: str | None = None
    percent_bps: int | None = None  # COMMISSION: share of the action's amount; DISCOUNT: percent off
    coupon_pool_id: str | None = None  # DISCOUNT: take codes from this pool instead of generating them
    coupon_min_order_amount: int | None = None
    recurring_months: int | None = None  # COMMISSION: on every trigger for N months after the referral
    # Conditions
    min_action_amount: int | None = None  # in the action's currency, which must be `min_action_currency`
    min_action_currency: str | None = None
    first_action_only: bool = False  # only the referee's first action of the trigger type
    within_days_of_referral: int | None = None
    metadata_filters: tuple[MetadataFilter, ...] = ()
    milestone: int | None = None  # the referrer's Nth qualified referral (REFERRER only)
    cap_per_referrer_monthly: int | None = None  # rewards of this rule per referrer per calendar month
    cap_per_referrer_lifetime: int | None = None
    program_monthly_budget: int | None = None  # total of the program's rewards in this unit per month
    hold_days: int = 0  # stays HELD this long (the refund window)
    expires_in_days: int | None = None  # credit, points and coupons expire this long after becoming available
    # COMMISSION with percent_bps: other rates for date ranges (a sale outside every season earns percent_bps)
    seasons: tuple[Season, ...] = ()
    season_time_zone: str | None = None  # the merchant's, when the seasons were set

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metadata_filters"] = [asdict(f) | {"values": list(f.values)} for f in self.metadata_filters]
        data["seasons"] = [season.to_json() for season in self.seasons]
        if not self.seasons:  # rules without seasons store what they stored before
            del data["seasons"], data["season_time_zone"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleSpec:
        filters = tuple(
            MetadataFilter(key=f["key"], op=f["op"], values=tuple(f["values"])) for f in data.get("metadata_filters", [])
        )
        seasons = tuple(Season.from_json(s) for s in data.get("seasons", []))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("metadata_filters", "seasons")}
        return cls(**known, metadata_filters=filters, seasons=seasons)


@dataclass(frozen=True)
class RuleDefinition:
    name: str
    trigger: str
    recipient: Recipient
    kind: RewardKind
    spec: RuleSpec = field(default_factory=RuleSpec)
    enabled: bool = True


def _positive(value: int | None, name: str, high: int = money.MAX_AMOUNT) -> int | None:
    return validation.int_range(value, name, 1, high)


def validate_definition(definition: RuleDefinition) -> RuleDefinition:
    """Check a rule as a whole; errors name the input field (`spec.amount`, ...)."""
    name = validation.required_text(definition.name, "name", 200)
    trigger = validation.required_text(definition.trigger, "trigger", 64).upper()
    if not _ACTION_TYPE.match(trigger):
        raise DomainError("trigger", ErrorCode.INVALID_INPUT, "trigger is an action type such as PURCHASE")
    spec = definition.spec
    kind = definition.kind
    currency = money.currency(spec.currency, "currency")
    amount = _positive(spec.amount, "amount")
    percent = validation.int_range(spec.percent_bps, "percentBps", 1, MAX_BPS)

    def refuse(field_name: str, message: str) -> DomainError:
        return DomainError(field_name, ErrorCode.INVALID_INPUT, message)

    # What the kind needs and what does not belong (app.rewards.kinds). The error names the
    # field at fault: the one missing, or the one that does not belong.
    behaviour = kinds.behaviour_of(kind)
    needs = f"{kind.value} needs {behaviour.value.value}"
    if behaviour.value is kinds.Value.MONEY and (amount is None or currency is None or percent is not None):
        raise refuse("amount" if amount is None else "currency" if currency is None else "percentBps", needs)
    if behaviour.value is kinds.Value.POINTS and (amount is None or currency is not None or percent is not None):
        raise refuse("amount" if amount is None else "currency" if currency is not None else "percentBps", needs)
    if behaviour.no_expiry is not None and spec.expires_in_days is not None:
        raise refuse("conditions.expiresInDays", behaviour.no_expiry)
    if behaviour.value is kinds.Value.MONEY_OR_PERCENT:
        if (amount is None) == (percent is None):
            raise refuse("amount", needs)
        if amount is not None and currency is None:
            raise refuse("currency", "a fixed amount needs a currency")
    if spec.recurring_months is not None and not behaviour.recurs:
        raise refuse("recurringMonths", f"only {kinds.spoken(kinds.kinds_where(lambda b: b.recurs))} rewards recur")
    if spec.coupon_pool_id is not None and not behaviour.uses_coupon_pools:
        pooled = kinds.spoken(kinds.kinds_where(lambda b: b.uses_coupon_pools))
        raise refuse("couponPoolId", f"only {pooled} rewards use coupon pools")
    if spec.milestone is not None and definition.recipient is not Recipient.REFERRER:
        raise refuse("conditions.milestone", "milestones reward the referrer")
    if (spec.min_action_amount is None) != (spec.min_action_currency is None):
        raise refuse("conditions.minActionAmount", "a minimum action amount needs its currency")
    if spec.program_monthly_budget is not None and not behaviour.budgeted:
        budgeted = kinds.spoken(kinds.kinds_where(lambda b: b.budgeted), lower=True)
        raise refuse("conditions.programMonthlyBudget", f"budgets apply to {budgeted}")
    filters = tuple(
        MetadataFilter(
            key=validation.required_text(f.key, "conditions.metadataFilters.key", 100),
            op=f.op if f.op in ("IN", "NOT_IN") else _raise(refuse("conditions.metadataFilters.op", "op is IN or NOT_IN")),
            values=tuple(validation.required_text(v, "conditions.metadataFilters.values", 200) for v in f.values),
        )
        for f in spec.metadata_filters
    )
    if len(filters) > 20:
        raise refuse("conditions.metadataFilters", "at most 20 filters")
    pool_id = str(validation.parse_id(spec.coupon_pool_id, "couponPoolId")) if spec.coupon_pool_id else None
    checked = replace(
        spec,
        amount=amount,
        currency=currency,
        percent_bps=percent,
        coupon_pool_id=pool_id,
        coupon_min_order_amount=validation.int_range(spec.coupon_min_order_amount, "couponMinOrderAmount", 0, money.MAX_AMOUNT),
        recurring_months=validation.int_range(spec.recurring_months, "recurringMonths", 1, 120),
        min_action_amount=validation.int_range(spec.min_action_amount, "conditions.minActionAmount", 0, money.MAX_AMOUNT),
        min_action_currency=money.currency(spec.min_action_currency, "conditions.minActionCurrency"),
        within_days_of_referral=validation.int_range(spec.within_days_of_referral, "conditions.withinDaysOfReferral", 1, 3650),
        metadata_filters=filters,
        milestone=validation.int_range(spec.milestone, "conditions.milestone", 1, 100_000),
        cap_per_referrer_monthly=_positive(spec.cap_per_referrer_monthly, "conditions.capPerReferrerMonthly", 1_000_000),
        cap_per_referrer_lifetime=_positive(spec.cap_per_referrer_lifetime, "conditions.capPerReferrerLifetime", 1_000_000),
        program_monthly_budget=_positive(spec.program_monthly_budget, "conditions.programMonthlyBudget"),
        hold_days=validation.int_range(spec.hold_days, "conditions.holdDays", 0, 365) or 0,
        expires_in_days=validation.int_range(spec.expires_in_days, "conditions.expiresInDays", 1, 3650),
        seasons=_validated_seasons(tuple(spec.seasons), kind, percent),
    )
    return RuleDefinition(
        name=name, trigger=trigger, recipient=definition.recipient, kind=kind, spec=checked, enabled=definition.enabled
    )


def _raise(error: Exception) -> Any:
    raise error


_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def percent_in_force(spec: RuleSpec, at: datetime) -> int | None:
    """The rule's percentage for an action that occurred at `at`: its season's, if the local
    day (in the rule's time zone) falls in one, else the rule's own."""
    if spec.seasons and spec.season_time_zone:
        local_day = at.astimezone(calendars.time_zone(spec.season_time_zone)).date()
        for season in spec.seasons:
            if season.starts_on <= local_day <= season.ends_on:
                return season.percent_bps
    return spec.percent_bps


def _validated_seasons(seasons: tuple[Season, ...], kind: RewardKind, percent_bps: int | None) -> tuple[Season, ...]:
    """Seasons belong to percentage commissions, each with a rate, and never overlap."""
    if not seasons:
        return ()
    if not kinds.behaviour_of(kind).has_seasons or percent_bps is None:
        seasonal = kinds.spoken(kinds.kinds_where(lambda b: b.has_seasons))
        raise DomainError("seasons", ErrorCode.INVALID_INPUT, f"seasons give percentage {seasonal} rules other rates")
    if len(seasons) > MAX_SEASONS:
        raise DomainError("seasons", ErrorCode.TOO_MANY, f"at most {MAX_SEASONS} seasons")
    for index, season in enumerate(seasons):
        validation.int_range(season.percent_bps, f"seasons.{index}.percentBps", 1, MAX_BPS)
        if season.ends_on < season.starts_on:
            raise DomainError(f"seasons.{index}.endsOn", ErrorCode.INVALID_INPUT, "a season ends on or after the day it starts")
    order = sorted(range(len(seasons)), key=lambda i: seasons[i].starts_on)
    for earlier, later in zip(order, order[1:], strict=False):
        if seasons[later].starts_on <= seasons[earlier].ends_on:
            raise DomainError(
                f"seasons.{later}.startsOn",
                ErrorCode.INVALID_INPUT,
                f"seasons overlap: {seasons[earlier].starts_on}..{seasons[earlier].ends_on} and "
                f"{seasons[later].starts_on}..{seasons[later].ends_on}",
            )
    ordered = [seasons[i] for i in order]
    return tuple(ordered)


async def with_merchant_time_zone(session: AsyncSession, merchant_id: uuid.UUID, definition: RuleDefinition) -> RuleDefinition:
    """Seasons are days in the merchant's time zone: kept with them, so a later change of the
    merchant's zone does not move a season that was already agreed (a copy of a version, such as
    `set_rule_enabled` makes, keeps its zone)."""
    if not definition.spec.seasons or definition.spec.season_time_zone is not None:
        return definition
    zone = await session.scalar(select(LocaleSettings.time_zone).where(LocaleSettings.merchant_id == merchant_id))
    return replace(definition, spec=replace(definition.spec, season_time_zone=zone or "UTC"))


def spec_of(rule: RewardRule) -> RuleSpec:
    """The rule's spec, parsed once per loaded rule (the cached rules of app.config_cache are
    read by every action); a rule given another spec is parsed again."""
    found = _SPECS.get(rule)
    if found is not None and found[0] is rule.spec:
        return found[1]
    spec = RuleSpec.from_json(rule.spec)
    _SPECS[rule] = (rule.spec, spec)
    return spec


async def _require_pool(session: AsyncSession, merchant_id: uuid.UUID, program_id: uuid.UUID, spec: RuleSpec) -> None:
    """A rule hands out codes only from a pool of its own merchant and program."""
    if spec.coupon_pool_id is None:
        return
    pool_id = await session.scalar(
        select(CouponPool.id).where(
            CouponPool.id == uuid.UUID(spec.coupon_pool_id),
            CouponPool.merchant_id == merchant_id,
            CouponPool.program_id == program_id,
        )
    )
    if pool_id is None:
        raise NotFound("couponPoolId", "coupon pool")


def rule_version(
    rule_id: uuid.UUID, version: int, merchant_id: uuid.UUID, program_id: uuid.UUID, d: RuleDefinition
) -> RewardRule:
    """A rule version object (not yet added to a session; the simulation never adds it)."""
    return RewardRule(
        id=new_id() if version > 1 else rule_id,
        rule_id=rule_id,
        version=version,
        merchant_id=merchant_id,
        program_id=program_id,
        name=d.name,
        enabled=d.enabled,
        trigger=d.trigger,
        recipient=d.recipient.value,
        kind=d.kind.value,
        spec=d.spec.to_json(),
        created_at=utcnow(),
    )


async def create_rule(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, definition: RuleDefinition
) -> RewardRule:
    definition = await with_merchant_time_zone(session, merchant_id, validate_definition(definition))
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    await _require_pool(session, merchant_id, program_id, definition.spec)
    rule_id = new_id()
    rule = rule_version(rule_id, 1, merchant_id, program_id, definition)
    session.add(rule)
    await session.flush()
    return rule


async def current_rule(
    session: AsyncSession, *, merchant_id: uuid.UUID, rule_id: uuid.UUID, for_update: bool = False
) -> RewardRule | None:
    query = select(RewardRule).where(
        RewardRule.merchant_id == merchant_id, RewardRule.rule_id == rule_id, RewardRule.superseded_at.is_(None)
    )
    return await session.scalar(query.with_for_update() if for_update else query)


async def update_rule(
    session: AsyncSession, *, merchant_id: uuid.UUID, rule_id: uuid.UUID, definition: RuleDefinition
) -> RewardRule:
    """A new version; the old one stays for the rewards granted under it and for history."""
    definition = await with_merchant_time_zone(session, merchant_id, validate_definition(definition))
    current = await _lock_current(session, merchant_id=merchant_id, rule_id=rule_id)
    await _require_pool(session, merchant_id, current.program_id, definition.spec)
    current.superseded_at = utcnow()
    await session.flush()
    rule = rule_version(rule_id, current.version + 1, merchant_id, current.program_id, definition)
    session.add(rule)
    await session.flush()
    return rule


def definition_of(rule: RewardRule) -> RuleDefinition:
    return RuleDefinition(
        name=rule.name,
        trigger=rule.trigger,
        recipient=Recipient(rule.recipient),
        kind=RewardKind(rule.kind),
        spec=spec_of(rule),
        enabled=rule.enabled,
    )


async def _lock_current(session: AsyncSession, *, merchant_id: uuid.UUID, rule_id: uuid.UUID) -> RewardRule:
    """The current version, locked. A concurrent change supersedes the row we waited for
    (PostgreSQL then finds no current row); its new version has committed, so look again
    rather than answer NOT_FOUND for a rule that exists."""
    for _ in range(100):
        current = await current_rule(session, merchant_id=merchant_id, rule_id=rule_id, for_update=True)
        if current is not None:
            return current
        exists = await session.scalar(
            select(RewardRule.id).where(RewardRule.merchant_id == merchant_id, RewardRule.rule_id == rule_id).limit(1)
        )
        if exists is None:
            break
    raise NotFound("ruleId", "reward rule")


async def set_rule_enabled(session: AsyncSession, *, merchant_id: uuid.UUID, rule_id: uuid.UUID, enabled: bool) -> RewardRule:
    # Locked before it is copied: a concurrent update's amount must not be lost to a stale copy.
    current = await _lock_current(session, merchant_id=merchant_id, rule_id=rule_id)
    if current.enabled == enabled:
        return current
    return await update_rule(
        session, merchant_id=merchant_id, rule_id=rule_id, definition=replace(definition_of(current), enabled=enabled)
    )


async def list_rules(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, include_disabled: bool = True
) -> list[RewardRule]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = select(RewardRule).where(
        RewardRule.merchant_id == merchant_id, RewardRule.program_id == program_id, RewardRule.superseded_at.is_(None)
    )
    if not include_disabled:
        query = query.where(RewardRule.enabled.is_(True))
    return list((await session.scalars(query.order_by(RewardRule.rule_id))).all())


async def rule_history(session: AsyncSession, *, merchant_id: uuid.UUID, rule_id: uuid.UUID) -> list[RewardRule]:
    query = (
        select(RewardRule)
        .where(RewardRule.merchant_id == merchant_id, RewardRule.rule_id == rule_id)
        .order_by(RewardRule.version)
    )
    return list((await session.scalars(query)).all())


# In an AFFILIATE program the commission to the referrer is the partner's (app.partners.sales
# pays it, gated by the partner's status and split with co-producers), so the reward rules'
# evaluation leaves those rules out: in the same statement, at no extra cost.
_PAID_BY_PARTNERS = (
    RewardRule.kind == RewardKind.COMMISSION,
    RewardRule.recipient.in_([Recipient.REFERRER, Recipient.BOTH]),
    select(Program.id)
    .where(
        merchant_is(Program, bindparam("merchant_id")),
        Program.id == RewardRule.program_id,
        Program.program_type == ProgramType.AFFILIATE,
    )
    .exists(),
)
_ACTIVE_RULES = scoped(
    select(RewardRule).where(
        RewardRule.program_id == bindparam("program_id"),
        RewardRule.trigger == bindparam("trigger"),
        RewardRule.enabled.is_(True),
        RewardRule.superseded_at.is_(None),
        ~and_(*_PAID_BY_PARTNERS),
    ),
    bindparam("merchant_id"),
).order_by(RewardRule.rule_id)


async def active_rules_for_trigger(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, trigger: str
) -> list[RewardRule]:
    """The program's rules in force for `trigger`. On the write path they come from the
    process's memory (app.config_cache) as detached rows: read them, never change them."""

    async def load() -> list[RewardRule]:
        rules = list(
            (
                await session.scalars(_ACTIVE_RULES, {"merchant_id": merchant_id, "program_id": program_id, "trigger": trigger})
            ).all()
        )
        for rule in rules:
            session.expunge(rule)
        return rules

    return await config_cache.read(session, merchant_id, ("active_rules", program_id, trigger), load)


async def get_rule_versions_by_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[RewardRule]:
    return await merchant_rows(session, RewardRule, merchant_id, RewardRule.id, ids)
