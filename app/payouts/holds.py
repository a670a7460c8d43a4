"""Why a payout waits: the holds, each with its reason and the evidence a person needs.

Checked for many customers at once (a payout run books hundreds per transaction), a fixed
handful of queries whatever their number:

- OPEN_FRAUD_REVIEW: a referral of the customer's (as referrer or referee) is in review;
  evidence: the signals that fired and what they saw.
- COOLING_OFF: the payout account was set or changed less than the merchant's cooling-off
  period ago.
- FLAGGED_REFERRALS: most (more than half, at least two) of the customer's referrals were
  flagged by a fraud check or rejected.
- SHARED_PAYOUT_ACCOUNT: other customers are paid to the same destination.
- CLAWBACK_DEBT: a clawback after the request left the customer's balance negative.

OPEN_FRAUD_REVIEW and COOLING_OFF lift by themselves when their condition ends
(`refresh`, run by the worker); the others wait for a person (`releasePayoutHold`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.fraud.models import FraudDecision, FraudReview, Outcome, ReviewStatus
from app.payouts.models import HoldReason, PayoutAccount
from app.referrals.models import Customer, Referral, ReferralStatus
from app.rewards.models import AccountType, LedgerAccount, RewardKind
from app.tenancy import merchant_is, scoped

MOSTLY_FLAGGED_MIN = 2  # referrals needed before "most were flagged" means anything
MAX_EVIDENCE = 5  # evidence lines kept per hold


@dataclass(frozen=True)
class Hold:
    code: HoldReason
    message: str
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "evidence": self.evidence, "details": self.details}


@dataclass(frozen=True)
class Subject:
    """A customer about to be (or being) paid to `account` in `currency`."""

    customer_id: uuid.UUID
    account: PayoutAccount
    currency: str


ALL = frozenset(HoldReason)
DYNAMIC = frozenset({HoldReason.OPEN_FRAUD_REVIEW, HoldReason.COOLING_OFF, HoldReason.CLAWBACK_DEBT})


async def evaluate(
    session: AsyncSession, *, merchant_id: uuid.UUID, subjects: list[Subject], now: datetime, reasons: frozenset = ALL
) -> list[list[Hold]]:
    """The holds that apply to each subject now, in the subjects' order."""
    if not subjects:
        return []
    ids = sorted({s.customer_id for s in subjects})
    by_customer: dict[uuid.UUID, list[Hold]] = defaultdict(list)
    if HoldReason.OPEN_FRAUD_REVIEW in reasons:
        for customer_id, hold in await _open_reviews(session, merchant_id, ids):
            by_customer[customer_id].append(hold)
    if HoldReason.FLAGGED_REFERRALS in reasons:
        for customer_id, hold in await _mostly_flagged(session, merchant_id, ids):
            by_customer[customer_id].append(hold)
    sharing = await _sharing(session, merchant_id, subjects) if HoldReason.SHARED_PAYOUT_ACCOUNT in reasons else {}
    debts = await _debts(session, merchant_id, subjects) if HoldReason.CLAWBACK_DEBT in reasons else {}
    found = []
    for s in subjects:
        found_here = list(by_customer[s.customer_id])
        if HoldReason.COOLING_OFF in reasons and s.account.cooling_off_until is not None and s.account.cooling_off_until > now:
            found_here.append(
                Hold(
                    HoldReason.COOLING_OFF,
                    f"the payout account ({s.account.masked}) was set on {s.account.created_at:%Y-%m-%d %H:%M} UTC and "
                    f"cools off until {s.account.cooling_off_until:%Y-%m-%d %H:%M} UTC",
                    [],
                    {"account_id": str(s.account.id), "until": s.account.cooling_off_until.isoformat()},
                )
            )
        others = [name for customer_id, name in sharing.get(s.account.fingerprint, []) if customer_id != s.customer_id]
        if others:
            found_here.append(
                Hold(
                    HoldReason.SHARED_PAYOUT_ACCOUNT,
                    f"the payout account ({s.account.masked}) is also the account of {len(others)} other customer(s)",
                    [
                        f"also paid to this destination: {', '.join(others[:MAX_EVIDENCE])}"
                        + (" ..." if len(others) > MAX_EVIDENCE else "")
                    ],
                    {"customers": others[:50]},
                )
            )
        if (s.customer_id, s.currency) in debts:
            balance = debts[(s.customer_id, s.currency)]
            found_here.append(
                Hold(
                    HoldReason.CLAWBACK_DEBT,
                    f"a clawback left the customer's {s.currency} balance at {balance}: this payout includes money taken back since",
                    [],
                    {"balance": balance, "currency": s.currency},
                )
            )
        found.append(found_here)
    return found


