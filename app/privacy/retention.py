"""Retention: networks and browsers are kept for the merchant's retention period (13 months
unless it sets another), then coarsened. The scheduled job `privacy.retention` (daily) does,
for each merchant, with what became older than the period since its last run:

- clicks and actions: the IP address becomes its network (IPv4 /24, IPv6 /48); user agent and
  browser fingerprint are dropped; a click's device id and landing URL too (its keyed device
  hash and the time stay: a visit is still counted, a device farm still seen);
- fraud identifiers of kind IP, IP + browser and browser fingerprint last seen before then are
  deleted (IP evidence only ever looks back hours; a device, a card or an address stays);
- IP addresses quoted in fraud evidence become their networks;
- finished webhook deliveries and their attempts are deleted (logs of what was sent).

Rows are found by their UUIDv7 ids (ordered by creation time) between the previous cutoff and
the new one: an index range scan, never the whole table. Shortening the period catches up at
the next run; lengthening it cannot bring back what was coarsened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import validation
from app.db import changed_rows, insert_ignoring_conflicts, new_id, utcnow
from app.fraud.models import CustomerIdentifier, FraudDecision
from app.merchants import audit
from app.merchants.models import Merchant
from app.privacy import scrub
from app.privacy.models import DEFAULT_RETENTION_MONTHS, PrivacySettings
from app.referrals.models import Action, Click
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

BATCH = 1000  # rows per statement
NETWORK_KINDS = ("IP", "IP_UA", "FINGERPRINT")
MAX_RETENTION_MONTHS = 120
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    next_month_first = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_month_first - datetime(year, month, 1, tzinfo=moment.tzinfo)).days
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


async def get_settings(session: AsyncSession, *, merchant_id: uuid.UUID) -> PrivacySettings:
    stored = await session.scalar(select(PrivacySettings).where(PrivacySettings.merchant_id == merchant_id))
    return stored or PrivacySettings(merchant_id=merchant_id, retention_months=DEFAULT_RETENTION_MONTHS)


async def _settings_row(session: AsyncSession, merchant_id: uuid.UUID) -> PrivacySettings:
    await session.execute(
        insert_ignoring_conflicts(session, PrivacySettings, ["merchant_id"]).values(
            id=new_id(),
            merchant_id=merchant_id,
            retention_months=DEFAULT_RETENTION_MONTHS,
            updated_at=utcnow(),
        )
    )
    row = await session.scalar(
        select(PrivacySettings)
        .where(PrivacySettings.merchant_id == merchant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def set_retention(session: AsyncSession, *, merchant_id: uuid.UUID, months: int, actor: audit.Actor) -> PrivacySettings:
    months = validation.int_range(months, "retentionMonths", 1, MAX_RETENTION_MONTHS)
    settings = await _settings_row(session, merchant_id)
    if settings.retention_months != months:
        before = settings.retention_months
        settings.retention_months = months
        settings.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=actor,
            action="privacy_settings.changed",
            subject_id=settings.id,
            details={"retention_months": {"from": before, "to": months}},
        )
    return settings


@dataclass
class Applied:
    cutoff: datetime
    changed: dict[str, int] = field(default_factory=dict)


async def apply_all(session: AsyncSession, *, now: datetime | None = None) -> dict[uuid.UUID, Applied]:
    """The job: every merchant, each in its own transaction (commits)."""
    now = now or utcnow()
    merchant_ids = list((await session.scalars(select(Merchant.id).order_by(Merchant.id))).all())
    await session.commit()
    results = {}
    for merchant_id in merchant_ids:
        results[merchant_id] = await apply(session, merchant_id=merchant_id, now=now)
        await session.commit()
    return results


async def apply(session: AsyncSession, *, merchant_id: uuid.UUID, now: datetime | None = None) -> Applied:
    """Coarsen what became older than the merchant's period since the last run."""
    now = now or utcnow()
    settings = await _settings_row(session, merchant_id)
    cutoff = months_before(now, settings.retention_months)
    start = settings.retention_applied_through or _EPOCH
    applied = Applied(cutoff)
    if cutoff <= start:
        return applied
    low, high = scrub.id_floor(start), scrub.id_floor(cutoff)
    applied.changed["clicks"] = await _coarsen(session, Click, merchant_id, low, high, _coarsen_click)
    applied.changed["actions"] = await _coarsen(session, Action, merchant_id, low, high, _coarsen_action)
    applied.changed["fraud_decisions"] = await _coarsen(session, FraudDecision, merchant_id, low, high, _coarsen_evidence)
    applied.changed["customer_identifiers"] = changed_rows(
        await session.execute(
            delete(CustomerIdentifier).where(
                CustomerIdentifier.merchant_id == merchant_id,
                CustomerIdentifier.kind.in_(NETWORK_KINDS),
                CustomerIdentifier.last_seen_at < cutoff,
            )
        )
    )
    applied.changed["webhook_deliveries"] = await _prune_deliveries(session, merchant_id, low, high)
    settings.retention_applied_through = cutoff
    await session.flush()
    return applied


async def _coarsen(
    session: AsyncSession, model: Any, merchant_id: uuid.UUID, low: uuid.UUID, high: uuid.UUID, change: Callable[[Any], bool]
) -> int:
    """Rows of `model` created in [low, high), in batches; `change(row)` says if it changed one."""
    changed, after = 0, low
    while True:
        rows = list(
            (
                await session.scalars(
                    select(model)
                    .where(model.merchant_id == merchant_id, model.id >= after, model.id < high)
                    .order_by(model.id)
                    .limit(BATCH)
                )
            ).all()
        )
        changed += sum(bool(change(row)) for row in rows)
        await session.flush()
        if len(rows) < BATCH:
            return changed
        after = uuid.UUID(int=rows[-1].id.int + 1)


def _coarse_network(ip: str | None) -> str | None:
    if ip is None or "/" in ip:
        return ip
    return scrub.coarse_ip(ip) or None


def _coarsen_click(click: Click) -> bool:
    landing = None
    if click.landing_url:
        parts = urlsplit(click.landing_url)
        landing = f"{parts.scheme}://{parts.netloc}{parts.path}"  # no query string: it may carry anything
    before = (click.ip, click.user_agent, click.device_fingerprint, click.device_id, click.landing_url)
    click.ip, click.user_agent, click.device_fingerprint, click.device_id = _coarse_network(click.ip), None, None, None
    click.landing_url = landing
    return before != (click.ip, click.user_agent, click.device_fingerprint, click.device_id, click.landing_url)


def _coarsen_action(action: Action) -> bool:
    before = (action.ip, action.user_agent, action.device_fingerprint)
    action.ip, action.user_agent, action.device_fingerprint = _coarse_network(action.ip), None, None
    return before != (action.ip, action.user_agent, action.device_fingerprint)


def _coarsen_evidence(decision: FraudDecision) -> bool:
    observations = scrub.map_strings(decision.observations, scrub.coarsen_ips)
    if observations == decision.observations:
        return False
    decision.observations = observations
    return True


async def _prune_deliveries(session: AsyncSession, merchant_id: uuid.UUID, low: uuid.UUID, high: uuid.UUID) -> int:
    finished = select(WebhookDelivery.id).where(
        WebhookDelivery.merchant_id == merchant_id,
        WebhookDelivery.id >= low,
        WebhookDelivery.id < high,
        WebhookDelivery.status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]),
    )
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(finished)))
    return changed_rows(await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(finished))))
