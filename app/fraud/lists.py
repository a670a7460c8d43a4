"""Merchant lists (blocklists of emails, domains, IPs and ranges, devices, payment
fingerprints) and customer marks (trusted, banned). Values are stored normalized, so a
check matches them with one indexed lookup."""

from __future__ import annotations

import enum
import ipaddress
import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import insert_ignoring_conflicts, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.fraud import engine
from app.fraud.models import FraudListEntry, ListKind
from app.merchants import audit
from app.pagination import Page, paginate
from app.referrals import customers
from app.referrals.emails import canonical_email
from app.referrals.models import Customer, Referral, ReferralStatus

MAX_BANNED_REFERRALS = 1000  # rejected at once when a customer is banned


class CustomerFraudStatus(enum.Enum):
    NONE = "NONE"
    TRUSTED = "TRUSTED"
    BANNED = "BANNED"


_MARKS = {CustomerFraudStatus.TRUSTED: ListKind.TRUSTED_CUSTOMER, CustomerFraudStatus.BANNED: ListKind.BANNED_CUSTOMER}


def normalized_value(kind: ListKind, value: str) -> str:
    value = validation.required_text(value, "value", 320)
    if kind is ListKind.EMAIL:
        return canonical_email(validation.email(value, "value") or value)
    if kind is ListKind.DOMAIN:
        domain = value.lower().lstrip("@").rstrip(".")
        if "." not in domain or "@" in domain or " " in domain:
            raise DomainError("value", ErrorCode.INVALID_INPUT, "a domain such as example.com")
        return domain
    if kind is ListKind.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise DomainError("value", ErrorCode.INVALID_INPUT, "an IPv4 or IPv6 address") from None
    if kind is ListKind.IP_RANGE:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise DomainError("value", ErrorCode.INVALID_INPUT, "a CIDR range such as 203.0.113.0/24") from None
    if kind in (ListKind.TRUSTED_CUSTOMER, ListKind.BANNED_CUSTOMER):
        raise DomainError("kind", ErrorCode.INVALID_INPUT, "mark customers with setCustomerFraudStatus")
    if kind is ListKind.REFERRER_UNDER_REVIEW:
        raise DomainError("kind", ErrorCode.INVALID_INPUT, "set by fraud checks; clear a referrer with clearReferrer")
    return value[:255]


async def add_entry(
    session: AsyncSession, *, merchant_id: uuid.UUID, kind: ListKind, value: str, note: str | None, actor: audit.Actor
) -> FraudListEntry:
    """Add to a blocklist; adding an entry that exists returns it."""
    value = normalized_value(kind, value)
    note = validation.text(note, "note", 1000)
    entry = await _insert(session, merchant_id, kind, value, note, actor)
    return entry


async def _insert(
    session: AsyncSession, merchant_id: uuid.UUID, kind: ListKind, value: str, note: str | None, actor: audit.Actor
) -> FraudListEntry:
    inserted = await session.scalar(
        insert_ignoring_conflicts(session, FraudListEntry, ["merchant_id", "kind", "value"])
        .values(
            id=new_id(),
            merchant_id=merchant_id,
            kind=kind.value,
            value=value,
            note=note,
            created_by_key_id=actor.key_id,
            created_at=utcnow(),
        )
        .returning(FraudListEntry.id)
    )
    entry = await session.scalar(
        select(FraudListEntry).where(
            FraudListEntry.merchant_id == merchant_id, FraudListEntry.kind == kind, FraudListEntry.value == value
        )
    )
    assert entry is not None
    if inserted is not None:  # adding it again changes nothing, so nothing to audit
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action="fraud_list.added",
            subject_id=entry.id,
            note=note,
            details={"kind": kind.value, "value": value},
        )
    return entry


async def remove_entry(
    session: AsyncSession, *, merchant_id: uuid.UUID, entry_id: uuid.UUID, actor: audit.Actor
) -> FraudListEntry:
    entry = await session.scalar(
        select(FraudListEntry).where(FraudListEntry.id == entry_id, FraudListEntry.merchant_id == merchant_id)
    )
    if entry is None:
        raise NotFound("id", "list entry")
    await session.delete(entry)
    await session.flush()
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="fraud_list.removed",
        subject_id=entry.id,
        details={"kind": entry.kind.value, "value": entry.value},
    )
    return entry


async def list_entries(
    session: AsyncSession, *, merchant_id: uuid.UUID, kind: ListKind | None, first: int | None, after: str | None
) -> Page[FraudListEntry]:
    query = select(FraudListEntry).where(FraudListEntry.merchant_id == merchant_id)
    if kind is not None:
        query = query.where(FraudListEntry.kind == kind)
    return await paginate(session, query, FraudListEntry.id, first=first, after=after)


async def customer_status(session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str) -> CustomerFraudStatus:
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    customer_id = customer.id
    kind = await session.scalar(
        select(FraudListEntry.kind).where(
            FraudListEntry.merchant_id == merchant_id,
            FraudListEntry.kind.in_(list(_MARKS.values())),
            FraudListEntry.value == str(customer_id),
        )
    )
    return next((s for s, k in _MARKS.items() if k == kind), CustomerFraudStatus.NONE)


async def set_customer_status(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    customer_external_id: str,
    status: CustomerFraudStatus,
    note: str | None,
    actor: audit.Actor,
) -> Customer:
    """TRUSTED: their referrals skip review and are never blocked by a score (see
    `policy.trusted_outcome`). BANNED: every referral of theirs, as referrer or referee, is
    rejected now and blocked from now on."""
    note = validation.text(note, "note", 1000)
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    existing = (
        await session.scalars(
            select(FraudListEntry).where(
                FraudListEntry.merchant_id == merchant_id,
                FraudListEntry.kind.in_(list(_MARKS.values())),
                FraudListEntry.value == str(customer.id),
            )
        )
    ).all()
    for entry in existing:
        if status is CustomerFraudStatus.NONE or entry.kind is not _MARKS[status]:
            await session.delete(entry)
    await session.flush()
    if status is not CustomerFraudStatus.NONE:
        await _insert(session, merchant_id, _MARKS[status], str(customer.id), note, actor)
    else:
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action="fraud_list.customer_cleared",
            subject_id=customer.id,
            note=note,
        )
    if status is CustomerFraudStatus.BANNED:
        referrals = (
            await session.scalars(
                select(Referral)
                .where(
                    Referral.merchant_id == merchant_id,
                    or_(Referral.referrer_id == customer.id, Referral.referee_id == customer.id),
                    Referral.status != ReferralStatus.REJECTED,
                )
                .order_by(Referral.id)
                .limit(MAX_BANNED_REFERRALS)
            )
        ).all()
        for referral in referrals:
            await engine.reject_referral(session, referral, reason="customer banned", decision=None)
    return customer
