"""Fraud policies: how much each signal weighs, when it fires, and what the total score
does. One per program, versioned like reward rules; without one, the default applies.

`judge` is the policy logic alone (observations in, outcome out). Live checks and the
backtest both call it, so a backtest answers exactly what the live engine would do.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app import config_cache, validation
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.fraud.models import FraudPolicyVersion, Outcome
from app.fraud.signals import CATALOGUE, Observation
from app.merchants import audit
from app.referrals import programs

DEFAULT_REVIEW_SCORE = 50
DEFAULT_BLOCK_SCORE = 120


@dataclass(frozen=True)
class SignalSetting:
    weight: int
    threshold: float
    action: Outcome = Outcome.ALLOW  # when the signal fires, the outcome is at least this
    enabled: bool = True


class ClearanceEvidence(enum.Enum):
    """What a referral must have been screened ALLOW after before its rewards can be spent."""

    SIGNUP = "SIGNUP"  # the check when the referral is made: rewards are spendable at once
    FIRST_PURCHASE = "FIRST_PURCHASE"  # the check of the referee's first purchase (card, address)
    QUIET_DAYS = "QUIET_DAYS"  # a check `quiet_days` after the reward was earned, with everything learnt meanwhile


DEFAULT_QUIET_DAYS = 3


@dataclass(frozen=True)
class Clearance:
    """When a referral's rewards stop waiting (see app.fraud.clearance). The default pays
    referrer rewards only after a quiet period: late evidence (the referrer's own card, a ring
    closing, the rest of a farm) arrives within days, and taking back spent money rarely works.
    A referee's first-order coupon is low value and is released at once unless turned off."""

    evidence: ClearanceEvidence = ClearanceEvidence.QUIET_DAYS
    quiet_days: int = DEFAULT_QUIET_DAYS
    release_referee_discounts: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence.value,
            "quiet_days": self.quiet_days,
            "release_referee_discounts": self.release_referee_discounts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Clearance:
        if not data:  # a policy stored before clearance existed: the default
            return cls()
        return cls(ClearanceEvidence(data["evidence"]), data["quiet_days"], data["release_referee_discounts"])


@dataclass(frozen=True)
class Policy:
    review_score: int = DEFAULT_REVIEW_SCORE  # a total score from here on: REVIEW
    block_score: int = DEFAULT_BLOCK_SCORE  # from here on: BLOCK
    signals: Mapping[str, SignalSetting] = field(default_factory=dict)
    version: int = 0  # 0: the built-in default
    created_at: datetime | None = None
    clearance: Clearance = field(default_factory=Clearance)

    def setting(self, signal: str) -> SignalSetting:
        if signal in self.signals:
            return self.signals[signal]
        info = CATALOGUE[signal]
        return SignalSetting(weight=info.weight, threshold=info.threshold, action=info.action)

    def to_json(self) -> dict[str, Any]:
        return {
            "review_score": self.review_score,
            "block_score": self.block_score,
            "signals": {
                name: {"weight": s.weight, "threshold": s.threshold, "action": s.action.value, "enabled": s.enabled}
                for name, s in sorted(self.signals.items())
            },
            "clearance": self.clearance.to_json(),
        }

    @classmethod
    def of_row(cls, row: FraudPolicyVersion) -> Policy:
        return replace(cls.from_json(row.spec, row.version), created_at=row.created_at)

    @classmethod
    def from_json(cls, data: dict[str, Any], version: int) -> Policy:
        signals = {
            name: SignalSetting(s["weight"], s["threshold"], Outcome(s["action"]), s.get("enabled", True))
            for name, s in data.get("signals", {}).items()
            if name in CATALOGUE  # a signal retired since: ignored
        }
        return cls(
            data["review_score"], data["block_score"], signals, version, clearance=Clearance.from_json(data.get("clearance"))
        )


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Fired:
    observation: Observation
    weight: int
    action: Outcome


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    score: int
    fired: list[Fired]  # the strongest firing observation of each signal

    def fired_signals(self) -> list[str]:
        return [f.observation.signal for f in self.fired]


def judge(policy: Policy, observations: Iterable[Observation]) -> Verdict:
    """Score = the sum of the weights of the signals that fire (each signal counts once,
    however many identifiers it matched); the outcome is the stricter of what the score
    reaches and what the fired signals' own actions demand."""
    strongest: dict[str, Observation] = {}
    for observation in observations:
        info = CATALOGUE.get(observation.signal)
        if info is None:  # a signal retired since the observation was stored
            continue
        setting = policy.setting(observation.signal)
        if not setting.enabled or not info.fires(observation.value, setting.threshold):
            continue
        best = strongest.get(observation.signal)
        if best is None or (observation.value < best.value if info.fires_at_or_below else observation.value > best.value):
            strongest[observation.signal] = observation
    fired = [Fired(o, policy.setting(name).weight, policy.setting(name).action) for name, o in strongest.items()]
    score = sum(f.weight for f in fired)
    by_score = Outcome.BLOCK if score >= policy.block_score else Outcome.REVIEW if score >= policy.review_score else Outcome.ALLOW
    return Verdict(Outcome.strictest(by_score, *(f.action for f in fired)), score, fired)


MERCHANT_LISTS = frozenset({"blocklist", "banned_customer"})


def trusted_outcome(outcome: Outcome, fired: list[str]) -> Outcome:
    """A trusted customer's referral skips review, and is never blocked by a score: a BLOCK
    becomes REVIEW, so a person decides. Only the merchant's own lists still block."""
    if outcome is Outcome.REVIEW:
        return Outcome.ALLOW
    if outcome is Outcome.BLOCK and not MERCHANT_LISTS & set(fired):
        return Outcome.REVIEW
    return outcome


