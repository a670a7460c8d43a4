"""A program's promotion rules: what its referrers may do to promote it (no brand-keyword
bidding, no coupon sites...), versioned, with clauses a reviewer can cite.

Referrers accept a version from the widget's signed session or through the merchant's API.
A new version needs a new acceptance. Earning is NOT stopped meanwhile: commissions keep
being granted and paid, and the referrer's status shows the acceptance as pending. We chose
this because stopping earnings would punish honest referrers for an email they have not
read yet, while a breach of the rules is judged per case anyway: the reviewer rejects the
commission and cites the clause (`citedRule` on the fraud review's rejection).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.campaigns.models import PromotionRules, PromotionRulesAcceptance
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.referrals import programs

MAX_CLAUSES = 50
_CLAUSE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
WIDGET = "WIDGET"
API = "API"


@dataclass(frozen=True)
class Clause:
    id: str  # e.g. "no-brand-bidding"
    text: str


@dataclass(frozen=True)
class AcceptanceStatus:
    current: PromotionRules | None
    accepted: PromotionRulesAcceptance | None  # of the current version

    @property
    def pending(self) -> bool:
        return self.current is not None and self.accepted is None


async def publish(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, text: str, clauses: list[Clause]
) -> PromotionRules:
    """A new version of the program's rules (the first is 1); earlier versions are kept."""
    program = await programs.require_program(session, merchant_id=merchant_id, program_id=program_id, for_update=True)
    text = validation.required_text(text, "text", 20_000)
    if len(clauses) > MAX_CLAUSES:
        raise DomainError("clauses", ErrorCode.TOO_MANY, f"at most {MAX_CLAUSES} clauses")
    seen: set[str] = set()
    stored = []
    for clause in clauses:
        clause_id = validation.required_text(clause.id, "clauses.id", 64).lower()
        if not _CLAUSE_ID.match(clause_id) or clause_id in seen:
            raise DomainError("clauses.id", ErrorCode.INVALID_INPUT, "clause ids are unique, a-z, 0-9 and '-'")
        seen.add(clause_id)
        stored.append({"id": clause_id, "text": validation.required_text(clause.text, "clauses.text", 2000)})
    latest = await session.scalar(
        select(func.max(PromotionRules.version)).where(
            PromotionRules.merchant_id == merchant_id, PromotionRules.program_id == program.id
        )
    )
    rules = PromotionRules(
        id=new_id(),
        merchant_id=merchant_id,
        program_id=program.id,
        version=(latest or 0) + 1,
        text=text,
        clauses=stored,
        created_at=utcnow(),
    )
    session.add(rules)
    await session.flush()
    return rules


async def current(session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID) -> PromotionRules | None:
    """The program's latest version (None: none published); another merchant's program is NOT_FOUND."""
    await programs.require_program(session, merchant_id=merchant_id, program_id=program_id)
    return await session.scalar(
        select(PromotionRules)
        .where(PromotionRules.merchant_id == merchant_id, PromotionRules.program_id == program_id)
        .order_by(PromotionRules.version.desc())
        .limit(1)
    )


async def accept(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, customer_id: uuid.UUID, version: int, via: str
) -> PromotionRulesAcceptance:
    """Record that the customer accepted `version`, which must be the current one (an
    outdated page cannot accept old rules). Accepting again returns the first acceptance."""
    rules = await current(session, merchant_id=merchant_id, program_id=program_id)
    if rules is None:
        raise NotFound("programId", "promotion rules")
    if version != rules.version:
        raise DomainError("version", ErrorCode.INVALID_INPUT, f"the current version is {rules.version}")
    await session.execute(
        insert_ignoring_conflicts(session, PromotionRulesAcceptance, ["program_id", "customer_id", "version"]).values(
            id=new_id(),
            merchant_id=merchant_id,
            program_id=program_id,
            customer_id=customer_id,
            version=version,
            via=via,
            accepted_at=utcnow(),
        )
    )
    accepted = await session.scalar(
        select(PromotionRulesAcceptance).where(
            PromotionRulesAcceptance.program_id == program_id,
            PromotionRulesAcceptance.customer_id == customer_id,
            PromotionRulesAcceptance.version == version,
        )
    )
    assert accepted is not None
    return accepted


async def status(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, customer_id: uuid.UUID
) -> AcceptanceStatus:
    rules = await current(session, merchant_id=merchant_id, program_id=program_id)
    accepted = None
    if rules is not None:
        accepted = await session.scalar(
            select(PromotionRulesAcceptance).where(
                PromotionRulesAcceptance.program_id == program_id,
                PromotionRulesAcceptance.customer_id == customer_id,
                PromotionRulesAcceptance.version == rules.version,
            )
        )
    return AcceptanceStatus(current=rules, accepted=accepted)


async def cited_rule(
    session: AsyncSession, *, merchant_id: uuid.UUID, program_id: uuid.UUID, version: int, clause_id: str
) -> dict[str, Any]:
    """A citation of a clause of a version of the program's rules, checked to exist."""
    rules = await session.scalar(
        select(PromotionRules).where(
            PromotionRules.merchant_id == merchant_id,
            PromotionRules.program_id == program_id,
            PromotionRules.version == version,
        )
    )
    if rules is None:
        raise DomainError("citedRule.version", ErrorCode.NOT_FOUND, "the program has no promotion rules of this version")
    clause = next((c for c in rules.clauses if c["id"] == clause_id.strip().lower()), None)
    if clause is None:
        raise DomainError("citedRule.clauseId", ErrorCode.NOT_FOUND, "this version of the rules has no such clause")
    return {"version": version, "clauseId": clause["id"], "clauseText": clause["text"]}
