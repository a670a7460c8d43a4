"""GraphQL types of the fraud engine: decisions with their evidence, reviews, policies, lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import strawberry
from strawberry.types import Info

from app.fraud import lists, models
from app.fraud import policy as policies
from app.fraud.signals import CATALOGUE
from app.merchants.models import AuditEntry as AuditEntryModel
from app.schema.common import gid
from app.schema.referral_types import Referral
from app.schema.reward_types import Reward
from app.schema.scalars import JSON

# GraphQL enums are the domain enums themselves, registered by strawberry.enum; the aliases keep them types.
FraudOutcome: TypeAlias = models.Outcome
strawberry.enum(FraudOutcome, name="FraudOutcome", description="ALLOW, REVIEW (rewards held) or BLOCK.")
FraudStage: TypeAlias = models.Stage
strawberry.enum(FraudStage, name="FraudStage")
FraudReviewStatus: TypeAlias = models.ReviewStatus
strawberry.enum(FraudReviewStatus, name="FraudReviewStatus")
FraudListKind: TypeAlias = models.ListKind
strawberry.enum(FraudListKind, name="FraudListKind")
CustomerFraudStatus: TypeAlias = lists.CustomerFraudStatus
strawberry.enum(CustomerFraudStatus, name="CustomerFraudStatus")


@strawberry.type(description="What one signal measured, and whether it counted under the policy of the decision.")
class FraudObservation:
    signal: str
    value: float = strawberry.field(description="1 for yes/no signals; a count, similarity or hours apart otherwise.")
    evidence: str = strawberry.field(description="For people: what matched, with whom, and when.")
    details: JSON
    fired: bool = strawberry.field(description="Crossed the signal's threshold: its weight counts.")
    weight: int
    related_referral_ids: list[strawberry.ID] = strawberry.field(description="Other referrals sharing this evidence.")

    @classmethod
    def from_json(cls, o: dict) -> FraudObservation:
        return cls(
            signal=o["signal"],
            value=o["value"],
            evidence=o["evidence"],
            details=o.get("details") or {},
            fired=o.get("fired", False),
            weight=o.get("weight", 0),
            related_referral_ids=[strawberry.ID(r) for r in o.get("related") or []],
        )


@strawberry.type(description="One check of a referral: every observation, the policy version, score and outcome.")
class FraudDecision:
    id: strawberry.ID
    stage: FraudStage
    outcome: FraudOutcome = strawberry.field(description="What was done (after trusted customers and earlier reviews).")
    policy_outcome: FraudOutcome = strawberry.field(description="What the policy alone said.")
    score: int
    policy_version: int = strawberry.field(description="0 is the built-in default policy.")
    observations: list[FraudObservation] = strawberry.field(description="Fired ones first.")
    adjustments: list[str]
    action_id: strawberry.ID | None
    referral_id: strawberry.ID
    review_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.FraudDecision) -> FraudDecision:
        observations = sorted(m.observations, key=lambda o: not o.get("fired"))
        return cls(
            id=gid(m.id),
            stage=models.Stage(m.stage),
            outcome=models.Outcome(m.outcome),
            policy_outcome=models.Outcome(m.policy_outcome),
            score=m.score,
            policy_version=m.policy_version,
            observations=[FraudObservation.from_json(o) for o in observations],
            adjustments=list(m.adjustments),
            action_id=gid(m.action_id) if m.action_id else None,
            referral_id=gid(m.referral_id),
            review_id=gid(m.review_id) if m.review_id else None,
            created_at=m.created_at,
        )


@strawberry.type(description="A clause of a version of the program's promotion rules.")
class CitedRule:
    version: int
    clause_id: str
    clause_text: str


@strawberry.type(description="A referral waiting for a person; its rewards are held until then.")
class FraudReview:
    id: strawberry.ID
    status: FraudReviewStatus
    score: int = strawberry.field(description="The highest score of its decisions.")
    signals: list[str] = strawberry.field(description="Signals that fired in its decisions.")
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by_key_id: strawberry.ID | None = strawberry.field(description="The API key that resolved it.")
    resolved_by_admin_id: strawberry.ID | None = strawberry.field(description="The admin whose session resolved it.")
    resolution_note: str | None
    cited_rule: CitedRule | None = strawberry.field(description="The promotion rule clause a rejection cited.")
    program_id: strawberry.ID
    referral_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: models.FraudReview) -> FraudReview:
        return cls(
            id=gid(m.id),
            status=models.ReviewStatus(m.status),
            score=m.score,
            signals=list(m.signals),
            opened_at=m.opened_at,
            resolved_at=m.resolved_at,
            resolved_by_key_id=gid(m.resolved_by_key_id) if m.resolved_by_key_id else None,
            resolved_by_admin_id=gid(m.resolved_by_admin_id) if m.resolved_by_admin_id else None,
            resolution_note=m.resolution_note,
            program_id=gid(m.program_id),
            referral_id=m.referral_id,
            cited_rule=CitedRule(
                version=m.cited_rule["version"], clause_id=m.cited_rule["clauseId"], clause_text=m.cited_rule["clauseText"]
            )
            if m.cited_rule
            else None,
        )

    @strawberry.field
    async def referral(self, info: Info) -> Referral:
        return Referral.from_model(await info.context.get_loaders().referral.load(self.referral_id))

    @strawberry.field(description="The decisions that opened or joined this review, with their evidence.")
    async def decisions(self, info: Info) -> list[FraudDecision]:
        rows = await info.context.get_loaders().fraud_decisions_by_review.load(uuid.UUID(self.id))
        return [FraudDecision.from_model(r) for r in rows]

    @strawberry.field(description="The referral's rewards (held ones wait for this review).")
    async def rewards(self, info: Info) -> list[Reward]:
        rows = await info.context.get_loaders().rewards_by_referral.load(self.referral_id)
        return [Reward.from_model(r) for r in rows]


@strawberry.type
class FraudSignalSetting:
    signal: str
    description: str
    weight: int
    threshold: float
    fires_at_or_below: bool = strawberry.field(description="True: fires when the value is at or below the threshold.")
    value_meaning: str
    action: FraudOutcome = strawberry.field(description="A firing signal makes the outcome at least this.")
    enabled: bool


ClearanceEvidence: TypeAlias = policies.ClearanceEvidence
strawberry.enum(
    ClearanceEvidence,
    name="ClearanceEvidence",
    description=(
        "What a referral must be screened ALLOW after before its rewards can be spent: SIGNUP (at once), "
        "FIRST_PURCHASE (the referee's first purchase, with card and address), QUIET_DAYS (a fresh check quietDays "
        "after the reward was earned, with everything learnt meanwhile)."
    ),
)


@strawberry.type(description="When a referral's rewards become spendable. Until then they are HELD with awaitingClearance.")
class ClearancePolicy:
    evidence: ClearanceEvidence
    quiet_days: int
    release_referee_discounts: bool = strawberry.field(
        description="A referee's first-order coupon (a DISCOUNT reward) is usable at once, without waiting."
    )


@strawberry.type(description="How signals weigh and what the score does, for one program.")
class FraudPolicy:
    version: int = strawberry.field(description="0: the built-in default (never changed).")
    review_score: int
    block_score: int
    signals: list[FraudSignalSetting]
    clearance: ClearancePolicy
    created_at: datetime | None = None

    @classmethod
    def from_domain(cls, p: policies.Policy) -> FraudPolicy:
        settings = []
        for name, info in CATALOGUE.items():
            s = p.setting(name)
            settings.append(
                FraudSignalSetting(
                    signal=name,
                    description=info.description,
                    weight=s.weight,
                    threshold=s.threshold,
                    fires_at_or_below=info.fires_at_or_below,
                    value_meaning=info.value_meaning,
                    action=s.action,
                    enabled=s.enabled,
                )
            )
        clearance = ClearancePolicy(
            evidence=p.clearance.evidence,
            quiet_days=p.clearance.quiet_days,
            release_referee_discounts=p.clearance.release_referee_discounts,
        )
        return cls(
            version=p.version,
            review_score=p.review_score,
            block_score=p.block_score,
            signals=settings,
            clearance=clearance,
            created_at=p.created_at,
        )


@strawberry.type
class FraudListEntry:
    id: strawberry.ID
    kind: FraudListKind
    value: str
    note: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: models.FraudListEntry) -> FraudListEntry:
        return cls(id=gid(m.id), kind=models.ListKind(m.kind), value=m.value, note=m.note, created_at=m.created_at)


@strawberry.type(description="Who did what: review resolutions, list and policy changes.")
class AuditEntry:
    id: strawberry.ID
    action: str
    actor_key_id: strawberry.ID | None = strawberry.field(description="The API key that made the call.")
    actor_admin_id: strawberry.ID | None = strawberry.field(description="The admin whose session made the call.")
    subject_id: strawberry.ID | None
    note: str | None
    details: JSON | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: AuditEntryModel) -> AuditEntry:
        return cls(
            id=gid(m.id),
            action=m.action,
            actor_key_id=gid(m.actor_key_id) if m.actor_key_id else None,
            actor_admin_id=gid(m.actor_admin_id) if m.actor_admin_id else None,
            subject_id=gid(m.subject_id) if m.subject_id else None,
            note=m.note,
            details=m.details,
            created_at=m.created_at,
        )