@dataclass(frozen=True)
class SignalChange:
    """A merchant's change to one signal; None keeps the current value."""

    signal: str
    weight: int | None = None
    threshold: float | None = None
    action: Outcome | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class PolicyChange:
    """What a merchant proposes: new score thresholds and signal changes; None keeps."""

    review_score: int | None = None
    block_score: int | None = None
    signals: tuple[SignalChange, ...] = ()
    clearance_evidence: ClearanceEvidence | None = None
    quiet_days: int | None = None
    release_referee_discounts: bool | None = None


def apply_changes(base: Policy, change: PolicyChange) -> Policy:
    """`base` with the changes, validated; errors name the input field."""
    review_score, block_score, changes = change.review_score, change.block_score, change.signals
    quiet_days = validation.int_range(change.quiet_days, "clearance.quietDays", 1, 90)
    clearance = replace(
        base.clearance,
        evidence=base.clearance.evidence if change.clearance_evidence is None else change.clearance_evidence,
        quiet_days=base.clearance.quiet_days if quiet_days is None else quiet_days,
        release_referee_discounts=(
            base.clearance.release_referee_discounts
            if change.release_referee_discounts is None
            else change.release_referee_discounts
        ),
    )
    review = validation.int_range(review_score, "reviewScore", 1, 10_000) if review_score is not None else base.review_score
    block = validation.int_range(block_score, "blockScore", 1, 10_000) if block_score is not None else base.block_score
    if block <= review:
        raise DomainError("blockScore", ErrorCode.INVALID_INPUT, "blockScore must be above reviewScore")
    if len(changes) > len(CATALOGUE):
        raise DomainError("signals", ErrorCode.INVALID_INPUT, "at most one change per signal")
    signals = {name: base.setting(name) for name in CATALOGUE}
    seen = set()
    for i, signal_change in enumerate(changes):
        if signal_change.signal not in CATALOGUE:
            raise DomainError(f"signals.{i}.signal", ErrorCode.INVALID_INPUT, f"unknown signal {signal_change.signal!r}")
        if signal_change.signal in seen:
            raise DomainError(f"signals.{i}.signal", ErrorCode.INVALID_INPUT, f"{signal_change.signal} is changed twice")
        seen.add(signal_change.signal)
        current = signals[signal_change.signal]
        weight = validation.int_range(signal_change.weight, f"signals.{i}.weight", 0, 10_000)
        threshold = signal_change.threshold
        if threshold is not None and not (0 <= threshold <= 1_000_000):
            raise DomainError(f"signals.{i}.threshold", ErrorCode.INVALID_INPUT, "threshold is between 0 and 1,000,000")
        signals[signal_change.signal] = replace(
            current,
            weight=current.weight if weight is None else weight,
            threshold=current.threshold if threshold is None else threshold,
            action=current.action if signal_change.action is None else signal_change.action,
            enabled=current.enabled if signal_change.enabled is None else signal_change.enabled,
        )
    return Policy(review, block, signals, base.version, clearance=clearance)


_CACHE = "fraud_policies"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_policies(session: Session, *args: object) -> None:
    session.info.pop(_CACHE, None)


_CURRENT_POLICY = select(FraudPolicyVersion).where(
    FraudPolicyVersion.merchant_id == bindparam("merchant_id"),
    FraudPolicyVersion.program_id == bindparam("program_id"),
    FraudPolicyVersion.superseded_at.is_(None),
)


async def current_policy(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> Policy:
    """The program's policy in force (the default until the merchant sets one); read once
    per transaction (an action checks its referral at creation and again before rewards), and
    on the write path kept in the process's memory (app.config_cache)."""
    cache = session.info.setdefault(_CACHE, {})
    if program_id not in cache:

        async def load() -> Policy:
            row = await session.scalar(_CURRENT_POLICY, {"merchant_id": merchant_id, "program_id": program_id})
            return DEFAULT_POLICY if row is None else Policy.of_row(row)

        cache[program_id] = await config_cache.read(session, merchant_id, ("fraud_policy", program_id), load)
    return cache[program_id]


async def program_policy(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> Policy:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    return await current_policy(session, merchant_id=merchant_id, program_id=program_id)


async def set_policy(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    change: PolicyChange,
    actor: audit.Actor,
) -> tuple[Policy, FraudPolicyVersion]:
    """A new version with the changes applied to the current one; the old stays for history
    and for the decisions made under it."""
    # Locked: two concurrent changes must not both build on the same version.
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id, for_update=True)
    current_row = await session.scalar(
        select(FraudPolicyVersion).where(
            FraudPolicyVersion.merchant_id == merchant_id,
            FraudPolicyVersion.program_id == program_id,
            FraudPolicyVersion.superseded_at.is_(None),
        )
    )
    base = DEFAULT_POLICY if current_row is None else Policy.of_row(current_row)
    policy = apply_changes(base, change)
    version = base.version + 1
    session.info.get(_CACHE, {}).pop(program_id, None)
    if current_row is not None:
        current_row.superseded_at = utcnow()
        await session.flush()
    row = FraudPolicyVersion(
        merchant_id=merchant_id,
        program_id=program_id,
        version=version,
        spec=policy.to_json(),
        created_by_key_id=actor.key_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="fraud_policy.changed",
        subject_id=program_id,
        details={"version": version},
    )
    return replace(policy, version=version, created_at=row.created_at), row


async def policy_history(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> list[FraudPolicyVersion]:
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = (
        select(FraudPolicyVersion)
        .where(FraudPolicyVersion.merchant_id == merchant_id, FraudPolicyVersion.program_id == program_id)
        .order_by(FraudPolicyVersion.version)
    )
    return list((await session.scalars(query)).all())
