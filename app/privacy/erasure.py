"""Erasing a customer: their personal data removed or irreversibly pseudonymised, the books kept.

What stays: the customer row (under a pseudonym, `erased-<hash>`), their referrals, actions,
rewards, coupons and every ledger entry and balance, unchanged: amounts still add up and
`referral ledger verify` still passes; refunds of their orders still take back what they earned.

What goes, in one transaction (`classification.COLUMNS` says it column by column):

- the profile (email, name, metadata) and the merchant's id for them (now the pseudonym);
- their actions' context (email, IP, browser, device, card, address) and the click that
  brought them; their fraud identifiers' values (the keyed hashes stay, so a returning
  fraudster's device, card or address still matches); the merchant's blocklist entries with
  their email, devices, cards or IPs become keyed hashes (they still block), and a banned
  customer's email, devices and cards are blocklisted that way, so the ban outlives the name;
- their codes stop working, and a vanity or name code is renamed (it may spell the name);
- the leads they submitted keep their company and status (the fee they earned stays
  explained), but the person to contact there, a third party who reached the merchant only
  through them, goes with them: contact name, email and every note on the lead (theirs and
  the staff's, in the lead's steps, the audit log and `lead.status_changed` deliveries). The
  contact email's keyed hash stays, so a later lead naming the same person is still a duplicate;
- every quote of their values in fraud evidence, review notes, webhook deliveries (sent or
  not), the audit log and list notes;
- pending exports of their data.

Erasing again (by the old id or the pseudonym) answers the first result. The erasure is audited
and announced with `customer.erased`; later events and exports show only the pseudonym.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import text, validation
from app.config import get_settings
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import NotFound
from app.fraud.models import CustomerIdentifier, FraudDecision, FraudListEntry, FraudReview, ListKind
from app.leads.models import Lead, LeadEvent
from app.merchants import audit
from app.merchants.models import AuditEntry
from app.partners.models import Partner, PartnerStatusChange
from app.personal import hashed_value, lookup_hash
from app.privacy import export, scrub
from app.privacy.models import CustomerErasure
from app.referrals import customers
from app.referrals.codes import CODE_ALPHABET, random_part
from app.referrals.emails import canonical_email
from app.referrals.models import Action, Click, Customer, Referral, ReferralCode
from app.rewards.models import LedgerTransaction
from app.webhooks import events
from app.webhooks.models import WebhookAttempt, WebhookDelivery
from app.webhooks.service import emit

PSEUDONYM_PREFIX = "erased-"
REPLACED = "[erased]"
_LISTED_KINDS = {"EMAIL": ListKind.EMAIL, "DEVICE": ListKind.DEVICE, "PAYMENT": ListKind.PAYMENT, "IP": ListKind.IP}
_CARRIED_BY_A_BAN = ("EMAIL", "DEVICE", "PAYMENT")  # not IPs: networks are shared


@dataclass(frozen=True)
class Erasure:
    record: CustomerErasure
    customer: Customer
    replayed: bool  # erased before: this call changed nothing


def pseudonym_of(customer: Customer) -> str:
    return PSEUDONYM_PREFIX + lookup_hash(customer.merchant_id, "PSEUDONYM", str(customer.id))[:16]


async def erase_customer(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str, reason: str, actor: audit.Actor
) -> Erasure:
    external_id = customers.external_id(customer_external_id)
    reason = validation.required_text(reason, "reason", 500)
    customer = await session.scalar(
        select(Customer)
        .where(Customer.merchant_id == merchant_id, Customer.external_id == external_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if customer is None or customer.erased_at is not None:  # gone, or named by its pseudonym
        record = await _earlier_erasure(session, merchant_id, external_id, customer)
        if record is None:
            raise NotFound("customerExternalId", "customer")
        if customer is None:
            customer = await session.get_one(Customer, record.customer_id)
        return Erasure(record, customer, replayed=True)
    record = await _erase(session, customer, reason, actor)
    return Erasure(record, customer, replayed=False)


async def _earlier_erasure(
    session: AsyncSession, merchant_id: uuid.UUID, external_id: str, customer: Customer | None
) -> CustomerErasure | None:
    query = select(CustomerErasure).where(CustomerErasure.merchant_id == merchant_id)
    if customer is not None:
        query = query.where(CustomerErasure.customer_id == customer.id)
    else:  # the id the merchant knew them by; the latest, if one id was erased twice
        query = query.where(CustomerErasure.external_id_hash == lookup_hash(merchant_id, "CUSTOMER", external_id))
    return await session.scalar(query.order_by(CustomerErasure.id.desc()).limit(1))


async def _erase(session: AsyncSession, customer: Customer, reason: str, actor: audit.Actor) -> CustomerErasure:
    merchant_id, now = customer.merchant_id, utcnow()
    pseudonym, original_id = pseudonym_of(customer), customer.external_id
    identifiers = list(
        (await session.scalars(select(CustomerIdentifier).where(CustomerIdentifier.customer_id == customer.id))).all()
    )
    actions = list((await session.scalars(select(Action).where(Action.customer_id == customer.id))).all())
    clicks = await _own_clicks(session, customer, actions)
    renamed = await _retire_codes(session, customer, now)
    replacements = _replacements(customer, identifiers, actions, clicks, renamed, pseudonym)
    changes: dict[str, int] = {
        "fraud_list_entries": await _hash_list_entries(session, customer, identifiers, actions, clicks, pseudonym),
        "customer_identifiers": len(identifiers),
        "actions": len(actions),
        "clicks": len(clicks),
        "referral_codes": len(renamed),
    }
    for identifier in identifiers:
        identifier.value = None
    for action in actions:
        action.email = action.ip = action.user_agent = action.device_id = action.device_fingerprint = None
        action.payment_fingerprint = action.shipping_address = None
        if action.metadata_:
            action.metadata_ = scrub.map_strings(action.metadata_, scrub.replacer(replacements))
    leads = list((await session.scalars(select(Lead).where(Lead.referrer_id == customer.id))).all())
    changes["leads"] = await _empty_leads(session, customer, leads)
    changes["idempotency_keys"] = await _rekey(session, customer, [*actions, *leads], replacements)
    for click in clicks:
        click.device_id = click.device_fingerprint = click.ip = click.user_agent = click.landing_url = None
    changes["payout_accounts"] = await _empty_payout_accounts(session, customer)
    changes.update(await _scrub_quotes(session, customer, replacements))
    changes["customer_data_exports"] = await export.expire_due(session, customer_id=customer.id)
    customer.external_id = pseudonym
    customer.email = customer.email_canonical = customer.name = customer.metadata_ = None
    customer.erased_at = now
    await session.flush()
    record = CustomerErasure(
        id=new_id(),
        merchant_id=merchant_id,
        customer_id=customer.id,
        external_id_hash=lookup_hash(merchant_id, "CUSTOMER", original_id),
        pseudonym=pseudonym,
        reason=reason,
        erased_by_key_id=actor.key_id,
        erased_at=now,
        changes=changes,
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action=events.CUSTOMER_ERASED,
        subject_id=customer.id,
        note=reason,
        details={"pseudonym": pseudonym, "changes": changes},
    )
    await emit(
        session,
        merchant_id,
        events.CUSTOMER_ERASED,
        {
            "customerId": str(customer.id),
            "customerExternalId": pseudonym,
            "erasedAt": now.isoformat(),
            "reason": reason,
        },
    )
    return record


async def _rekey(session: AsyncSession, customer: Customer, submitted: list[Action | Lead], replacements: dict[str, str]) -> int:
    """Idempotency keys are the merchant's, but some name the customer ("signup-jane"): those
    of the customer's actions, leads and ledger transactions become keyed hashes. (A retry after the
    erasure is then a new request; order ids stay, so refunds still find their orders.)"""
    names = [v.casefold() for v in replacements if len(v) >= scrub.MIN_TOKEN_LENGTH]
    transactions = list(
        (
            await session.scalars(
                select(LedgerTransaction).where(
                    LedgerTransaction.customer_id == customer.id, LedgerTransaction.idempotency_key.is_not(None)
                )
            )
        ).all()
    )
    changed = 0
    for row in [*submitted, *transactions]:
        if row.idempotency_key and any(name in row.idempotency_key.casefold() for name in names):
            row.idempotency_key = PSEUDONYM_PREFIX + lookup_hash(customer.merchant_id, "IDEMPOTENCY", row.idempotency_key)[:32]
            changed += 1
    await session.flush()
    return changed


async def _empty_leads(session: AsyncSession, customer: Customer, leads: list[Lead]) -> int:
    """The contact of each lead the customer submitted, and every note about them, emptied
    (see the module's docstring). Returns how many leads."""
    if not leads:
        return 0
    lead_ids = [lead.id for lead in leads]
    for lead in leads:
        lead.contact_name = lead.contact_email = lead.notes = None
    await session.execute(update(LeadEvent).where(LeadEvent.lead_id.in_(lead_ids)).values(notes=None))
    await session.execute(
        update(AuditEntry)
        .where(
            AuditEntry.merchant_id == customer.merchant_id, AuditEntry.subject_id.in_(lead_ids), AuditEntry.action.like("lead.%")
        )
        .values(note=None)
    )
    deliveries = (
        await session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.merchant_id == customer.merchant_id,
                WebhookDelivery.event_type == events.LEAD_STATUS_CHANGED,
                WebhookDelivery.id >= scrub.id_floor(customer.created_at),
                scrub.mentions(WebhookDelivery.payload, [str(lead_id) for lead_id in lead_ids]),
            )
        )
    ).all()
    for delivery in deliveries:
        if delivery.payload.get("leadId") in {str(lead_id) for lead_id in lead_ids}:
            delivery.payload = {**delivery.payload, "notesForReferrer": None}
    await session.flush()
    return len(leads)


