"""Webhook endpoints (the merchant's) and deliveries (ours): emitting events in the
transaction of the change, managing endpoints and secrets, redelivering."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app import config_cache, crypto, validation
from app.config import Settings
from app.db import insert_many, new_id, utcnow
from app.errors import DomainError, ErrorCode, NotFound
from app.pagination import Page, paginate
from app.webhooks import signing
from app.webhooks.events import EVENT_TYPES
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.worker import outbox

DELIVER_JOB = "webhooks.deliver"
MAX_ENDPOINTS = 20
MAX_OVERLAP_HOURS = 7 * 24

Payload = dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]


_ENDPOINT_CACHE = "webhook_endpoints"

# Build and check every event's payload, also when nobody listens. The test suite turns this
# on (tests/conftest.py): most tests have no endpoint, and a payload that cannot be sent must
# fail there, not only for the merchant who has one.
CHECK_EVERY_PAYLOAD = False


class PayloadError(TypeError):
    """A payload value JSON would not carry as it is (a Decimal, a datetime, NaN, a lone surrogate)."""


def json_payload(data: Any, path: str = "data") -> Any:
    """`data` itself if it is plain JSON: objects with string keys, arrays, strings, integers,
    finite floats, booleans and null. Anything else is a bug in the event's builder: refused
    here, in the transaction of the change, instead of coerced into something the merchant
    would parse differently."""
    if data is None or isinstance(data, bool | int):
        return data
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(f"{path} is a string with a lone surrogate") from None
        return data
    if isinstance(data, float):
        if data != data or data in (float("inf"), float("-inf")):
            raise PayloadError(f"{path} is not a finite number")
        return data
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise PayloadError(f"{path} has a non-string key {key!r}")
            json_payload(value, f"{path}.{key}")
        return data
    if isinstance(data, list):
        for index, value in enumerate(data):
            json_payload(value, f"{path}[{index}]")
        return data
    raise PayloadError(f"{path} is a {type(data).__name__}, not a JSON value")


_ENABLED_ENDPOINTS = select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.merchant_id == bindparam("merchant_id"), WebhookEndpoint.enabled.is_(True)
)


async def _listening_endpoints(session: AsyncSession, merchant_id: uuid.UUID) -> list[tuple[uuid.UUID, list[str]]]:
    """The merchant's enabled endpoints, read once per transaction (one action can emit
    twenty events)."""
    cache = session.info.setdefault(_ENDPOINT_CACHE, {})
    if merchant_id not in cache:

        async def load() -> list[tuple[uuid.UUID, list[str]]]:
            rows = await session.execute(_ENABLED_ENDPOINTS, {"merchant_id": merchant_id})
            return [(row.id, list(row.event_types or [])) for row in rows]

        cache[merchant_id] = await config_cache.read(session, merchant_id, ("webhook_endpoints",), load)
    return cache[merchant_id]


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_endpoints(session: Session, *args: object) -> None:
    session.info.pop(_ENDPOINT_CACHE, None)


async def emit(session: AsyncSession, merchant_id: uuid.UUID, event_type: str, payload: Payload) -> list[WebhookDelivery]:
    """Queue `event_type` for each of the merchant's enabled endpoints subscribed to it, in
    the caller's transaction: it is sent only if the change commits.

    Costs one indexed query when the merchant has no endpoints. `payload` may be a coroutine
    function, called only when someone listens (to spare lookups such as external ids)."""
    return await emit_many(session, merchant_id, [(event_type, payload)])


async def emit_many(
    session: AsyncSession, merchant_id: uuid.UUID, events: Sequence[tuple[str, Payload]]
) -> list[WebhookDelivery]:
    """`emit` for several events of one merchant, in order: the deliveries of all of them in
    one INSERT and their jobs in one, whatever the number of events and endpoints (an action's
    rewards emit two events each; one by one they cost two statements per event)."""
    for event_type, _payload in events:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {event_type!r}")
    rows = await _listening_endpoints(session, merchant_id)
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    for event_type, payload in events:
        targets = [endpoint_id for endpoint_id, types in rows if event_type in types]
        if not targets:
            if CHECK_EVERY_PAYLOAD:
                json_payload(await payload() if callable(payload) else payload)
            continue
        data = json_payload(await payload() if callable(payload) else payload)
        event_id = new_id()
        deliveries.extend(
            dict(
                id=new_id(),
                merchant_id=merchant_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                payload=data,
                occurred_at=now,
                status=DeliveryStatus.PENDING,
                attempt_count=0,
                retry_step=0,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint_id in targets
        )
    if not deliveries:
        return []
    written = await insert_many(session, WebhookDelivery, deliveries)
    jobs = [{"delivery_id": delivery["id"], "attempt": 0} for delivery in deliveries]
    await outbox.enqueue_many(session, DELIVER_JOB, merchant_id=merchant_id, args=jobs)
    return written


# ---------------------------------------------------------------------------------------------
# Endpoints


def _url(value: str | None, settings: Settings) -> str:
    url = validation.http_url(value, "url")
    if url is None:
        raise DomainError("url", ErrorCode.REQUIRED, "url is required")
    parts = urlsplit(url)
    if settings.is_production and parts.scheme != "https":
        raise DomainError("url", ErrorCode.INVALID_URL, "url must use https")
    if parts.username is not None or parts.password is not None:
        raise DomainError("url", ErrorCode.INVALID_URL, "url must not contain credentials")
    try:
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise DomainError("url", ErrorCode.INVALID_URL, "url has an invalid port") from None
    if not parts.hostname:
        raise DomainError("url", ErrorCode.INVALID_URL, "url has no host")
    return url


def _event_types(values: list[str] | None) -> list[str]:
    if not values:
        raise DomainError("eventTypes", ErrorCode.REQUIRED, "subscribe to at least one event type")
    chosen: list[str] = []
    for index, value in enumerate(values):
        if value not in EVENT_TYPES:
            raise DomainError(f"eventTypes.{index}", ErrorCode.INVALID_INPUT, f"unknown event type {value[:64]!r}")
        if value not in chosen:
            chosen.append(value)
    return chosen


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once


async def create_endpoint(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    settings: Settings,
    url: str,
    event_types: list[str],
    description: str | None = None,
) -> EndpointWithSecret:
    session.info.pop(_ENDPOINT_CACHE, None)  # emits later in this transaction see the change
    url = _url(url, settings)
    chosen = _event_types(event_types)
    description = validation.text(description, "description", 500)
    count = len((await session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.merchant_id == merchant_id))).all())
    if count >= MAX_ENDPOINTS:
        raise DomainError(None, ErrorCode.INVALID_INPUT, f"at most {MAX_ENDPOINTS} webhook endpoints per merchant")
    secret = signing.new_secret()
    now, endpoint_id = utcnow(), new_id()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        merchant_id=merchant_id,
        url=url,
        description=description,
        event_types=chosen,
        enabled=True,
        secret_encrypted=signing.encrypt(secret, settings, endpoint_id),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


async def get_endpoint(
    session: AsyncSession, *, merchant_id: uuid.UUID, endpoint_id: uuid.UUID, field: str = "id", lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.merchant_id == merchant_id)
    endpoint = await session.scalar(query.with_for_update() if lock else query)
    if endpoint is None:
        raise NotFound(field, "webhook endpoint")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    settings: Settings,
    url: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    session.info.pop(_ENDPOINT_CACHE, None)  # emits later in this transaction see the change
    endpoint = await get_endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id, lock=True)
    if url is not None:
        endpoint.url = _url(url, settings)
    if event_types is not None:
        endpoint.event_types = _event_types(event_types)
    if description is not None:
        endpoint.description = validation.text(description, "description", 500)
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:  # a fresh start: the failing streak that disabled it is forgotten
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason = "disabled by the merchant"
            endpoint.disabled_at = utcnow()
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def rotate_secret(
    session: AsyncSession, *, merchant_id: uuid.UUID, endpoint_id: uuid.UUID, settings: Settings, overlap_hours: int = 24
) -> EndpointWithSecret:
    """A new secret, shown once. The old one keeps signing next to it for `overlap_hours`,
    so receivers can switch without dropping webhooks."""
    validation.int_range(overlap_hours, "overlapHours", 0, MAX_OVERLAP_HOURS)
    endpoint = await get_endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id, lock=True)
    now = utcnow()
    secret = signing.new_secret()
    crypto.rotate(
        endpoint,
        secret,
        encrypt=lambda value: signing.encrypt(value, settings, endpoint.id),
        overlap=timedelta(hours=overlap_hours),
        now=now,
    )
    endpoint.updated_at = now
    await session.flush()
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


def signing_secrets(endpoint: WebhookEndpoint, settings: Settings) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during an overlap."""
    return crypto.valid_secrets(endpoint, decrypt=lambda value: signing.decrypt(value, settings, endpoint.id), now=utcnow())


