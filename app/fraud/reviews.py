"""The review queue: referrals a check put on hold, and the people who decide them.

Approve: the held rewards are released (or wait out their own hold period). Reject: the
referral is REJECTED and its rewards are voided or reversed. Every resolution is in the
audit log with the API key or the admin that made it and the note.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.campaigns import promotion_rules
from app.db import AnySelect, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.fraud import clearance, engine
from app.fraud.models import FraudDecision, FraudReview, ReviewStatus
from app.fraud.signals import CATALOGUE
from app.merchants import audit
from app.pagination import Page, paginate
from app.referrals import notify, programs
from app.referrals.models import Referral
from app.rewards import lifecycle
from app.webhooks import events as webhook_events

MAX_BULK = 500
MAX_SCANNED = 5000  # open reviews looked at by one bulk resolve


class Resolution(enum.Enum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"

    @property
    def status(self) -> ReviewStatus:
        return ReviewStatus.APPROVED if self is Resolution.APPROVE else ReviewStatus.REJECTED


@dataclass(frozen=True)
class ReviewFilter:
    program_id: uuid.UUID | None = None
    signal: str | None = None  # reviews in which this signal fired
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    max_score: int | None = None


@dataclass(frozen=True)
class Resolved:
    review: FraudReview
    replayed: bool  # the review was already resolved this way: nothing changed


def _filtered(query: AnySelect, merchant_id: uuid.UUID, status: ReviewStatus | None, f: ReviewFilter) -> AnySelect:
    query = query.where(FraudReview.merchant_id == merchant_id)
    if status is not None:
        query = query.where(FraudReview.status == status)
    if f.program_id is not None:
        query = query.where(FraudReview.program_id == f.program_id)
    if f.opened_after is not None:
        query = query.where(FraudReview.opened_at >= validation.aware(f.opened_after, "filter.openedAfter"))
    if f.opened_before is not None:
        query = query.where(FraudReview.opened_at < validation.aware(f.opened_before, "filter.openedBefore"))
    if f.max_score is not None:
        query = query.where(FraudReview.score <= f.max_score)
    return query


async def list_reviews(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    status: ReviewStatus | None,
    program_id: uuid.UUID | None = None,
    first: int | None,
    after: str | None,
) -> Page[FraudReview]:
    """Newest first."""
    if program_id is not None:  # another merchant's program is NOT_FOUND, not an empty queue
        await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    query = _filtered(select(FraudReview), merchant_id, status, ReviewFilter(program_id=program_id))
    return await paginate(session, query, FraudReview.id, first=first, after=after)


async def get_review(session: AsyncSession, *, merchant_id: uuid.UUID, review_id: uuid.UUID) -> FraudReview | None:
    return await session.scalar(select(FraudReview).where(FraudReview.id == review_id, FraudReview.merchant_id == merchant_id))


async def decisions_of_reviews(
    session: AsyncSession, *, merchant_id: uuid.UUID, review_ids: list[uuid.UUID]
) -> list[FraudDecision]:
    query = select(FraudDecision).where(FraudDecision.merchant_id == merchant_id, FraudDecision.review_id.in_(review_ids))
    return list((await session.scalars(query.order_by(FraudDecision.id))).all())


async def referral_decisions(session: AsyncSession, *, merchant_id: uuid.UUID, referral_id: uuid.UUID) -> list[FraudDecision]:
    """A referral's decisions, oldest first; NOT_FOUND when the merchant has no such referral."""
    if await session.scalar(select(Referral.id).where(Referral.id == referral_id, Referral.merchant_id == merchant_id)) is None:
        raise NotFound("referralId", "referral")
    return await decisions_of_referrals(session, merchant_id=merchant_id, referral_ids=[referral_id])


async def decisions_of_referrals(
    session: AsyncSession, *, merchant_id: uuid.UUID, referral_ids: list[uuid.UUID]
) -> list[FraudDecision]:
    query = select(FraudDecision).where(FraudDecision.merchant_id == merchant_id, FraudDecision.referral_id.in_(referral_ids))
    return list((await session.scalars(query.order_by(FraudDecision.id))).all())