async def _own_clicks(session: AsyncSession, customer: Customer, actions: list[Action]) -> list[Click]:
    """The clicks the customer made: the one that brought them, and those their actions carried."""
    ids = {a.click_id for a in actions if a.click_id} | set(
        (
            await session.scalars(
                select(Referral.click_id).where(Referral.referee_id == customer.id, Referral.click_id.is_not(None))
            )
        ).all()
    )
    return list((await session.scalars(select(Click).where(Click.id.in_(ids)))).all()) if ids else []


def _spells_a_name(code: ReferralCode) -> bool:
    """Vanity and name codes (JANE-K7M3) may carry the name; random ones are only random."""
    return code.is_vanity or not all(ch in CODE_ALPHABET for ch in code.code)


async def _retire_codes(session: AsyncSession, customer: Customer, now: datetime) -> dict[str, str]:
    """Deactivate the customer's codes and rename those that may spell their name, in the
    codes, in the actions that typed them and in the landing URLs of clicks on them.
    Returns {old code: new code}."""
    renamed: dict[str, str] = {}
    codes = list((await session.scalars(select(ReferralCode).where(ReferralCode.customer_id == customer.id))).all())
    for code in codes:
        if code.active:
            code.active, code.deactivated_at = False, now
        if _spells_a_name(code):
            new = "ERASED-" + random_part(12)
            renamed[code.code] = new
            await session.execute(
                update(Action)
                .where(Action.merchant_id == customer.merchant_id, Action.referral_code == code.code)
                .values(referral_code=new)
            )
            await session.execute(update(Click).where(Click.code_id == code.id).values(landing_url=None))
            code.code, code.lookup_key = new, text.code_key(new)
    await session.flush()
    return renamed