async def list_endpoints(session: AsyncSession, *, merchant_id: uuid.UUID) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id).order_by(WebhookEndpoint.id)
    return list((await session.scalars(query)).all())


# ---------------------------------------------------------------------------------------------
# Deliveries


async def list_deliveries(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    endpoint_id: uuid.UUID | None,
    status: DeliveryStatus | None,
    first: int | None,
    after: str | None,
) -> Page[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.merchant_id == merchant_id)
    if endpoint_id is not None:
        await get_endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id, field="endpointId")
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return await paginate(session, query, WebhookDelivery.id, first=first, after=after)


async def attempts_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The attempts of a page of deliveries in one query, oldest first."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if not delivery_ids:
        return found
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.merchant_id == merchant_id, WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    )
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return found


async def redeliver(session: AsyncSession, *, merchant_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again now, whatever its state, with a fresh retry schedule. The
    receiver sees the same `webhook-id` and can drop it if it had it already."""
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.merchant_id == merchant_id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound("id", "webhook delivery")
    endpoint = await session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if not endpoint.enabled:
        raise DomainError("id", ErrorCode.INVALID_STATUS_TRANSITION, "the endpoint is disabled: enable it first")
    delivery.status = DeliveryStatus.PENDING
    delivery.retry_step = 0
    delivery.next_attempt_at = utcnow()
    await session.flush()
    # A retry still waiting for this attempt number finds it taken and does nothing.
    await outbox.enqueue(session, DELIVER_JOB, merchant_id=merchant_id, delivery_id=delivery.id, attempt=delivery.attempt_count)
    return delivery