async def resolve_review(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    review_id: uuid.UUID,
    resolution: Resolution,
    note: str | None,
    actor: audit.Actor,
    cited_rule: tuple[int, str] | None = None,
) -> Resolved:
    """Idempotent: resolving again the same way returns the review; the other way is refused.
    A rejection may cite a clause of the program's promotion rules: (version, clause id)."""
    note = validation.text(note, "note", 1000)
    if cited_rule is not None and resolution is not Resolution.REJECT:
        raise DomainError("citedRule", ErrorCode.INVALID_INPUT, "only a rejection cites a promotion rule")
    review = await session.scalar(
        select(FraudReview).where(FraudReview.id == review_id, FraudReview.merchant_id == merchant_id).with_for_update()
    )
    if review is None:
        raise NotFound("id", "fraud review")
    if review.status is resolution.status:
        return Resolved(review, replayed=True)
    if review.status != ReviewStatus.OPEN:
        raise DomainError("id", ErrorCode.REVIEW_ALREADY_RESOLVED, f"this review was already {review.status.value.lower()}")
    if cited_rule is not None:
        review.cited_rule = await promotion_rules.cited_rule(
            session, merchant_id=merchant_id, program_id=review.program_id, version=cited_rule[0], clause_id=cited_rule[1]
        )
    await _resolve(session, review, resolution, note, actor)
    return Resolved(review, replayed=False)


async def resolve_open(
    session: AsyncSession, review: FraudReview, resolution: Resolution, *, note: str | None, actor: audit.Actor
) -> None:
    """Resolve an OPEN review the caller has locked (app.fraud.memory clears a referrer's)."""
    await _resolve(session, review, resolution, note, actor)


async def _resolve(
    session: AsyncSession, review: FraudReview, resolution: Resolution, note: str | None, actor: audit.Actor
) -> None:
    referral = await session.scalar(select(Referral).where(Referral.id == review.referral_id).with_for_update())
    assert referral is not None
    engine.close_review(review, resolution.status, note=note, actor=actor)
    await session.flush()
    if resolution is Resolution.APPROVE:  # a person's approval clears the referral too
        await lifecycle.lift_review_hold(session, referral.id, merchant_id=referral.merchant_id)
        await clearance.clear(session, referral, at=utcnow())
    else:
        await engine.reject_referral(session, referral, reason="fraud review rejected", decision=None)
    await audit.record(
        session,
        merchant_id=review.merchant_id,
        actor=actor,
        action=f"fraud_review.{resolution.status.value.lower()}",
        subject_id=review.id,
        note=note,
        details={
            "referral_id": str(referral.id),
            "signals": list(review.signals),
            "score": review.score,
            **({"cited_rule": review.cited_rule} if review.cited_rule else {}),
        },
    )
    decisions = await decisions_of_reviews(session, merchant_id=review.merchant_id, review_ids=[review.id])
    await notify.fraud_review_event(session, webhook_events.FRAUD_REVIEW_RESOLVED, review, decisions)


async def resolve_reviews(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    review_filter: ReviewFilter,
    resolution: Resolution,
    note: str | None,
    limit: int,
    actor: audit.Actor,
) -> list[FraudReview]:
    """Resolve the OPEN reviews matching the filter (oldest first, at most `limit`), each
    exactly as `resolve_review` would, in one transaction."""
    note = validation.text(note, "note", 1000)
    limit = validation.int_range(limit, "limit", 1, MAX_BULK)
    if review_filter.signal is not None and review_filter.signal not in CATALOGUE:
        raise DomainError("filter.signal", ErrorCode.INVALID_INPUT, f"unknown signal {review_filter.signal!r}")
    if review_filter.program_id is not None:
        await programs.require_program(
            session, merchant_id=merchant_id, program_id=review_filter.program_id, field="filter.programId"
        )
    query = _filtered(select(FraudReview), merchant_id, ReviewStatus.OPEN, review_filter).order_by(FraudReview.id)
    # The signal is matched here, not in SQL: `signals` is a JSON list, kept portable.
    resolved: list[FraudReview] = []
    candidates = (await session.scalars(query.limit(MAX_SCANNED).with_for_update())).all()
    for review in candidates:
        if len(resolved) >= limit:
            break
        if review_filter.signal is not None and review_filter.signal not in review.signals:
            continue
        await _resolve(session, review, resolution, note, actor)
        resolved.append(review)
    return resolved
