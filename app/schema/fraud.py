"""Fraud: decisions and their evidence, the review queue, policies and their backtest, lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.fraud import backtest, lists, memory, reviews
from app.fraud import policy as policies
from app.fraud.models import ReviewStatus
from app.fraud.reviews import Resolution as ResolutionModel
from app.merchants import audit
from app.schema.common import UnitAmount, gid
from app.schema.errors import UserError, not_found
from app.schema.fraud_types import (
    AuditEntry,
    ClearanceEvidence,
    CustomerFraudStatus,
    FraudDecision,
    FraudListEntry,
    FraudListKind,
    FraudOutcome,
    FraudPolicy,
    FraudReview,
    FraudReviewStatus,
)
from app.schema.pagination import Connection, to_connection
from app.schema.permissions import SecretKey, SecretKeyOrAdmin, SecretKeyOrReviewer
from app.schema.referral_types import Customer
from app.schema.transactions import mutate, query

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
FraudResolution: TypeAlias = ResolutionModel
strawberry.enum(FraudResolution, name="FraudResolution")


@strawberry.input(description="A change to one signal; leave a field out to keep it.")
class FraudSignalInput:
    signal: str
    weight: int | None = None
    threshold: float | None = None
    action: FraudOutcome | None = None
    enabled: bool | None = None


@strawberry.input(description="A change to when rewards are cleared; leave a field out to keep it.")
class ClearanceInput:
    evidence: ClearanceEvidence | None = None
    quiet_days: int | None = strawberry.field(default=None, description="1 to 90 (QUIET_DAYS).")
    release_referee_discounts: bool | None = None


@strawberry.input(description="Changes to the program's current policy (signals not named keep their settings).")
class FraudPolicyInput:
    review_score: int | None = None
    block_score: int | None = None
    signals: list[FraudSignalInput] = strawberry.field(default_factory=list)
    clearance: ClearanceInput | None = None

    def to_domain(self) -> policies.PolicyChange:
        clearance = self.clearance or ClearanceInput()
        return policies.PolicyChange(
            review_score=self.review_score,
            block_score=self.block_score,
            clearance_evidence=clearance.evidence,
            quiet_days=clearance.quiet_days,
            release_referee_discounts=clearance.release_referee_discounts,
            signals=tuple(
                policies.SignalChange(signal=s.signal, weight=s.weight, threshold=s.threshold, action=s.action, enabled=s.enabled)
                for s in self.signals
            ),
        )


@strawberry.input(description="Which OPEN reviews a bulk resolution takes.")
class FraudReviewFilter:
    program_id: strawberry.ID | None = None
    signal: str | None = strawberry.field(default=None, description="Reviews in which this signal fired.")
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    max_score: int | None = None

    def to_domain(self) -> reviews.ReviewFilter:
        return reviews.ReviewFilter(
            program_id=validation.parse_id(self.program_id, "filter.programId") if self.program_id else None,
            signal=self.signal,
            opened_after=self.opened_after,
            opened_before=self.opened_before,
            max_score=self.max_score,
        )


@strawberry.type
class FraudPolicyPayload:
    policy: FraudPolicy | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FraudReviewPayload:
    review: FraudReview | None = None
    replayed: bool = strawberry.field(default=False, description="It was already resolved this way: nothing changed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FraudReviewsPayload:
    resolved_count: int = 0
    reviews: list[FraudReview] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FraudListEntryPayload:
    entry: FraudListEntry | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerFraudStatusPayload:
    customer: Customer | None = None
    status: CustomerFraudStatus | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ClearReferrerPayload:
    customer: Customer | None = None
    approved_reviews: list[FraudReview] = strawberry.field(
        default_factory=list, description="Reviews opened only because the referrer was under review, now approved."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BacktestScore:
    outcome: FraudOutcome
    score: int
    signals: list[str]


@strawberry.type
class BacktestSample:
    referral_id: strawberry.ID
    before: BacktestScore
    after: BacktestScore


@strawberry.type(description="Referrals that would move from one outcome to another.")
class BacktestMove:
    before: FraudOutcome
    after: FraudOutcome
    count: int
    reward_value: list[UnitAmount] = strawberry.field(description="What these referrals were granted (coupons in %: left out).")
    sample: list[BacktestSample]


@strawberry.type
class OutcomeCount:
    outcome: FraudOutcome
    count: int


@strawberry.type(description="A proposed policy re-scored on the stored referrals of a period, next to the current one.")
class FraudPolicySimulation:
    referrals_scored: int
    current: FraudPolicy
    proposed: FraudPolicy
    before: list[OutcomeCount] = strawberry.field(description="Under the current policy.")
    after: list[OutcomeCount] = strawberry.field(description="Under the proposed policy.")
    moves: list[BacktestMove]

    @classmethod
    def from_domain(cls, r: backtest.BacktestResult) -> FraudPolicySimulation:
        def score(s: backtest.Scored) -> BacktestScore:
            return BacktestScore(outcome=s.outcome, score=s.score, signals=list(s.signals))

        return cls(
            referrals_scored=r.referrals_scored,
            current=FraudPolicy.from_domain(r.current),
            proposed=FraudPolicy.from_domain(r.proposed),
            before=[OutcomeCount(outcome=o, count=c) for o, c in r.before.items()],
            after=[OutcomeCount(outcome=o, count=c) for o, c in r.after.items()],
            moves=[
                BacktestMove(
                    before=m.before,
                    after=m.after,
                    count=m.count,
                    reward_value=[UnitAmount(unit=u, amount=a) for u, a in sorted(m.reward_value.items())],
                    sample=[
                        BacktestSample(referral_id=gid(s.referral_id), before=score(s.before), after=score(s.after))
                        for s in m.sample
                    ],
                )
                for m in r.moves
            ],
        )


def _id(value: strawberry.ID | str, field: str) -> uuid.UUID:
    return validation.parse_id(value, field)


@strawberry.type
class FraudQuery:
    @strawberry.field(permission_classes=[SecretKey], description="The program's fraud policy in force.")
    async def fraud_policy(self, info: Info, program_id: strawberry.ID) -> FraudPolicy:
        async def work(session: AsyncSession) -> FraudPolicy:
            policy = await policies.program_policy(
                session, merchant_id=info.context.merchant_id, program_id=_id(program_id, "programId")
            )
            return FraudPolicy.from_domain(policy)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="Every version the merchant set, oldest first.")
    async def fraud_policy_history(self, info: Info, program_id: strawberry.ID) -> list[FraudPolicy]:
        async def work(session: AsyncSession) -> list[FraudPolicy]:
            rows = await policies.policy_history(
                session, merchant_id=info.context.merchant_id, program_id=_id(program_id, "programId")
            )
            return [FraudPolicy.from_domain(policies.Policy.of_row(r)) for r in rows]

        return await query(info, work)

    @strawberry.field(
        permission_classes=[SecretKeyOrReviewer], description="A referral's fraud decisions with their evidence, oldest first."
    )
    async def fraud_decisions(self, info: Info, referral_id: strawberry.ID) -> list[FraudDecision]:
        async def work(session: AsyncSession) -> list[FraudDecision]:
            rows = await reviews.referral_decisions(
                session, merchant_id=info.context.merchant_id, referral_id=_id(referral_id, "referralId")
            )
            return [FraudDecision.from_model(r) for r in rows]

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrReviewer], description="The review queue, newest first.")
    async def fraud_reviews(
        self,
        info: Info,
        program_id: strawberry.ID | None = None,
        status: FraudReviewStatus | None = ReviewStatus.OPEN,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[FraudReview]:
        async def work(session: AsyncSession) -> Connection[FraudReview]:
            page = await reviews.list_reviews(
                session,
                merchant_id=info.context.merchant_id,
                status=status,
                program_id=_id(program_id, "programId") if program_id else None,
                first=first,
                after=after,
            )
            return to_connection(page, FraudReview.from_model)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrReviewer])
    async def fraud_review(self, info: Info, id: strawberry.ID) -> FraudReview | None:
        async def work(session: AsyncSession) -> FraudReview | None:
            review = await reviews.get_review(session, merchant_id=info.context.merchant_id, review_id=_id(id, "id"))
            if review is None:
                raise not_found("fraud review")
            return FraudReview.from_model(review)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey], description="Blocklists and customer marks, newest first.")
    async def fraud_list_entries(
        self, info: Info, kind: FraudListKind | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[FraudListEntry]:
        async def work(session: AsyncSession) -> Connection[FraudListEntry]:
            page = await lists.list_entries(session, merchant_id=info.context.merchant_id, kind=kind, first=first, after=after)
            return to_connection(page, FraudListEntry.from_model)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKey])
    async def customer_fraud_status(self, info: Info, customer_external_id: str) -> CustomerFraudStatus:
        async def work(session: AsyncSession) -> CustomerFraudStatus:
            return await lists.customer_status(
                session, merchant_id=info.context.merchant_id, customer_external_id=customer_external_id
            )

        return await query(info, work)

    @strawberry.field(
        permission_classes=[SecretKey],
        description="Re-score the program's referrals of a period under a proposed policy. Writes nothing.",
    )
    async def simulate_fraud_policy(
        self,
        info: Info,
        program_id: strawberry.ID,
        policy: FraudPolicyInput,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> FraudPolicySimulation:
        async def work(session: AsyncSession) -> FraudPolicySimulation:
            result = await backtest.simulate_policy(
                session,
                merchant_id=info.context.merchant_id,
                program_id=_id(program_id, "programId"),
                change=policy.to_domain(),
                start=from_,
                end=to,
            )
            return FraudPolicySimulation.from_domain(result)

        return await query(info, work)

    @strawberry.field(permission_classes=[SecretKeyOrAdmin], description="Who did what, newest first.")
    async def audit_log(
        self, info: Info, subject_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
    ) -> Connection[AuditEntry]:
        async def work(session: AsyncSession) -> Connection[AuditEntry]:
            page = await audit.list_entries(
                session,
                merchant_id=info.context.merchant_id,
                subject_id=_id(subject_id, "subjectId") if subject_id else None,
                first=first,
                after=after,
            )
            return to_connection(page, AuditEntry.from_model)

        return await query(info, work)


@strawberry.input(description="A clause of the program's promotion rules a rejection cites.")
class CitedRuleInput:
    version: int
    clause_id: str


@strawberry.type
class FraudMutation:
    @strawberry.mutation(permission_classes=[SecretKey], description="A new policy version for the program.")
    async def set_fraud_policy(self, info: Info, program_id: strawberry.ID, policy: FraudPolicyInput) -> FraudPolicyPayload:
        async def work(session: AsyncSession) -> FraudPolicyPayload:
            result, _ = await policies.set_policy(
                session,
                merchant_id=info.context.merchant_id,
                program_id=_id(program_id, "programId"),
                change=policy.to_domain(),
                actor=info.context.actor,
            )
            return FraudPolicyPayload(policy=FraudPolicy.from_domain(result))

        return await mutate(info, FraudPolicyPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrReviewer],
        description="APPROVE releases the held rewards (after their own hold); REJECT rejects the referral and takes them back.",
    )
    async def resolve_fraud_review(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: FraudResolution,
        note: str | None = None,
        cited_rule: CitedRuleInput | None = None,
    ) -> FraudReviewPayload:
        async def work(session: AsyncSession) -> FraudReviewPayload:
            resolved = await reviews.resolve_review(
                session,
                merchant_id=info.context.merchant_id,
                review_id=_id(id, "id"),
                resolution=resolution,
                note=note,
                actor=info.context.actor,
                cited_rule=(cited_rule.version, cited_rule.clause_id) if cited_rule else None,
            )
            return FraudReviewPayload(review=FraudReview.from_model(resolved.review), replayed=resolved.replayed)

        return await mutate(info, FraudReviewPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrReviewer], description="Resolve the OPEN reviews matching a filter, oldest first."
    )
    async def resolve_fraud_reviews(
        self, info: Info, filter: FraudReviewFilter, resolution: FraudResolution, note: str | None = None, limit: int = 100
    ) -> FraudReviewsPayload:
        async def work(session: AsyncSession) -> FraudReviewsPayload:
            resolved = await reviews.resolve_reviews(
                session,
                merchant_id=info.context.merchant_id,
                review_filter=filter.to_domain(),
                resolution=resolution,
                note=note,
                limit=limit,
                actor=info.context.actor,
            )
            return FraudReviewsPayload(resolved_count=len(resolved), reviews=[FraudReview.from_model(r) for r in resolved])

        return await mutate(info, FraudReviewsPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey], description="Block an email, domain, IP, CIDR range, device or payment.")
    async def add_fraud_list_entry(
        self, info: Info, kind: FraudListKind, value: str, note: str | None = None
    ) -> FraudListEntryPayload:
        async def work(session: AsyncSession) -> FraudListEntryPayload:
            entry = await lists.add_entry(
                session,
                merchant_id=info.context.merchant_id,
                kind=kind,
                value=value,
                note=note,
                actor=info.context.actor,
            )
            return FraudListEntryPayload(entry=FraudListEntry.from_model(entry))

        return await mutate(info, FraudListEntryPayload, work)

    @strawberry.mutation(permission_classes=[SecretKey])
    async def remove_fraud_list_entry(self, info: Info, id: strawberry.ID) -> FraudListEntryPayload:
        async def work(session: AsyncSession) -> FraudListEntryPayload:
            entry = await lists.remove_entry(
                session, merchant_id=info.context.merchant_id, entry_id=_id(id, "id"), actor=info.context.actor
            )
            return FraudListEntryPayload(entry=FraudListEntry.from_model(entry))

        return await mutate(info, FraudListEntryPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKeyOrReviewer],
        description=(
            "A referrer under review (one of their referrals was flagged) is cleared: their referrals held "
            "for that reason alone are approved in one action, and new ones are no longer held."
        ),
    )
    async def clear_referrer(self, info: Info, customer_external_id: str, note: str | None = None) -> ClearReferrerPayload:
        async def work(session: AsyncSession) -> ClearReferrerPayload:
            customer, approved = await memory.clear_referrer(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=customer_external_id,
                note=note,
                actor=info.context.actor,
            )
            return ClearReferrerPayload(
                customer=Customer.from_model(customer), approved_reviews=[FraudReview.from_model(r) for r in approved]
            )

        return await mutate(info, ClearReferrerPayload, work)

    @strawberry.mutation(
        permission_classes=[SecretKey],
        description="TRUSTED: their referrals skip review and a score never blocks them (a person decides; your lists still block). BANNED: their referrals are rejected.",
    )
    async def set_customer_fraud_status(
        self, info: Info, customer_external_id: str, status: CustomerFraudStatus, note: str | None = None
    ) -> CustomerFraudStatusPayload:
        async def work(session: AsyncSession) -> CustomerFraudStatusPayload:
            customer = await lists.set_customer_status(
                session,
                merchant_id=info.context.merchant_id,
                customer_external_id=customer_external_id,
                status=status,
                note=note,
                actor=info.context.actor,
            )
            return CustomerFraudStatusPayload(customer=Customer.from_model(customer), status=status)

        return await mutate(info, CustomerFraudStatusPayload, work)
