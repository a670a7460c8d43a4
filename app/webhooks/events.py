"""The catalogue of webhook event types, in one place."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

REFERRAL_CREATED = "referral.created"
REFERRAL_QUALIFIED = "referral.qualified"
REWARD_GRANTED = "reward.granted"
REWARD_AVAILABLE = "reward.available"
REWARD_VOIDED = "reward.voided"
REWARD_REVERSED = "reward.reversed"
FRAUD_REVIEW_OPENED = "fraud.review_opened"
FRAUD_REVIEW_RESOLVED = "fraud.review_resolved"
PAYOUT_REQUESTED = "payout.requested"
PAYOUT_APPROVED = "payout.approved"
PAYOUT_PAID = "payout.paid"
PAYOUT_FAILED = "payout.failed"

EVENT_TYPES: dict[str, str] = {
    REFERRAL_CREATED: "A referee was attributed to a referrer (link, code or claim).",
    REFERRAL_QUALIFIED: "A referral's referee made a qualifying purchase or started a subscription.",
    REWARD_GRANTED: "A reward was granted (it may be held before it becomes available).",
    REWARD_AVAILABLE: "A reward became available to its customer.",
    REWARD_VOIDED: "(Part of) a held reward was cancelled before it reached the customer.",
    REWARD_REVERSED: "(Part of) an available reward was clawed back.",
    FRAUD_REVIEW_OPENED: "A fraud review was opened.",
    FRAUD_REVIEW_RESOLVED: "A fraud review was resolved.",
    PAYOUT_REQUESTED: "A payout was requested.",
    PAYOUT_APPROVED: "A payout was approved.",
    PAYOUT_PAID: "A payout was paid.",
    PAYOUT_FAILED: "A payout failed.",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def referral_data(referral: Any, *, referrer_external_id: str | None, referee_external_id: str | None) -> dict[str, Any]:
    return {
        "id": str(referral.id),
        "programId": str(referral.program_id),
        "status": referral.status,
        "source": referral.source,
        "referrerId": str(referral.referrer_id),
        "referrerExternalId": referrer_external_id,
        "refereeId": str(referral.referee_id),
        "refereeExternalId": referee_external_id,
        "createdAt": _iso(referral.created_at),
        "qualifiedAt": _iso(referral.qualified_at),
    }


def reward_data(reward: Any, *, customer_external_id: str | None) -> dict[str, Any]:
    return {
        "id": str(reward.id),
        "programId": str(reward.program_id),
        "referralId": str(reward.referral_id),
        "ruleId": str(reward.rule_id),
        "customerId": str(reward.customer_id),
        "customerExternalId": customer_external_id,
        "recipient": reward.recipient,
        "kind": reward.kind,
        "status": reward.status,
        "amount": reward.amount,
        "reversedAmount": reward.reversed_amount,
        "unit": reward.unit,
        "holdUntil": _iso(reward.hold_until),
        "availableAt": _iso(reward.available_at),
        "expiresAt": _iso(reward.expires_at),
        "endReason": reward.end_reason,
        "triggerActionId": _str(reward.trigger_action_id),
    }