async def _open_reviews(session: AsyncSession, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, Hold]]:
    rows = (
        await session.execute(
            scoped(
                select(FraudReview, Referral.referrer_id, Referral.referee_id)
                .join(Referral, Referral.id == FraudReview.referral_id)
                .where(
                    FraudReview.status == ReviewStatus.OPEN,
                    or_(Referral.referrer_id.in_(ids), Referral.referee_id.in_(ids)),
                ),
                merchant_id,
            ).order_by(FraudReview.id)
        )
    ).all()
    if not rows:
        return []
    evidence: dict[uuid.UUID | None, list[str]] = defaultdict(list)  # decisions of the reviews: never None
    decisions = await session.scalars(
        scoped(select(FraudDecision).where(FraudDecision.review_id.in_([r.FraudReview.id for r in rows])), merchant_id).order_by(
            FraudDecision.id
        )
    )
    for decision in decisions:
        for observation in decision.observations:
            if observation.get("fired") and len(evidence[decision.review_id]) < MAX_EVIDENCE:
                evidence[decision.review_id].append(f"{observation['signal']}: {observation['evidence']}")
    wanted = set(ids)
    found = []
    for review, referrer_id, referee_id in rows:
        for customer_id, role in ((referrer_id, "referrer"), (referee_id, "referee")):
            if customer_id in wanted:
                found.append(
                    (
                        customer_id,
                        Hold(
                            HoldReason.OPEN_FRAUD_REVIEW,
                            f"a referral where the customer is the {role} is in fraud review (score {review.score}: "
                            f"{', '.join(review.signals)})",
                            evidence[review.id],
                            {
                                "review_id": str(review.id),
                                "referral_id": str(review.referral_id),
                                "signals": list(review.signals),
                            },
                        ),
                    )
                )
    return found


async def _mostly_flagged(session: AsyncSession, merchant_id: uuid.UUID, ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, Hold]]:
    flagged = or_(
        Referral.status == ReferralStatus.REJECTED,
        exists().where(
            merchant_is(FraudDecision, merchant_id),
            FraudDecision.referral_id == Referral.id,
            FraudDecision.outcome != Outcome.ALLOW,
        ),
    )
    rows = (
        await session.execute(
            scoped(
                select(Referral.referrer_id, func.count(), func.sum(case((flagged, 1), else_=0))).where(
                    Referral.referrer_id.in_(ids)
                ),
                merchant_id,
            ).group_by(Referral.referrer_id)
        )
    ).all()
    found = []
    for referrer_id, total, flagged_count in rows:
        flagged_count = int(flagged_count or 0)
        if total >= MOSTLY_FLAGGED_MIN and flagged_count * 2 > total:
            found.append(
                (
                    referrer_id,
                    Hold(
                        HoldReason.FLAGGED_REFERRALS,
                        f"{flagged_count} of the customer's {total} referrals were flagged by fraud checks or rejected",
                        [],
                        {"referrals": total, "flagged": flagged_count},
                    ),
                )
            )
    return found


async def _sharing(
    session: AsyncSession, merchant_id: uuid.UUID, subjects: list[Subject]
) -> dict[str, list[tuple[uuid.UUID, str]]]:
    """Who is paid to each of the subjects' destinations (current accounts)."""
    rows = (
        await session.execute(
            scoped(
                select(PayoutAccount.fingerprint, PayoutAccount.customer_id, Customer.external_id)
                .join(Customer, Customer.id == PayoutAccount.customer_id)
                .where(
                    PayoutAccount.fingerprint.in_({s.account.fingerprint for s in subjects}),
                    PayoutAccount.superseded_at.is_(None),
                ),
                merchant_id,
            )
        )
    ).all()
    users: dict[str, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    # sorted here, not by the database: an ORDER BY external_id had SQLite read the merchant's
    # customers in that order (its unique index) instead of the few accounts by fingerprint
    for fingerprint, customer_id, external_id in sorted(rows, key=lambda row: row.external_id):
        users[fingerprint].append((customer_id, external_id))
    return users


async def _debts(session: AsyncSession, merchant_id: uuid.UUID, subjects: list[Subject]) -> dict[tuple[uuid.UUID, str], int]:
    rows = (
        await session.execute(
            scoped(
                select(LedgerAccount.owner_id, LedgerAccount.unit, LedgerAccount.balance).where(
                    LedgerAccount.owner_id.in_({s.customer_id for s in subjects}),
                    LedgerAccount.kind == RewardKind.COMMISSION,
                    LedgerAccount.account_type == AccountType.AVAILABLE,
                    LedgerAccount.balance < 0,
                ),
                merchant_id,
            )
        )
    ).all()
    return {(owner_id, unit): balance for owner_id, unit, balance in rows}


def hold_codes(hold_reasons: list[dict]) -> set[HoldReason]:
    return {HoldReason(h["code"]) for h in hold_reasons}


def all_lift_by_themselves(hold_reasons: list[dict]) -> bool:
    return all(code.lifts_by_itself for code in hold_codes(hold_reasons))
