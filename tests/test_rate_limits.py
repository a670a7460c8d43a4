"""Request budgets: per publishable key and visitor IP, per secret key, for failed
authentication and for code lookups; 429 with Retry-After and RateLimit-* headers; counters
in memory (embedded) or in Redis (shared by every API process)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import func, select

from app.db import create_session_factory
from app.main import create_app
from app.merchants import service as merchants
from app.referrals.models import Click
from tests import graphql_ops as ops
from tests.conftest import REQUIRE_SERVICES
from tests.conftest import test_settings as make_settings
from tests.scenarios import active_program, code_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BUDGETS = {
    "publishable_ip": "5/minute",
    "publishable_key": "8/minute",
    "secret_ip": "50/minute",
    "secret_key": "50/minute",
    "anonymous_ip": "6/minute",
    "failed_auth_ip": "4/10minutes",
    "code_lookup_ip": "4/minute",
    "code_miss_ip": "2/10minutes",
}


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage(request) -> str:
    if request.param == "redis" and not redis_up():
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required (REQUIRE_SERVICES=1) but unreachable at {REDIS_URL}")
        pytest.skip("Redis unreachable")
    return request.param


@pytest.fixture
def limited_settings(storage):
    return make_settings(
        rate_limits_enabled=True,
        rate_limits=BUDGETS,
        redis_url=REDIS_URL if storage == "redis" else "",
        rate_limit_key_prefix=f"referral-rl-test-{uuid.uuid4().hex[:8]}",  # parallel runs share one Redis
    )


Clients = Callable[..., "AsyncIterator[httpx.AsyncClient]"]


# Each visitor its own address: a random one of 254 gave two visitors of one test the same
# address now and then (the second was refused with the first one's budget).
_addresses = itertools.count(random.randrange(1 << 22))


def _new_ip() -> str:
    n = next(_addresses)
    return f"10.{n >> 16 & 0xFF}.{n >> 8 & 0xFF}.{n & 0xFF}"


@pytest.fixture(autouse=True)
async def _clear_of_a_window_boundary() -> None:
    """The sliding-window counters weigh the previous minute by how much of it is still in the
    window, so a burst that straddles the turn of a minute gets one request more through than
    the budget (measured: 5/minute let a 6th through 0.2 s after the turn). These tests count
    requests exactly: none starts in the last seconds of a minute (10-minute windows turn on
    minutes too)."""
    left = 60 - time.time() % 60
    if left < BOUNDARY_MARGIN:
        await asyncio.sleep(left + 0.05)


BOUNDARY_MARGIN = 8.0  # seconds: longer than any test here takes


@pytest.fixture
def clients(db, limited_settings):
    """`async with clients(ip) as client`: a visitor at `ip` of one API process (`app=` another)."""
    default_app = create_app(limited_settings, engine=db)

    @asynccontextmanager
    async def connect(ip: str | None = None, app=None):
        ip = ip or _new_ip()
        transport = httpx.ASGITransport(app=app or default_app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client

    connect.settings = limited_settings
    return connect


async def track(client, key: str, code: str, device: str):
    return await client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {key}"},
        json={"query": ops.TRACK_CLICK, "variables": {"input": {"code": code, "deviceId": device}}},
    )


async def clicks_stored(db) -> int:
    async with create_session_factory(db)() as session:
        return await session.scalar(select(func.count()).select_from(Click))


@pytest.fixture
async def jane(tenant) -> str:
    program = await active_program(tenant)
    return (await code_for(tenant, program["id"], "jane"))["code"]


async def test_a_burst_of_clicks_from_one_visitor_is_cut_at_the_ip_budget(db, tenant, jane, clients):
    async with clients() as browser:
        responses = [await track(browser, tenant.publishable_key, jane, f"device-{i}") for i in range(20)]

    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 5 + [429] * 15
    assert await clicks_stored(db) == 5
    refused = responses[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "5" and refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-policy"].startswith("5;w=60")
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "data" not in refused.json()


async def test_each_visitor_has_its_own_budget_and_the_key_has_one_for_all(db, tenant, jane, clients):
    accepted = 0
    for visitor in range(6):  # 6 visitors x 2 clicks, under each IP budget; the key allows 8 in all
        async with clients(f"198.51.100.{10 + visitor}") as browser:
            for click in range(2):
                response = await track(browser, tenant.publishable_key, jane, f"v{visitor}-{click}")
                accepted += response.status_code == 200
    assert accepted == 8
    assert await clicks_stored(db) == 8


async def test_budgets_of_secret_and_publishable_keys_are_separate(tenant, jane, clients):
    async with clients() as shop_and_browser:
        for i in range(5):
            assert (await track(shop_and_browser, tenant.publishable_key, jane, f"d{i}")).status_code == 200
        assert (await track(shop_and_browser, tenant.publishable_key, jane, "d6")).status_code == 429
        server = await shop_and_browser.post(
            "/graphql", headers={"Authorization": f"Bearer {tenant.secret_key}"}, json={"query": "{ viewer { id } }"}
        )
    assert server.status_code == 200 and server.json()["data"]["viewer"]["id"] == str(tenant.id)


async def test_after_failed_keys_every_key_from_that_address_is_refused_unread(tenant, clients, count_statements):
    async with clients() as attacker:
        guesses = [
            await attacker.post(
                "/graphql", headers={"Authorization": f"Bearer sk_{uuid.uuid4().hex}"}, json={"query": "{ viewer { id } }"}
            )
            for _ in range(10)
        ]
        assert [g.status_code for g in guesses[:4]] == [200] * 4  # answered: UNAUTHENTICATED
        assert [g.status_code for g in guesses[4:]] == [429] * 6
        with count_statements() as counter:
            right_key = await attacker.post(
                "/graphql", headers={"Authorization": f"Bearer {tenant.secret_key}"}, json={"query": "{ viewer { id } }"}
            )
        assert right_key.status_code == 429 and counter.count == 0  # not even looked up
        anonymous = await attacker.post("/graphql", json={"query": "{ __typename }"})
        assert anonymous.status_code == 200
    async with clients() as elsewhere:
        ok = await elsewhere.post(
            "/graphql", headers={"Authorization": f"Bearer {tenant.secret_key}"}, json={"query": "{ viewer { id } }"}
        )
    assert ok.status_code == 200


async def test_publishable_code_lookups_are_throttled_and_misses_count_harder(tenant, jane, clients):
    lookup = "query($c: String!) { referralCode(code: $c) { code } }"

    async def look(client, code):
        return await client.post(
            "/graphql",
            headers={"Authorization": f"Bearer {tenant.publishable_key}"},
            json={"query": lookup, "variables": {"c": code}},
        )

    async with clients() as prober:
        misses = [await look(prober, f"NOPE{i}") for i in range(2)]
        assert [m.json()["errors"][0]["extensions"]["code"] for m in misses] == ["NOT_FOUND"] * 2
        after_misses = await look(prober, jane)  # two misses spent the budget: even a real code is refused
        assert after_misses.status_code == 429 and "retry-after" in after_misses.headers
        assert after_misses.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    async with clients() as shopper:
        found = [await look(shopper, jane) for _ in range(5)]
    assert [f.status_code for f in found] == [200] * 4 + [429]
    assert found[0].json()["data"]["referralCode"]["code"] == jane


async def test_the_operator_sets_one_merchants_budgets(db, tenant, other_tenant, clients):
    async with create_session_factory(db)() as session:
        await merchants.set_rate_limits(session, merchant_id=tenant.id, changes={"secret_ip": "2/minute"})
        await session.commit()
    async with clients() as shop:
        statuses_a = [
            (
                await shop.post(
                    "/graphql", headers={"Authorization": f"Bearer {tenant.secret_key}"}, json={"query": "{ viewer { id } }"}
                )
            ).status_code
            for _ in range(4)
        ]
        statuses_b = [
            (
                await shop.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {other_tenant.secret_key}"},
                    json={"query": "{ viewer { id } }"},
                )
            ).status_code
            for _ in range(4)
        ]
    assert statuses_a == [200, 200, 429, 429]
    assert statuses_b == [200] * 4


async def test_processes_share_the_counters_in_redis(db, tenant, jane, clients, storage):
    if storage != "redis":
        pytest.skip("memory counters belong to one process")
    second_process = create_app(clients.settings, engine=db)
    async with clients("198.51.100.200") as first, clients("198.51.100.200", app=second_process) as second:
        statuses = [
            (await track(client, tenant.publishable_key, jane, f"d{i}")).status_code
            for i, client in enumerate([first, second] * 4)
        ]
    assert statuses == [200] * 5 + [429] * 3


async def test_an_unreachable_counter_store_serves_requests_and_says_so(db, tenant, caplog):
    settings = make_settings(rate_limits_enabled=True, rate_limits=BUDGETS, redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings, engine=db)
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        responses = [
            await client.post(
                "/graphql", headers={"Authorization": f"Bearer {tenant.secret_key}"}, json={"query": "{ viewer { id } }"}
            )
            for _ in range(3)
        ]
    assert [r.status_code for r in responses] == [200] * 3
    assert any("rate limit storage unreachable" in r.getMessage() for r in caplog.records)


def test_a_budget_that_is_not_a_rate_limit_is_refused_at_start():
    with pytest.raises(ValueError, match="RATE_LIMIT_PUBLISHABLE_IP"):
        create_app(make_settings(rate_limits_enabled=True, rate_limits={"publishable_ip": "lots"}))
    with pytest.raises(ValueError, match="unknown rate limit budgets"):
        create_app(make_settings(rate_limits_enabled=True, rate_limits={"publishable": "5/minute"}))


async def test_wrong_passwords_spend_the_failed_authentication_budget_then_logins_are_refused_unchecked(tenant, clients):
    from tests.payouts.helpers import LOGIN, make_admin

    person = await make_admin(tenant, login=False)

    async def log_in(client, password: str):
        return await client.post("/graphql", json={"query": LOGIN, "variables": {"email": person.email, "password": password}})

    async with clients() as attacker:
        wrong = [await log_in(attacker, f"guess-{i}") for i in range(4)]
        assert [r.json()["data"]["login"]["userErrors"][0]["code"] for r in wrong] == ["INVALID_CREDENTIALS"] * 4
        right = await log_in(attacker, person.password)  # the budget is spent: not even checked
        assert right.status_code == 429 and right.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(right.headers["retry-after"]) >= 1
    async with clients() as elsewhere:
        ok = await log_in(elsewhere, person.password)
    assert ok.status_code == 200 and ok.json()["data"]["login"]["token"].startswith("sess_")


async def test_each_admin_session_has_a_budget_of_its_own(db, tenant, clients):
    from tests.payouts.helpers import make_admin

    first, second = await make_admin(tenant), await make_admin(tenant)
    async with create_session_factory(db)() as session:
        await merchants.set_rate_limits(session, merchant_id=tenant.id, changes={"secret_key": "2/minute"})
        await session.commit()
    async with clients() as console:

        async def me(person):
            return (
                await console.post(
                    "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {person.token}"}
                )
            ).status_code

        statuses = [await me(first) for _ in range(3)]
        other = await me(second)
    assert statuses == [200, 200, 429] and other == 200  # not one bucket for every session