def _present(*values: str | None) -> set[str]:
    return {v for v in values if v}


def _replacements(
    customer: Customer,
    identifiers: list[CustomerIdentifier],
    actions: list[Action],
    clicks: list[Click],
    renamed: dict[str, str],
    pseudonym: str,
) -> dict[str, str]:
    """Every readable value of the customer, and what replaces it in text."""
    values = _present(
        customer.email,
        customer.email_canonical,
        customer.name,
        text.name_key(customer.name),
        text.name_skeleton(customer.name),
    )
    values |= {i.value for i in identifiers if i.value}
    for action in actions:
        values |= _present(
            action.email,
            action.ip,
            action.user_agent,
            action.device_id,
            action.device_fingerprint,
            action.payment_fingerprint,
        )
        values |= {v for k, v in (action.shipping_address or {}).items() if k not in ("country", "region") and v}
    for click in clicks:
        values |= _present(click.device_id, click.ip, click.user_agent, click.device_fingerprint)
    replacements = dict.fromkeys(values, REPLACED)
    replacements.update(renamed)
    replacements[customer.external_id] = pseudonym
    return replacements


async def _hash_list_entries(
    session: AsyncSession,
    customer: Customer,
    identifiers: list[CustomerIdentifier],
    actions: list[Action],
    clicks: list[Click],
    pseudonym: str,
) -> int:
    """The merchant's list entries naming the customer's email, devices, cards or IPs hold their
    keyed hashes from now on (they still match; nobody can read them). A banned customer's
    email, devices and cards are added that way, so the ban still stops them coming back."""
    merchant_id = customer.merchant_id
    values: dict[str, set[str]] = {kind: set() for kind in _LISTED_KINDS}
    values["EMAIL"] |= {canonical_email(e) for e in [customer.email_canonical, *(a.email for a in actions)] if e}
    for identifier in identifiers:
        if identifier.kind in values and identifier.value:
            values[identifier.kind].add(identifier.value)
    values["DEVICE"] |= {c.device_id for c in clicks if c.device_id}
    pairs = [(kind, value) for kind, found in values.items() for value in found]
    changed = 0
    for kind, value in pairs:
        entry = await session.scalar(
            select(FraudListEntry).where(
                FraudListEntry.merchant_id == merchant_id, FraudListEntry.kind == kind, FraudListEntry.value == value
            )
        )
        if entry is None:
            continue
        hashed = hashed_value(merchant_id, kind, value)
        if await _list_entry(session, merchant_id, kind, hashed) is None:
            entry.value = hashed
        else:
            await session.delete(entry)  # another erasure hashed the same value already
        changed += 1
    banned = await _list_entry(session, merchant_id, ListKind.BANNED_CUSTOMER.value, str(customer.id))
    if banned is not None:
        for kind, value in pairs:
            if kind in _CARRIED_BY_A_BAN:
                inserted = await session.scalar(
                    insert_ignoring_conflicts(session, FraudListEntry, ["merchant_id", "kind", "value"])
                    .values(
                        id=new_id(),
                        merchant_id=merchant_id,
                        kind=kind,
                        value=hashed_value(merchant_id, kind, value),
                        note=f"banned customer {pseudonym}, erased",
                        created_by_key_id=None,
                        created_at=utcnow(),
                    )
                    .returning(FraudListEntry.id)
                )
                changed += inserted is not None
    await session.flush()
    return changed


