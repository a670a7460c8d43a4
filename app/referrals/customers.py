"""Customers, keyed by the merchant's own id. Upserts are safe under concurrent calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import insert_one, merchant_records, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.referrals.emails import canonical_email
from app.referrals.models import Customer, CustomerRecord
from app.worker import outbox

EMAIL_CHANGED_JOB = "referrals.email_changed"  # the event, handled by app.fraud.jobs (a layer above)


@dataclass
class CustomerDetails:
    """What the merchant tells us about a customer; None leaves a stored value as it is."""

    email: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None

    def validated(self) -> CustomerDetails:
        return CustomerDetails(
            email=validation.email(self.email, "email"),
            name=validation.text(self.name, "name", 200, strip=False),  # kept exactly as given, in any script
            metadata=validation.json_object(self.metadata, "metadata"),
        )


def external_id(value: str | None, field: str = "customerExternalId") -> str:
    return validation.required_text(value, field, 255, strip=False)


ONE_CUSTOMER_PER_EXTERNAL_ID = ("merchant_id", "external_id")


def new_customer(*, merchant_id: uuid.UUID, external_id: str, email: str | None, name: str | None) -> dict[str, Any]:
    """The row of a customer first named now (`email` and `name` already validated)."""
    now = utcnow()
    return {
        "id": new_id(),
        "merchant_id": merchant_id,
        "external_id": external_id,
        "created_at": now,
        "updated_at": now,
        "email": email,
        "email_canonical": canonical_email(email) if email else None,
        "name": name,
    }


async def ensure_customer(
    session: AsyncSession, *, merchant_id: uuid.UUID, external_id: str, email: str | None = None, name: str | None = None
) -> Customer:
    """The customer with this external id, created if missing (with `email` and `name`, already
    validated). Writes nothing if it exists."""
    values = new_customer(merchant_id=merchant_id, external_id=external_id, email=email, name=name)
    created = await insert_one(session, Customer, values, ignoring_conflicts=ONE_CUSTOMER_PER_EXTERNAL_ID)
    if created is not None:
        return created
    customer = await get_customer(session, merchant_id=merchant_id, external_id=external_id)
    assert customer is not None
    return customer


async def upsert_customer(
    session: AsyncSession, *, merchant_id: uuid.UUID, external_id: str, details: CustomerDetails
) -> Customer:
    """Create the customer or update the given fields. Callers validate `details` first. An
    erased customer's pseudonym cannot be filled in again."""
    customer = await ensure_customer(session, merchant_id=merchant_id, external_id=external_id)
    if customer.erased_at is not None:
        raise DomainError(
            "customerExternalId", ErrorCode.CUSTOMER_ERASED, "this customer was erased; their data cannot be set again"
        )
    if details.email is not None and details.email != customer.email:
        changed = customer.email is not None
        set_email(customer, details.email)
        if changed:  # a mailbox changed after the fact: app.fraud.jobs judges the customer's referrals again
            await outbox.enqueue(session, EMAIL_CHANGED_JOB, merchant_id=merchant_id, customer_id=customer.id, at=utcnow())
    if details.name is not None and details.name != customer.name:
        customer.name = details.name
    if details.metadata is not None and details.metadata != customer.metadata_:
        customer.metadata_ = details.metadata
    await session.flush()
    return customer


def set_email(customer: Customer, email: str) -> None:
    customer.email = email
    customer.email_canonical = canonical_email(email)


def fill_in(customer: Customer, *, email: str | None, name: str | None) -> None:
    """What an action tells about a customer we knew nothing of (never an erased one)."""
    if customer.erased_at is not None:
        return
    if email and customer.email is None:
        set_email(customer, email)
    if name and customer.name is None:
        customer.name = name


async def get_customer(session: AsyncSession, *, merchant_id: uuid.UUID, external_id: str) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.merchant_id == merchant_id, Customer.external_id == external_id))


async def require_customer(session: AsyncSession, *, merchant_id: uuid.UUID, external_id: str, field: str) -> Customer:
    customer = await get_customer(session, merchant_id=merchant_id, external_id=external_id)
    if customer is None:
        raise NotFound(field, "customer")
    return customer


async def customer_records_by_ids(
    session: AsyncSession, *, merchant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[CustomerRecord]:
    """The customers to show (a DataLoader's batch), without ORM objects."""
    return await merchant_records(session, CustomerRecord, Customer, merchant_id, Customer.id, ids)


async def external_ids(session: AsyncSession, *, merchant_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The merchant's customers' external ids by id, for the merchant's own views of rows that name
    customers by id (partners, sales, splits, leads, leaderboards). No statement for no ids."""
    wanted = set(ids)
    found = _loaded_external_ids(session, merchant_id, wanted)
    wanted -= found.keys()
    if wanted:
        rows = await session.execute(
            select(Customer.id, Customer.external_id).where(Customer.merchant_id == merchant_id, Customer.id.in_(wanted))
        )
        found.update((row.id, row.external_id) for row in rows)
    return found


_CUSTOMER_MAPPER = sa_inspect(Customer)


def _loaded_external_ids(session: AsyncSession, merchant_id: uuid.UUID, wanted: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """External ids of the customers the session holds already (an action's referee and
    referrer): the events of one purchase name them a dozen times."""
    identity_map = session.sync_session.identity_map
    found = {}
    for customer_id in wanted:
        customer = identity_map.get(_CUSTOMER_MAPPER.identity_key_from_primary_key((customer_id,)))
        loaded = customer.__dict__ if customer is not None else {}
        if loaded.get("merchant_id") == merchant_id and loaded.get("external_id") is not None:
            found[customer_id] = loaded["external_id"]
    return found
