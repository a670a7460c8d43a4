"""Customer data exports: everything stored about one customer as one JSON document.

`request_export` (the `exportCustomerData` mutation) writes a PENDING export and its job in one
transaction; the job (`privacy.export`) builds the document, keeps it encrypted and marks it
READY for `EXPORT_LINK_HOURS`; `take_document` hands it out once (the signed link of
app.privacy.downloads), after which it is deleted, as it is when it expires or the customer is
erased first. Every table that holds customer data has its section here
(`classification.EXPORTED` names them; the tests check every row is in it).

Other customers stay out of it: the other party of a referral appears by id only, fraud
decisions as the signals that weighed (their evidence quotes the other party), visits through
the customer's links as a count.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign, CampaignProgress, CampaignSale, ContestStanding, PromotionRulesAcceptance
from app.config import get_settings
from app.db import AnySelect, plain, utcnow
from app.fraud.models import CustomerIdentifier, FraudDecision, FraudListEntry, FraudReview, ListKind
from app.fraud.signals import CATALOGUE
from app.leads.models import Lead, LeadEvent
from app.merchants import audit
from app.merchants.models import Merchant
from app.partners.models import Partner, PartnerSale, PartnerSaleShare, PartnerStatusChange
from app.personal import hashed_value, keyring
from app.privacy.models import CustomerDataExport, CustomerErasure, ExportStatus
from app.referrals import customers
from app.referrals.models import Action, Click, Customer, Referral, ReferralCode
from app.rewards.models import Coupon, LedgerAccount, LedgerEntry, LedgerTransaction, Reward
from app.webhooks import events
from app.webhooks.service import emit
from app.worker import outbox

FORMAT = "referral.customer-export/1"
EXPORT_JOB = "privacy.export"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def request_export(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str, actor: audit.Actor
) -> CustomerDataExport:
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    export = CustomerDataExport(
        merchant_id=merchant_id,
        customer_id=customer.id,
        status=ExportStatus.PENDING,
        requested_by_key_id=actor.key_id,
        requested_at=utcnow(),
    )
    session.add(export)
    await session.flush()
    await outbox.enqueue(session, EXPORT_JOB, merchant_id=merchant_id, export_id=export.id)
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="customer.export_requested",
        subject_id=customer.id,
        details={"export_id": str(export.id)},
    )
    return export


async def get_export(session: AsyncSession, *, merchant_id: uuid.UUID, export_id: uuid.UUID) -> CustomerDataExport | None:
    return await session.scalar(
        select(CustomerDataExport).where(CustomerDataExport.id == export_id, CustomerDataExport.merchant_id == merchant_id)
    )


def _context(export_id: uuid.UUID) -> str:
    return f"customer_export:{export_id}"


async def build(session: AsyncSession, *, export_id: uuid.UUID) -> None:
    """The job: build the document of a PENDING export (once: a second delivery finds it READY)."""
    export = await session.scalar(select(CustomerDataExport).where(CustomerDataExport.id == export_id).with_for_update())
    if export is None or export.status != ExportStatus.PENDING:
        return
    customer = await session.get_one(Customer, export.customer_id)
    body = json.dumps(await document_of(session, customer), ensure_ascii=False, separators=(",", ":"))
    now = utcnow()
    export.document_encrypted = keyring().encrypt(body, context=_context(export.id))
    export.document_bytes = len(body.encode())
    export.status = ExportStatus.READY
    export.ready_at = now
    export.expires_at = now + timedelta(hours=get_settings().export_link_hours)
    await session.flush()
    await emit(
        session,
        export.merchant_id,
        events.CUSTOMER_EXPORT_READY,
        {
            "exportId": str(export.id),
            "customerId": str(customer.id),
            "customerExternalId": customer.external_id,
            "expiresAt": _iso(export.expires_at),
        },
    )


async def take_document(session: AsyncSession, *, merchant_id: uuid.UUID, export_id: uuid.UUID) -> str | None:
    """The document, once: it is deleted in the same transaction. None when there is none to
    give (unknown, not ready, downloaded, expired)."""
    export = await session.scalar(
        select(CustomerDataExport)
        .where(CustomerDataExport.id == export_id, CustomerDataExport.merchant_id == merchant_id)
        .with_for_update()
    )
    now = utcnow()
    if export is None or export.status != ExportStatus.READY or export.expires_at is None or export.expires_at <= now:
        return None
    assert export.document_encrypted is not None
    document = keyring().decrypt(export.document_encrypted, context=_context(export.id))
    export.status = ExportStatus.DOWNLOADED
    export.document_encrypted = None
    export.downloaded_at = now
    await session.flush()
    return document


async def expire_due(session: AsyncSession, *, now: datetime | None = None, customer_id: uuid.UUID | None = None) -> int:
    """Delete the documents of exports past their expiry (or all of one customer's)."""
    now = now or utcnow()
    query = select(CustomerDataExport).where(CustomerDataExport.status.in_([ExportStatus.READY, ExportStatus.PENDING]))
    query = (
        query.where(CustomerDataExport.customer_id == customer_id)
        if customer_id
        else query.where(CustomerDataExport.status == ExportStatus.READY, CustomerDataExport.expires_at <= now)
    )
    expired = list((await session.scalars(query.with_for_update())).all())
    for export in expired:
        export.status = ExportStatus.EXPIRED
        export.document_encrypted = None
    await session.flush()
    return len(expired)


# --- the document -----------------------------------------------------------------------------------


async def _rows(session: AsyncSession, query: AnySelect) -> list[Any]:
    return list((await session.scalars(query)).all())


async def document_of(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    merchant_id = customer.merchant_id
    merchant = await session.get_one(Merchant, merchant_id)
    codes = await _rows(session, select(ReferralCode).where(ReferralCode.customer_id == customer.id).order_by(ReferralCode.id))
    as_referrer = await _rows(session, select(Referral).where(Referral.referrer_id == customer.id).order_by(Referral.id))
    as_referee = await _rows(session, select(Referral).where(Referral.referee_id == customer.id).order_by(Referral.id))
    actions = await _rows(session, select(Action).where(Action.customer_id == customer.id).order_by(Action.id))
    own_click_ids = {r.click_id for r in as_referee if r.click_id} | {a.click_id for a in actions if a.click_id}
    own_clicks = (
        await _rows(session, select(Click).where(Click.id.in_(own_click_ids)).order_by(Click.id)) if own_click_ids else []
    )
    visits = await session.scalar(select(func.count(Click.id)).where(Click.code_id.in_([c.id for c in codes]))) if codes else 0
    referral_ids = [r.id for r in as_referrer + as_referee]
    return {
        "format": FORMAT,
        "generatedAt": _iso(utcnow()),
        "merchant": {"id": str(merchant.id), "name": merchant.name},
        "customer": {
            "id": str(customer.id),
            "externalId": customer.external_id,
            "email": customer.email,
            "emailCanonical": customer.email_canonical,
            "name": customer.name,
            "metadata": customer.metadata_,
            "createdAt": _iso(customer.created_at),
            "updatedAt": _iso(customer.updated_at),
            "erasedAt": _iso(customer.erased_at),
        },
        "referralCodes": [
            {
                "id": str(c.id),
                "programId": str(c.program_id),
                "code": c.code,
                "isVanity": c.is_vanity,
                "active": c.active,
                "createdAt": _iso(c.created_at),
                "deactivatedAt": _iso(c.deactivated_at),
            }
            for c in codes
        ],
        "clicks": {
            "own": [
                {
                    "id": str(c.id),
                    "programId": str(c.program_id),
                    "codeId": str(c.code_id),
                    "createdAt": _iso(c.created_at),
                    "deviceId": c.device_id,
                    "deviceFingerprint": c.device_fingerprint,
                    "ip": c.ip,
                    "userAgent": c.user_agent,
                    "landingUrl": c.landing_url,
                }
                for c in own_clicks
            ],
            "visitsThroughTheirLinks": visits,
        },
        "actions": [_action(a) for a in actions],
        "referrals": {
            "asReferrer": [_referral(r, other=("refereeId", r.referee_id)) for r in as_referrer],
            "asReferee": [_referral(r, other=("referrerId", r.referrer_id)) for r in as_referee],
        },
        "rewards": [
            _reward(r) for r in await _rows(session, select(Reward).where(Reward.customer_id == customer.id).order_by(Reward.id))
        ],
        "coupons": [
            {
                "id": str(c.id),
                "code": c.code,
                "status": plain(c.status),
                "rewardId": _id(c.reward_id),
                "percentOffBps": c.percent_off_bps,
                "amountOff": c.amount_off,
                "currency": c.currency,
                "minOrderAmount": c.min_order_amount,
                "expiresAt": _iso(c.expires_at),
                "redeemedOrderId": c.redeemed_order_id,
                "redeemedAt": _iso(c.redeemed_at),
            }
            for c in await _rows(session, select(Coupon).where(Coupon.customer_id == customer.id).order_by(Coupon.id))
        ],
        "ledger": await _ledger(session, customer),
        "fraud": await _fraud(session, customer, referral_ids),
        "payouts": await _payouts(session, customer),
        "partners": await _partners(session, customer),
        "campaigns": await _campaigns(session, customer),
        "promotionRules": await _promotion_rules(session, customer),
        "leads": await _leads(session, customer),
        "dataRequests": await _data_requests(session, customer),
    }


async def _partners(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """Their affiliate enrolments with each status change, the sales made through their links,
    and their own shares of sales (as affiliate or co-producer)."""
    enrolments = await _rows(session, select(Partner).where(Partner.customer_id == customer.id).order_by(Partner.id))
    history = (
        await _rows(
            session,
            select(PartnerStatusChange)
            .where(PartnerStatusChange.partner_id.in_([p.id for p in enrolments]))
            .order_by(PartnerStatusChange.id),
        )
        if enrolments
        else []
    )
    sales = await _rows(session, select(PartnerSale).where(PartnerSale.affiliate_id == customer.id).order_by(PartnerSale.id))
    shares = await _rows(
        session, select(PartnerSaleShare).where(PartnerSaleShare.customer_id == customer.id).order_by(PartnerSaleShare.id)
    )
    return {
        "enrolments": [
            {
                "id": str(p.id),
                "programId": str(p.program_id),
                "status": plain(p.status),
                "invited": p.invited,
                "applicationNote": p.application_note,
                "appliedAt": _iso(p.applied_at),
                "decidedAt": _iso(p.decided_at),
                "history": [
                    {
                        "fromStatus": plain(h.from_status),
                        "toStatus": plain(h.to_status),
                        "reason": h.reason,
                        "at": _iso(h.created_at),
                    }
                    for h in history
                    if h.partner_id == p.id
                ],
            }
            for p in enrolments
        ],
        "salesAsAffiliate": [
            {
                "id": str(s.id),
                "orderId": s.order_id,
                "subId": s.sub_id,
                "amount": s.amount,
                "currency": s.currency,
                "refundedAmount": s.refunded_amount,
                "status": plain(s.status),
                "reason": s.reason,
                "occurredAt": _iso(s.occurred_at),
            }
            for s in sales
        ],
        "shares": [
            {
                "id": str(s.id),
                "saleId": str(s.sale_id),
                "role": plain(s.role),
                "shareBps": s.share_bps,
                "amount": s.amount,
                "reversedAmount": s.reversed_amount,
                "unit": s.unit,
            }
            for s in shares
        ],
    }


async def _payouts(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """Payout destinations as the merchant sees them (masked), and the payouts made."""
    from app.payouts.models import Payout, PayoutAccount

    accounts = await _rows(
        session, select(PayoutAccount).where(PayoutAccount.customer_id == customer.id).order_by(PayoutAccount.id)
    )
    payouts = await _rows(session, select(Payout).where(Payout.customer_id == customer.id).order_by(Payout.id))
    return {
        "accounts": [
            {
                "id": str(a.id),
                "method": a.method,
                "customType": a.custom_type,
                "masked": a.masked,
                "createdAt": _iso(a.created_at),
                "supersededAt": _iso(a.superseded_at),
            }
            for a in accounts
        ],
        "payouts": [
            {
                "id": str(p.id),
                "status": plain(p.status),
                "amount": p.amount,
                "currency": p.currency,
                "provider": p.provider,
                "createdAt": _iso(p.created_at),
                "paidAt": _iso(p.paid_at),
                "endedAt": _iso(p.ended_at),
            }
            for p in payouts
        ],
    }


async def _campaigns(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """The customer's standing in the merchant's campaigns and contests, as a referrer."""
    progress = (
        await session.execute(
            select(CampaignProgress, Campaign)
            .join(Campaign, Campaign.id == CampaignProgress.campaign_id)
            .where(CampaignProgress.referrer_id == customer.id)
            .order_by(CampaignProgress.id)
        )
    ).all()
    sales = await _rows(session, select(CampaignSale).where(CampaignSale.referrer_id == customer.id).order_by(CampaignSale.id))
    standings = await _rows(
        session, select(ContestStanding).where(ContestStanding.referrer_id == customer.id).order_by(ContestStanding.id)
    )
    return {
        "progress": [
            {
                "id": str(p.id),
                "campaignId": str(c.id),
                "campaign": c.name,
                "kind": plain(c.kind),
                "startsAt": _iso(c.starts_at),
                "endsAt": _iso(c.ends_at),
                "sales": p.sales,
                "salesAmount": p.sales_amount,
                "commission": p.commission,
                "tier": p.tier,
                "lastSaleAt": _iso(p.last_sale_at),
            }
            for p, c in progress
        ],
        "sales": [
            {
                "id": str(s.id),
                "campaignId": str(s.campaign_id),
                "actionId": str(s.action_id),
                "orderId": s.order_id,
                "amount": s.amount,
                "currency": s.currency,
                "occurredAt": _iso(s.occurred_at),
                "refundedAt": _iso(s.refunded_at),
            }
            for s in sales
        ],
        "contestStandings": [
            {
                "id": str(s.id),
                "campaignId": str(s.campaign_id),
                "rank": s.rank,
                "sales": s.sales,
                "prizeRewardId": _id(s.prize_reward_id),
            }
            for s in standings
        ],
    }


async def _promotion_rules(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    acceptances = await _rows(
        session,
        select(PromotionRulesAcceptance)
        .where(PromotionRulesAcceptance.customer_id == customer.id)
        .order_by(PromotionRulesAcceptance.id),
    )
    return {
        "acceptances": [
            {
                "id": str(a.id),
                "programId": str(a.program_id),
                "version": a.version,
                "via": a.via,
                "acceptedAt": _iso(a.accepted_at),
            }
            for a in acceptances
        ]
    }


async def _leads(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    """The leads the customer submitted, with what they gave (the contact, their notes) and
    the steps as they see them: staff notes only where staff marked them for the referrer."""
    leads = await _rows(session, select(Lead).where(Lead.referrer_id == customer.id).order_by(Lead.id))
    steps = (
        await _rows(session, select(LeadEvent).where(LeadEvent.lead_id.in_([lead.id for lead in leads])).order_by(LeadEvent.id))
        if leads
        else []
    )
    return [
        {
            "id": str(lead.id),
            "programId": str(lead.program_id),
            "status": plain(lead.status),
            "company": lead.company,
            "companyDomain": lead.company_domain,
            "contactName": lead.contact_name,
            "contactEmail": lead.contact_email,
            "notes": lead.notes,
            "idempotencyKey": lead.idempotency_key,
            "feeRewardId": _id(lead.fee_reward_id),
            "createdAt": _iso(lead.created_at),
            "updatedAt": _iso(lead.updated_at),
            "steps": [
                {
                    "id": str(s.id),
                    "fromStatus": plain(s.from_status),
                    "toStatus": plain(s.to_status),
                    "byReferrer": s.actor_customer_id is not None,
                    "notes": s.notes if s.notes_visible_to_referrer else None,
                    "at": _iso(s.created_at),
                }
                for s in steps
                if s.lead_id == lead.id
            ],
        }
        for lead in leads
    ]


def _action(a: Action) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "type": a.type,
        "programId": _id(a.program_id),
        "referralId": _id(a.referral_id),
        "idempotencyKey": a.idempotency_key,
        "amount": a.amount,
        "currency": a.currency,
        "orderId": a.order_id,
        "occurredAt": _iso(a.occurred_at),
        "createdAt": _iso(a.created_at),
        "attribution": plain(a.attribution_status),
        "referralCode": a.referral_code,
        "clickId": _id(a.click_id),
        "deviceId": a.device_id,
        "deviceFingerprint": a.device_fingerprint,
        "ip": a.ip,
        "userAgent": a.user_agent,
        "email": a.email,
        "paymentFingerprint": a.payment_fingerprint,
        "shippingAddress": a.shipping_address,
        "metadata": a.metadata_,
    }


def _referral(r: Referral, *, other: tuple[str, uuid.UUID]) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "programId": str(r.program_id),
        "status": plain(r.status),
        "source": r.source,
        "codeId": str(r.code_id),
        other[0]: str(other[1]),
        "createdAt": _iso(r.created_at),
        "referredAt": _iso(r.referred_at),
        "qualifiedAt": _iso(r.qualified_at),
    }


def _reward(r: Reward) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "programId": str(r.program_id),
        "referralId": _id(r.referral_id),
        "source": r.source,
        "recipient": plain(r.recipient),
        "kind": plain(r.kind),
        "amount": r.amount,
        "unit": r.unit,
        "remaining": r.remaining,
        "reversedAmount": r.reversed_amount,
        "status": plain(r.status),
        "holdUntil": _iso(r.hold_until),
        "expiresAt": _iso(r.expires_at),
        "createdAt": _iso(r.created_at),
        "availableAt": _iso(r.available_at),
        "endedAt": _iso(r.ended_at),
        "endReason": r.end_reason,
    }


async def _ledger(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    accounts = await _rows(
        session,
        select(LedgerAccount)
        .where(LedgerAccount.merchant_id == customer.merchant_id, LedgerAccount.owner_id == customer.id)
        .order_by(LedgerAccount.id),
    )
    entries = (
        (
            await session.execute(
                select(LedgerEntry, LedgerTransaction)
                .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                .where(LedgerEntry.account_id.in_([a.id for a in accounts]))
                .order_by(LedgerEntry.id)
            )
        ).all()
        if accounts
        else []
    )
    return {
        "accounts": [
            {"id": str(a.id), "kind": plain(a.kind), "accountType": plain(a.account_type), "unit": a.unit, "balance": a.balance}
            for a in accounts
        ],
        "entries": [
            {
                "id": str(e.id),
                "accountId": str(e.account_id),
                "amount": e.amount,
                "unit": e.unit,
                "createdAt": _iso(e.created_at),
                "transactionId": str(t.id),
                "transactionKind": t.kind,
                "rewardId": _id(t.reward_id),
                "reference": t.reference,
            }
            for e, t in entries
        ],
    }


async def _fraud(session: AsyncSession, customer: Customer, referral_ids: list[uuid.UUID]) -> dict[str, Any]:
    identifiers = await _rows(
        session, select(CustomerIdentifier).where(CustomerIdentifier.customer_id == customer.id).order_by(CustomerIdentifier.id)
    )
    decisions = (
        await _rows(session, select(FraudDecision).where(FraudDecision.referral_id.in_(referral_ids)).order_by(FraudDecision.id))
        if referral_ids
        else []
    )
    reviews = (
        await _rows(session, select(FraudReview).where(FraudReview.referral_id.in_(referral_ids)).order_by(FraudReview.id))
        if referral_ids
        else []
    )
    return {
        "status": await _list_entries(session, customer, identifiers),
        "identifiers": [
            {"kind": plain(i.kind), "value": i.value, "firstSeenAt": _iso(i.first_seen_at), "lastSeenAt": _iso(i.last_seen_at)}
            for i in identifiers
        ],
        "decisions": [
            {
                "id": str(d.id),
                "referralId": str(d.referral_id),
                "stage": plain(d.stage),
                "outcome": plain(d.outcome),
                "score": d.score,
                "policyVersion": d.policy_version,
                "createdAt": _iso(d.created_at),
                "signals": [
                    {
                        "signal": o["signal"],
                        "description": CATALOGUE[o["signal"]].description if o["signal"] in CATALOGUE else None,
                        "value": o["value"],
                        "fired": o.get("fired", False),
                        "weight": o.get("weight", 0),
                    }
                    for o in d.observations
                ],
            }
            for d in decisions
        ],
        "reviews": [
            {
                "id": str(r.id),
                "referralId": str(r.referral_id),
                "status": plain(r.status),
                "openedAt": _iso(r.opened_at),
                "resolvedAt": _iso(r.resolved_at),
            }
            for r in reviews
        ],
    }


async def _list_entries(session: AsyncSession, customer: Customer, identifiers: list[CustomerIdentifier]) -> list[dict[str, Any]]:
    """The merchant's marks on the customer (trusted, banned) and list entries naming their
    email, devices, cards or addresses (in clear, or hashed once they were erased)."""
    merchant_id = customer.merchant_id
    named = [(ListKind.TRUSTED_CUSTOMER.value, str(customer.id)), (ListKind.BANNED_CUSTOMER.value, str(customer.id))]
    values = [(ListKind.EMAIL.value, customer.email_canonical)] + [
        (i.kind, i.value) for i in identifiers if i.kind in ("DEVICE", "PAYMENT", "IP")
    ]
    for kind, value in values:
        if value:
            named += [(kind, value), (kind, hashed_value(merchant_id, kind, value))]
    entries = await _rows(
        session,
        select(FraudListEntry)
        .where(
            FraudListEntry.merchant_id == merchant_id,
            or_(*((FraudListEntry.kind == kind) & (FraudListEntry.value == value) for kind, value in named)),
        )
        .order_by(FraudListEntry.id),
    )
    return [{"id": str(e.id), "kind": e.kind.value, "note": e.note, "createdAt": _iso(e.created_at)} for e in entries]


async def _data_requests(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    exports = await _rows(
        session, select(CustomerDataExport).where(CustomerDataExport.customer_id == customer.id).order_by(CustomerDataExport.id)
    )
    erasure = await session.scalar(select(CustomerErasure).where(CustomerErasure.customer_id == customer.id))
    return {
        "exports": [
            {
                "id": str(e.id),
                "status": plain(e.status),
                "requestedAt": _iso(e.requested_at),
                "readyAt": _iso(e.ready_at),
                "downloadedAt": _iso(e.downloaded_at),
            }
            for e in exports
        ],
        "erasure": None
        if erasure is None
        else {
            "pseudonym": erasure.pseudonym,
            "erasedAt": _iso(erasure.erased_at),
            "reason": erasure.reason,
        },
    }