async def _list_entry(session: AsyncSession, merchant_id: uuid.UUID, kind: str, value: str) -> FraudListEntry | None:
    return await session.scalar(
        select(FraudListEntry).where(
            FraudListEntry.merchant_id == merchant_id, FraudListEntry.kind == kind, FraudListEntry.value == value
        )
    )


async def _empty_payout_accounts(session: AsyncSession, customer: Customer) -> int:
    """A payout destination (PayPal email, IBAN and holder) is emptied and its masked form
    replaced; its keyed fingerprint stays, so the same destination on another account still
    matches (`fraud.signals.shared_payout_account`)."""
    from app.payouts import accounts as payout_accounts
    from app.payouts.models import PayoutAccount

    rows = list((await session.scalars(select(PayoutAccount).where(PayoutAccount.customer_id == customer.id))).all())
    for account in rows:
        account.details_encrypted = payout_accounts.sealed_details(get_settings(), account.id, {})
        account.masked = "erased"
    return len(rows)


async def _scrub_quotes(session: AsyncSession, customer: Customer, replacements: dict[str, str]) -> dict[str, int]:
    """Replace the customer's values wherever text quotes them. Evidence and deliveries made
    before the customer existed cannot name them: those are skipped by id (UUIDv7, time-ordered)."""
    merchant_id, change = customer.merchant_id, scrub.replacer(replacements)
    values = list(replacements)
    since = scrub.id_floor(customer.created_at)
    programs = select(Referral.program_id).where((Referral.referrer_id == customer.id) | (Referral.referee_id == customer.id))
    targets: list[tuple[Any, list[str], list]] = [
        (
            FraudDecision,
            ["observations", "adjustments"],
            [FraudDecision.merchant_id == merchant_id, FraudDecision.program_id.in_(programs), FraudDecision.id >= since],
        ),
        (FraudReview, ["resolution_note"], [FraudReview.merchant_id == merchant_id, FraudReview.program_id.in_(programs)]),
        (WebhookDelivery, ["payload"], [WebhookDelivery.merchant_id == merchant_id, WebhookDelivery.id >= since]),
        (WebhookAttempt, ["response_excerpt"], [WebhookAttempt.merchant_id == merchant_id, WebhookAttempt.id >= since]),
        (AuditEntry, ["note", "details"], [AuditEntry.merchant_id == merchant_id]),
        (FraudListEntry, ["note"], [FraudListEntry.merchant_id == merchant_id]),
        (Partner, ["application_note"], [Partner.merchant_id == merchant_id, Partner.customer_id == customer.id]),
        (PartnerStatusChange, ["reason"], [PartnerStatusChange.merchant_id == merchant_id]),
    ]
    changes: dict[str, int] = {}
    for model, columns, scope in targets:
        attributes = {name: _attribute(model, name) for name in columns}
        rows = (
            await session.scalars(
                select(model).where(*scope, or_(*(scrub.mentions(getattr(model, attr), values) for attr in attributes.values())))
            )
        ).all()
        count = 0
        for row in rows:
            touched = False
            for attr in attributes.values():
                before = getattr(row, attr)
                after = scrub.map_strings(before, change)
                if after != before:
                    setattr(row, attr, after)
                    touched = True
            count += touched
        changes[model.__tablename__] = count
    await session.flush()
    return changes


def _attribute(model: Any, column: str) -> str:
    """The mapped attribute of a column (`metadata` is `metadata_`)."""
    for attribute in model.__mapper__.column_attrs:
        if attribute.columns[0].name == column:
            return attribute.key
    raise KeyError(column)
