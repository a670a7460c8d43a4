"""Backtesting a proposed fraud policy on the program's stored referrals. Writes nothing.

Every decision stored its observations, so re-judging a referral under another policy
needs no replay of the past: `policy.judge` runs on what was measured then. A referral's
outcome is the strictest of its decisions. Compared with the program's current policy, the
result says how many referrals would move between ALLOW / REVIEW / BLOCK, what the rewards
they were granted are worth, and shows a sample of each move.

Limits: thresholds can only be tried within what was measured (a similarity is stored from
0.75, counts from 3); a referral put in review because another one was (RELATED) moves
with its own signal only; human decisions (approved reviews) are not replayed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money, validation
from app.errors import DomainError, ErrorCode
from app.fraud import policy as policies
from app.fraud.models import FraudDecision, FraudListEntry, ListKind, Outcome, Stage
from app.fraud.policy import Policy, PolicyChange
from app.fraud.signals import CATALOGUE, Observation
from app.referrals.models import Referral
from app.rewards.models import Reward

MAX_REFERRALS = 100_000
MAX_DAYS = 366
SAMPLE_SIZE = 10
BATCH = 2_000


@dataclass(frozen=True)
class Scored:
    outcome: Outcome
    score: int
    signals: tuple[str, ...]


@dataclass
class Sample:
    referral_id: uuid.UUID
    before: Scored
    after: Scored


@dataclass
class Move:
    before: Outcome
    after: Outcome
    count: int = 0
    reward_value: dict[str, int] = field(default_factory=dict)  # unit -> amount granted to the moved referrals
    sample: list[Sample] = field(default_factory=list)


@dataclass
class BacktestResult:
    proposed: Policy
    current: Policy
    referrals_scored: int
    before: dict[Outcome, int]
    after: dict[Outcome, int]
    moves: list[Move]


def score_referral(policy: Policy, decisions: list[FraudDecision], trusted: bool) -> Scored:
    """The referral's outcome under `policy`: the strictest of its decisions re-judged."""
    outcome, score, fired = Outcome.ALLOW, 0, set()
    for decision in decisions:
        observations = [Observation.from_json(o) for o in decision.observations if o["signal"] in CATALOGUE]
        verdict = policies.judge(policy, observations)
        decided = verdict.outcome
        if decision.stage == Stage.RELATED and decided is not Outcome.ALLOW:
            decided = Outcome.REVIEW  # named by another referral: reviewed, never blocked
        if trusted:
            decided = policies.trusted_outcome(decided, verdict.fired_signals())
        outcome = Outcome.strictest(outcome, decided)
        score = max(score, verdict.score)
        fired |= set(verdict.fired_signals())
    return Scored(outcome, score, tuple(sorted(fired)))


async def simulate_policy(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    program_id: uuid.UUID,
    change: PolicyChange,
    start: datetime,
    end: datetime,
    sample_size: int = SAMPLE_SIZE,
) -> BacktestResult:
    start = validation.aware(start, "from")
    end = validation.aware(end, "to")
    if end <= start:
        raise DomainError("to", ErrorCode.INVALID_INPUT, "to must be after from")
    if end - start > timedelta(days=MAX_DAYS):
        raise DomainError("to", ErrorCode.INVALID_INPUT, f"a backtest covers at most {MAX_DAYS} days")
    current = await policies.program_policy(session, merchant_id=merchant_id, program_id=program_id)
    proposed = policies.apply_changes(current, change)

    in_period = (
        select(Referral.id, Referral.referrer_id, Referral.referee_id)
        .where(
            Referral.merchant_id == merchant_id,
            Referral.program_id == program_id,
            Referral.referred_at >= start,
            Referral.referred_at < end,
        )
        .order_by(Referral.id)
    )
    total = await session.scalar(select(func.count()).select_from(in_period.subquery())) or 0
    if total > MAX_REFERRALS:
        raise DomainError("from", ErrorCode.TOO_MANY, f"{total} referrals in the period; at most {MAX_REFERRALS}, shorten it")
    trusted = set(
        (
            await session.scalars(
                select(FraudListEntry.value).where(
                    FraudListEntry.merchant_id == merchant_id, FraudListEntry.kind == ListKind.TRUSTED_CUSTOMER
                )
            )
        ).all()
    )

    before_counts = {o: 0 for o in Outcome}
    after_counts = {o: 0 for o in Outcome}
    moves: dict[tuple[Outcome, Outcome], Move] = {}
    moved_ids: dict[uuid.UUID, Move] = {}
    rows = (await session.execute(in_period)).all()
    for offset in range(0, len(rows), BATCH):
        batch = rows[offset : offset + BATCH]
        decisions: dict[uuid.UUID, list[FraudDecision]] = defaultdict(list)
        for decision in (
            await session.scalars(
                select(FraudDecision).where(FraudDecision.referral_id.in_([r.id for r in batch])).order_by(FraudDecision.id)
            )
        ).all():
            decisions[decision.referral_id].append(decision)
        for row in batch:
            is_trusted = str(row.referrer_id) in trusted or str(row.referee_id) in trusted
            before = score_referral(current, decisions[row.id], is_trusted)
            after = score_referral(proposed, decisions[row.id], is_trusted)
            before_counts[before.outcome] += 1
            after_counts[after.outcome] += 1
            if before.outcome is after.outcome:
                continue
            move = moves.setdefault((before.outcome, after.outcome), Move(before.outcome, after.outcome))
            move.count += 1
            moved_ids[row.id] = move
            if len(move.sample) < sample_size:
                move.sample.append(Sample(row.id, before, after))
        await _add_reward_value(session, moved_ids)
        moved_ids.clear()
    ordered = sorted(moves.values(), key=lambda m: (m.before.severity, m.after.severity))
    return BacktestResult(proposed, current, len(rows), before_counts, after_counts, ordered)


async def _add_reward_value(session: AsyncSession, moved: dict[uuid.UUID, Move]) -> None:
    if not moved:
        return
    rows = await session.execute(
        select(Reward.referral_id, Reward.unit, money.total(Reward.amount))
        .where(Reward.referral_id.in_(list(moved)), Reward.unit != "PERCENT")
        .group_by(Reward.referral_id, Reward.unit)
    )
    for referral_id, unit, amount in rows:
        assert referral_id is not None  # in moved
        value = moved[referral_id].reward_value
        value[unit] = value.get(unit, 0) + int(amount or 0)
