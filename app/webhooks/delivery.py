"""Sending one delivery: sign, check the target, POST, log the attempt, schedule the retry.

At least once: the attempt and its outcome commit together (the job's transaction), so a
crash mid-request sends it again later with the same `webhook-id`. A failure does not raise:
the next attempt is a new delayed outbox job, on the schedule below (about a day in all).

SSRF: the URL's host is resolved here and every address checked; the request then goes to
the address that was checked (the Host header and TLS SNI/certificate check keep the
original name), so a DNS answer that changes between check and connect (rebinding) cannot
redirect it. No proxy from the environment is used, and redirects are not followed.

The request is made inside the job's transaction (the delivery row stays locked, so two
runs never send one attempt twice). On PostgreSQL that holds one connection for up to 10 s;
on SQLite (BEGIN IMMEDIATE) it holds the database's write lock as long, so other writers
wait: fine for the embedded setup, one more reason to run PostgreSQL in production.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import new_id, utcnow
from app.webhooks import service, signing
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.worker import outbox

logger = logging.getLogger("app.webhooks")

RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 8 * 3600)
)
DISABLE_AFTER = timedelta(days=5)
TIMEOUT_SECONDS = 10.0
EXCERPT_CHARS = 500
_READ_BYTES = 4 * EXCERPT_CHARS
USER_AGENT = "Referral-Webhooks/1.0"


class RefusedTarget(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are the IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use translation: never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def translated_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address merely spells: mapped (::ffff:a.b.c.d), compatible
    (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d). Such an address is judged as that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if (address in _IPV4_COMPATIBLE and int(address) > 1) or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def tunnelled_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 endpoints a tunnelling IPv6 address carries to: 6to4 (2002:AABB:CCDD::), Teredo
    (2001::/32, server and client) and ISATAP interface ids (…:5efe:a.b.c.d)."""
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if (int(address) >> 32) & 0xFDFFFFFF == 0x00005EFE:  # interface id 0000:5efe or 0200:5efe
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Webhooks reach public unicast addresses only. An IPv6 address that spells an IPv4 one is
    judged as it; one that tunnels to IPv4 endpoints is refused if any of them is (6to4 of
    127.0.0.1 is loopback in disguise)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return True
        translated = translated_ipv4(address)
        if translated is not None:
            return forbidden(translated)
        if any(forbidden(endpoint) for endpoint in tunnelled_ipv4(address)):
            return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to, after checking every address the host has."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise RefusedTarget(f"cannot resolve {host}: {error.strerror or error}") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise RefusedTarget(f"cannot resolve {host}") from None
    if not allow_private:
        for address in addresses:
            if forbidden(address):
                raise RefusedTarget(f"{host} resolves to a non-public address ({address}); refused")
    return str(addresses[0])


def body_of(delivery: WebhookDelivery) -> str:
    return json.dumps(
        {"type": delivery.event_type, "timestamp": delivery.occurred_at.isoformat(), "data": delivery.payload},
        separators=(",", ":"),
        sort_keys=True,
    )


