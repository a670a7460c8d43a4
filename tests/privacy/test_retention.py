"""Retention: after the merchant's period (13 months unless set), networks and browsers are
coarsened by the scheduled job; what is younger is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db import create_session_factory, utcnow
from app.fraud.models import CustomerIdentifier, FraudDecision
from app.privacy import retention
from app.referrals.models import Action, Click
from app.webhooks.models import DeliveryStatus, WebhookDelivery
from app.worker import registry
from tests.conftest import system_connection
from tests.privacy.helpers import build_world, record
from tests.rewards.helpers import assert_ledger_consistent

SETTINGS = (
    "mutation($m: Int!) { setPrivacySettings(retentionMonths: $m) { settings { retentionMonths } userErrors { field code } } }"
)


@pytest.fixture(autouse=True)
async def _ledger_verified(db):
    yield
    await assert_ledger_consistent(db)


async def apply(db, now: datetime) -> dict:
    async with create_session_factory(db)() as session:
        applied = await retention.apply_all(session, now=now)
        await session.commit()
    return applied


async def stored(db):
    async with system_connection(db) as connection:
        clicks = (
            await connection.execute(select(Click.ip, Click.user_agent, Click.device_id, Click.device_id_hash, Click.landing_url))
        ).all()
        actions = (
            await connection.execute(select(Action.ip, Action.user_agent, Action.device_id).where(Action.ip.is_not(None)))
        ).all()
        kinds = set((await connection.execute(select(CustomerIdentifier.kind))).scalars())
        evidence = str((await connection.execute(select(FraudDecision.observations))).scalars().all())
        deliveries = (await connection.execute(select(WebhookDelivery.status))).scalars().all()
    return clicks, actions, kinds, evidence, deliveries


async def test_networks_and_browsers_are_coarsened_after_thirteen_months(db, tenant):
    await build_world(tenant)
    async with system_connection(db) as connection:  # one delivery was sent; the others wait
        first = (await connection.execute(select(WebhookDelivery.id).order_by(WebhookDelivery.id).limit(1))).scalar()
        await connection.execute(
            WebhookDelivery.__table__.update().where(WebhookDelivery.id == first).values(status=DeliveryStatus.DELIVERED.value)
        )
    before = await stored(db)
    assert "198.51.100.23" in before[3] and {"IP", "IP_UA"} <= before[2]

    untouched = await apply(db, utcnow() + timedelta(days=365))  # 12 months on: nothing is old enough
    assert not any(untouched[tenant.id].changed.values())
    assert await stored(db) == before

    applied = (await apply(db, utcnow() + timedelta(days=13 * 31)))[tenant.id]
    clicks, actions, kinds, evidence, deliveries = await stored(db)
    assert {ip for ip, *_ in clicks} == {"203.0.113.0/24"}
    assert all(ua is None and device is None and device_hash for _, ua, device, device_hash, _ in clicks)
    assert {landing for *_, landing in clicks} <= {None, "https://shop.example/"}  # no ?ref=... query any more
    assert {(ip, ua) for ip, ua, _ in actions} == {("198.51.100.0/24", None)}
    assert {device for _, _, device in actions} == {"dev-jane-9f2a"}  # devices are kept: farms are still seen
    assert kinds & {"IP", "IP_UA", "FINGERPRINT"} == set() and {"DEVICE", "PAYMENT", "ADDRESS"} <= kinds
    assert "198.51.100.23" not in evidence and "198.51.100.0/24" in evidence
    assert DeliveryStatus.DELIVERED not in deliveries and deliveries  # pending ones are still to be sent
    assert applied.changed["clicks"] == 2 and applied.changed["actions"] == 2

    again = (await apply(db, utcnow() + timedelta(days=13 * 31 + 1)))[tenant.id]
    assert not any(again.changed.values())


async def test_each_merchant_keeps_its_own_period(db, tenant, other_tenant):
    await record(
        tenant, type="SIGNUP", customerExternalId="a", idempotencyKey="a", context={"ip": "192.0.2.10", "userAgent": "UA-a"}
    )
    await record(
        other_tenant, type="SIGNUP", customerExternalId="b", idempotencyKey="b", context={"ip": "192.0.2.20", "userAgent": "UA-b"}
    )
    changed = await other_tenant.gql(SETTINGS, {"m": 1})
    assert changed["setPrivacySettings"] == {"settings": {"retentionMonths": 1}, "userErrors": []}
    assert (await tenant.gql("{ privacySettings { retentionMonths } }"))["privacySettings"]["retentionMonths"] == 13
    await apply(db, utcnow() + timedelta(days=62))
    async with system_connection(db) as connection:
        ips = dict((await connection.execute(select(Action.customer_id, Action.ip))).all())
    assert sorted(ips.values()) == ["192.0.2.0/24", "192.0.2.10"]
    refused = await tenant.gql(SETTINGS, {"m": 0})
    assert refused["setPrivacySettings"]["userErrors"] == [{"field": "retentionMonths", "code": "INVALID_INPUT"}]


def test_thirteen_months_are_calendar_months():
    assert retention.months_before(datetime(2027, 3, 31, 12, tzinfo=UTC), 13) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert retention.months_before(datetime(2027, 1, 15, tzinfo=UTC), 13) == datetime(2025, 12, 15, tzinfo=UTC)


def test_the_worker_runs_retention_daily():
    spec = registry.load_jobs()["privacy.retention"]
    assert spec.every == timedelta(days=1) and spec.own_transactions
    assert registry.load_jobs()["privacy.expire_exports"].every == timedelta(minutes=15)


async def test_the_job_applies_retention_to_every_merchant(db, tenant):
    await record(
        tenant, type="SIGNUP", customerExternalId="a", idempotencyKey="a", context={"ip": "2001:db8:1:2::7", "userAgent": "UA"}
    )
    spec = registry.load_jobs()["privacy.retention"]
    await spec.handler(create_session_factory(db))  # now: nothing is 13 months old
    async with system_connection(db) as connection:
        assert (await connection.execute(select(Action.ip))).scalar() == "2001:db8:1:2::7"
    async with create_session_factory(db)() as session:
        await retention.apply(session, merchant_id=tenant.id, now=utcnow() + timedelta(days=400))
        await session.commit()
    async with system_connection(db) as connection:
        assert (await connection.execute(select(Action.ip))).scalar() == "2001:db8:1::/48"
