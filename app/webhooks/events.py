"""The catalogue of webhook event types, in one place."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.db import plain

REFERRAL_CREATED = "referral.created"
REFERRAL_QUALIFIED = "referral.qualified"
REFERRAL_REJECTED = "referral.rejected"
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
PAYOUT_ON_HOLD = "payout.on_hold"
PAYOUT_REJECTED = "payout.rejected"
PAYOUT_ACCOUNT_CHANGED = "payout_account.changed"
ADMIN_TOTP_CHANGED = "admin.totp_changed"
CUSTOMER_ERASED = "customer.erased"
CUSTOMER_EXPORT_READY = "customer.export_ready"
LEAD_STATUS_CHANGED = "lead.status_changed"

EVENT_TYPES: dict[str, str] = {
    REFERRAL_CREATED: "A referee was attributed to a referrer (link, code or claim).",
    REFERRAL_QUALIFIED: "A referral's referee made a qualifying purchase or started a subscription.",
    REFERRAL_REJECTED: "A referral was rejected by a fraud check or review; its rewards were taken back.",
    REWARD_GRANTED: "A reward was granted (it may be held before it becomes available).",
    REWARD_AVAILABLE: "A reward became available to its customer.",
    REWARD_VOIDED: "(Part of) a held reward was cancelled before it reached the customer.",
    REWARD_REVERSED: "(Part of) an available reward was clawed back.",
    FRAUD_REVIEW_OPENED: "A referral was put in fraud review; its rewards are held. Carries the evidence.",
    FRAUD_REVIEW_RESOLVED: "A fraud review was approved (rewards released) or rejected (rewards taken back).",
    PAYOUT_REQUESTED: "A payout was requested and waits for approval (its funds are set aside).",
    PAYOUT_APPROVED: (
        "A payout was approved and handed to its provider: in a batch file, or (provider MERCHANT_WEBHOOK) "
        "for you to pay and then call markPayoutPaid."
    ),
    PAYOUT_PAID: "A payout was marked paid.",
    PAYOUT_FAILED: "A payout failed (or was returned after being paid); its funds are back on the balance.",
    PAYOUT_ON_HOLD: "A payout was put on hold, with the reasons and the fraud evidence.",
    PAYOUT_REJECTED: "A payout was rejected by the merchant; its funds are back on the balance.",
    PAYOUT_ACCOUNT_CHANGED: "A customer's payout account was set or changed; payouts to it wait out the cooling-off period.",
    ADMIN_TOTP_CHANGED: "An admin's second factor was enrolled, changed or reset: tell the other owners and admins (listed).",
    CUSTOMER_ERASED: "A customer's personal data was erased; from now on they appear under the pseudonym it carries.",
    CUSTOMER_EXPORT_READY: "A customer data export was built; ask customerDataExport(id) for its one-time download link.",
    LEAD_STATUS_CHANGED: (
        "A business referral (lead) was submitted or moved to its next status; `notesForReferrer` carries the step's "
        "notes when staff marked them visible to the referrer (for your thank-you email)."
    ),
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def referral_data(referral: Any, *, referrer_external_id: str | None, referee_external_id: str | None) -> dict[str, Any]:
    return {
        "id": str(referral.id),
        "programId": str(referral.program_id),
        "status": plain(referral.status),
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
        "referralId": _str(reward.referral_id),
        "ruleId": _str(reward.rule_id),
        "source": reward.source,
        "customerId": str(reward.customer_id),
        "customerExternalId": customer_external_id,
        "recipient": plain(reward.recipient),
        "kind": plain(reward.kind),
        "status": plain(reward.status),
        "amount": reward.amount,
        "reversedAmount": reward.reversed_amount,
        "unit": reward.unit,
        "holdUntil": _iso(reward.hold_until),
        "availableAt": _iso(reward.available_at),
        "expiresAt": _iso(reward.expires_at),
        "endReason": reward.end_reason,
        "triggerActionId": _str(reward.trigger_action_id),
    }


def fraud_decision_data(decision: Any) -> dict[str, Any]:
    """A decision with its evidence: what the merchant sees (never the referrer)."""
    return {
        "id": str(decision.id),
        "stage": plain(decision.stage),
        "outcome": plain(decision.outcome),
        "score": decision.score,
        "policyVersion": decision.policy_version,
        "signals": [
            {"signal": o["signal"], "evidence": o["evidence"], "weight": o["weight"], "value": o["value"]}
            for o in decision.observations
            if o.get("fired")
        ],
        "adjustments": list(decision.adjustments),
        "createdAt": _iso(decision.created_at),
    }


def fraud_review_data(review: Any, decisions: list[Any]) -> dict[str, Any]:
    return {
        "id": str(review.id),
        "programId": str(review.program_id),
        "referralId": str(review.referral_id),
        "status": plain(review.status),
        "score": review.score,
        "signals": list(review.signals),
        "openedAt": _iso(review.opened_at),
        "resolvedAt": _iso(review.resolved_at),
        "resolutionNote": review.resolution_note,
        "citedRule": review.cited_rule,
        "decisions": [fraud_decision_data(d) for d in decisions],
    }


def payout_data(payout: Any, *, customer_external_id: str | None, account: Any | None) -> dict[str, Any]:
    """A payout as the merchant's systems see it: the destination masked, never in full."""
    return {
        "id": str(payout.id),
        "reference": payout.reference,
        "customerId": str(payout.customer_id),
        "customerExternalId": customer_external_id,
        "status": plain(payout.status),
        "amount": payout.amount,
        "currency": payout.currency,
        "method": account.method if account is not None else None,
        "customType": account.custom_type if account is not None else None,
        "accountMasked": account.masked if account is not None else None,
        "payoutAccountId": str(payout.payout_account_id),
        "programId": _str(payout.program_id),
        "holdReasons": list(payout.hold_reasons or []),
        "provider": payout.provider,
        "batchId": _str(payout.batch_id),
        "providerReference": payout.provider_reference,
        "note": payout.note,
        "createdAt": _iso(payout.created_at),
        "approvedAt": _iso(payout.approved_at),
        "paidAt": _iso(payout.paid_at),
    }


def lead_data(lead: Any, step: Any, *, referrer_external_id: str | None) -> dict[str, Any]:
    """A lead's step. Internal notes stay out: only those marked for the referrer are sent."""
    return {
        "leadId": str(lead.id),
        "programId": str(lead.program_id),
        "referrerId": str(lead.referrer_id),
        "referrerExternalId": referrer_external_id,
        "company": lead.company,
        "oldStatus": plain(step.from_status),
        "newStatus": plain(step.to_status),
        "notesForReferrer": step.notes if step.notes_visible_to_referrer else None,
        "duplicateOfLeadId": _str(lead.duplicate_of_id),
        "feeRewardId": _str(lead.fee_reward_id),
        "at": _iso(step.created_at),
    }