@dataclass
class Outcome:
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def _clean(text: str, limit: int) -> str:
    return text.replace("\x00", "")[:limit]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA store costs ~20 ms; a client per delivery shares one context."""
    return ssl.create_default_context()


async def post(url: str, headers: dict[str, str], body: str, *, allow_private: bool) -> Outcome:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = await resolve(host, port, allow_private=allow_private)
    except RefusedTarget as refused:
        return Outcome(error=_clean(str(refused), 500))
    netloc = (f"[{address}]" if ":" in address else address) + (f":{parts.port}" if parts.port else "")
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    started = time.perf_counter()
    outcome = Outcome()
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            async with httpx.AsyncClient(
                timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False, verify=_tls_context()
            ) as client:
                request = client.build_request(
                    "POST", pinned, content=body.encode(), headers={**headers, "host": parts.netloc}, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    outcome.status_code = response.status_code
                    read = b""
                    async for chunk in response.aiter_bytes():
                        read += chunk
                        if len(read) >= _READ_BYTES:
                            break
                    outcome.excerpt = _clean(read.decode("utf-8", errors="replace"), EXCERPT_CHARS) or None
                finally:
                    await response.aclose()
        if 300 <= response.status_code < 400:
            location = response.headers.get("location", "")
            outcome.error = _clean(f"redirect ({response.status_code}) not followed: {location}", 500)
        elif not 200 <= response.status_code < 300:
            outcome.error = f"HTTP {response.status_code}"
    except TimeoutError:
        outcome.error = f"timed out after {TIMEOUT_SECONDS:g} s"
    except httpx.TimeoutException:
        outcome.error = f"timed out after {TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as error:
        outcome.error = _clean(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, 500)
    outcome.latency_ms = int((time.perf_counter() - started) * 1000)
    return outcome


@dataclass(frozen=True)
class Prepared:
    """A signed request, ready to send outside any transaction."""

    endpoint_id: uuid.UUID
    url: str
    headers: dict[str, str]
    body: str
    attempt: int  # the delivery's attempt_count when prepared


async def deliver(
    factory: async_sessionmaker[AsyncSession], delivery_id: uuid.UUID, *, attempt: int | None, settings: Settings
) -> None:
    """Make attempt number `attempt` (0-based) of a delivery; nothing when it is delivered,
    failed for good, or that attempt was made already (a duplicate or superseded job).

    Three steps, so no transaction (no lock; on SQLite, no write lock) is held during the HTTP
    request: prepare and sign, send, record. Two copies of one job racing may both send:
    webhooks are at-least-once, and receivers deduplicate on `webhook-id`."""
    async with factory() as session:
        prepared = await _prepare(session, delivery_id, attempt, settings)
        await session.commit()
    if prepared is None:
        return
    attempted_at = utcnow()
    outcome = await post(prepared.url, prepared.headers, prepared.body, allow_private=settings.allow_private_webhook_targets)
    async with factory() as session:
        await _record(session, delivery_id, prepared, outcome, attempted_at)
        await session.commit()
        await outbox.dispatch_committed(session)


async def _prepare(session: AsyncSession, delivery_id: uuid.UUID, attempt: int | None, settings: Settings) -> Prepared | None:
    delivery = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update())
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if attempt is not None and attempt != delivery.attempt_count:
        return None
    endpoint = await session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if not endpoint.enabled:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = _clean(f"endpoint disabled: {endpoint.disabled_reason or ''}", 500)
        await session.flush()
        return None
    body = body_of(delivery)
    timestamp = int(time.time())
    msg_id = str(delivery.id)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(service.signing_secrets(endpoint, settings), msg_id, timestamp, body),
    }
    return Prepared(endpoint_id=endpoint.id, url=endpoint.url, headers=headers, body=body, attempt=delivery.attempt_count)


async def _record(
    session: AsyncSession, delivery_id: uuid.UUID, prepared: Prepared, outcome: Outcome, attempted_at: datetime
) -> None:
    delivery = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update())
    assert delivery is not None
    session.add(
        WebhookAttempt(
            id=new_id(),
            merchant_id=delivery.merchant_id,
            delivery_id=delivery.id,
            attempted_at=attempted_at,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
        )
    )
    if delivery.status != DeliveryStatus.PENDING or delivery.attempt_count != prepared.attempt:
        await session.flush()  # a racing copy of this job recorded the attempt first; keep the log only
        return
    now = utcnow()
    delivery.attempt_count += 1
    delivery.last_attempt_at = attempted_at
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.last_error = None
        await session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == prepared.endpoint_id).values(failing_since=None)
        )
        await session.flush()
        return

    delivery.last_error = outcome.error
    delivery.retry_step += 1
    disabled = await _note_failure(session, prepared.endpoint_id, now)
    if not disabled and delivery.retry_step <= len(RETRY_DELAYS):
        delay = RETRY_DELAYS[delivery.retry_step - 1]
        delivery.next_attempt_at = now + delay
        await outbox.enqueue(
            session,
            service.DELIVER_JOB,
            merchant_id=delivery.merchant_id,
            delay=delay,
            delivery_id=delivery.id,
            attempt=delivery.attempt_count,
        )
    else:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    await session.flush()
    logger.info(
        "webhook delivery failed",
        extra={
            "delivery_id": str(delivery.id),
            "endpoint_id": str(prepared.endpoint_id),
            "error": outcome.error,
            "final": delivery.status == DeliveryStatus.FAILED,
        },
    )


async def _note_failure(session: AsyncSession, endpoint_id: uuid.UUID, now: datetime) -> bool:
    """Start (or continue) the endpoint's failing streak; disable it once the streak is
    DISABLE_AFTER long. True when the endpoint is (now) disabled."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(failing_since=func.coalesce(WebhookEndpoint.failing_since, now))
    )
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).execution_options(populate_existing=True)
    )
    assert endpoint is not None
    if endpoint.enabled and endpoint.failing_since is not None and now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"deliveries failed continuously since {endpoint.failing_since.isoformat(timespec='seconds')} "
            f"(over {DISABLE_AFTER.days} days); fix the endpoint and enable it again"
        )
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": str(endpoint_id)})
    return not endpoint.enabled
