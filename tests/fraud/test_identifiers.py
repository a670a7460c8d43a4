"""What customers are seen with: addresses and networks written many ways are one, a repeat
sighting keeps when it was first seen, and the click that brought a referee is theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.actions import service as actions
from app.actions.service import ActionInput
from app.fraud.identifiers import ip_with_user_agent, normalized_address
from app.fraud.models import CustomerIdentifier
from app.merchants import service as merchants
from tests import scenarios
from tests.fraud import helpers as h

FLAT = {
    "line1": "12 Main Street",
    "line2": "Apt. 4",
    "city": "Springfield",
    "region": "IL",
    "postalCode": "62704",
    "country": "US",
}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize(
    "spelling",
    [
        {"line1": "12 main st", "line2": "apt 4", "city": "springfield", "postalCode": "62704", "country": "us"},
        {
            "line1": "12 MAIN ST.",
            "line2": "#4",
            "city": "Springfield",
            "region": "Illinois",
            "postalCode": "62704",
            "country": "US",
        },
        {"line1": "12, Main  Street", "line2": "Apartment 4", "city": "Springfield", "postalCode": "62704", "country": "US"},
        {
            "line1": "12 Main Str",
            "line2": "Unit 4",
            "city": "Springfield",
            "region": "",
            "postalCode": " 62704 ",
            "country": "US",
        },
    ],
)
def test_one_flat_written_many_ways_is_one_address(spelling):
    assert normalized_address(spelling) == normalized_address(FLAT)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            {"line1": "Hauptstraße 5", "postalCode": "10115", "city": "Berlin"},
            {"line1": "HAUPTSTRASSE 5", "postalCode": "10115", "city": "berlin"},
        ),
        (
            {"line1": "1 Rue de l'Église", "postalCode": "75001", "city": "Paris"},
            {"line1": "1 rue de l eglise", "postalCode": "75001", "city": "PARIS"},
        ),
        (
            {"line1": "10 Downing St", "postalCode": "SW1A 2AA", "city": "London"},
            {"line1": "10 downing street", "postalCode": "sw1a2aa", "city": "London"},
        ),
    ],
)
def test_accents_and_postal_code_spacing_do_not_make_another_address(one, other):
    assert normalized_address(one) == normalized_address(other)


@pytest.mark.parametrize(
    "other",
    [
        {**FLAT, "line2": "Apt 5"},  # the neighbours
        {**FLAT, "line1": "14 Main Street"},
        {**FLAT, "postalCode": "62705"},
        {**FLAT, "line1": "12 Main Avenue"},
    ],
)
def test_a_neighbouring_address_stays_another_address(other):
    assert normalized_address(other) != normalized_address(FLAT)


@pytest.mark.parametrize(
    "partial",
    [
        None,
        {},
        {"country": "US"},  # a country alone is not an address
        {"city": "Springfield", "region": "IL", "country": "US"},
        {"line1": "12 Main Street", "country": "US"},  # which town?
        {"line1": "", "postalCode": "62704", "country": "US"},
    ],
)
def test_too_little_to_place_someone_is_not_an_address(partial):
    assert normalized_address(partial) is None


def test_a_very_long_address_is_kept_bounded_and_still_comparable():
    long = {**FLAT, "line2": "c/o " + "Very Long Company Name Incorporated " * 8}
    value = normalized_address(long)
    assert value is not None and len(value) <= 255
    assert value == normalized_address({**long, "line1": "12 main st"})
    assert value != normalized_address({**long, "line1": "14 main st"})


def test_one_browser_behind_one_address_is_one_identifier():
    firefox = ip_with_user_agent("198.51.100.7", FIREFOX)
    assert firefox is not None and firefox.startswith("198.51.100.7")
    assert FIREFOX not in firefox and len(firefox) < 80  # a digest of the user agent, not the header
    assert ip_with_user_agent("198.51.100.7", FIREFOX) == firefox
    assert ip_with_user_agent("198.51.100.7", FIREFOX.replace("128.0", "129.0")) != firefox
    assert ip_with_user_agent("198.51.100.8", FIREFOX) != firefox
    assert ip_with_user_agent("2001:DB8:0::7", FIREFOX) == ip_with_user_agent("2001:db8::7", FIREFOX)


@pytest.mark.parametrize(("ip", "user_agent"), [(None, FIREFOX), ("", FIREFOX), ("198.51.100.7", None), ("198.51.100.7", "")])
def test_an_ip_or_a_browser_alone_is_no_ip_and_browser_pair(ip, user_agent):
    assert ip_with_user_agent(ip, user_agent) is None


async def _seen(session, customer_id) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    rows = (
        await session.scalars(
            select(CustomerIdentifier)
            .where(CustomerIdentifier.customer_id == customer_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    assert len(rows) == len({(r.kind, r.value) for r in rows})  # one row per identifier
    return {(r.kind, r.value): (r.first_seen_at, r.last_seen_at) for r in rows}


async def test_a_repeat_sighting_moves_last_seen_and_keeps_first_seen(session):
    merchant = await merchants.create_merchant(session, name="Shop")
    now = datetime.now(UTC).replace(microsecond=0)

    async def seen_at(key: str, at: datetime, **context) -> None:
        data = ActionInput(type="PURCHASE", customer_external_id="alice", idempotency_key=key, occurred_at=at, **context)
        await actions.record_action(session, merchant_id=merchant.id, data=data)

    everything = {
        "device_id": "dev-1",
        "ip": "198.51.100.7",
        "user_agent": FIREFOX,
        "payment_fingerprint": "card-1",
        "shipping_address": FLAT,
    }
    await seen_at("order-1", now - timedelta(days=3), **everything)
    await seen_at("order-2", now - timedelta(days=1), device_id="dev-1", ip="198.51.100.7")
    recorded = await actions.record_action(
        session,
        merchant_id=merchant.id,
        data=ActionInput(
            type="SIGNUP",
            customer_external_id="alice",
            idempotency_key="late",
            occurred_at=now - timedelta(days=5),
            device_id="dev-1",
        ),
    )  # reported late: it happened before the others
    seen = await _seen(session, recorded.action.customer_id)

    three_days, one_day, five_days = now - timedelta(days=3), now - timedelta(days=1), now - timedelta(days=5)
    assert seen[("DEVICE", "dev-1")] == (five_days, one_day)
    assert seen[("IP", "198.51.100.7")] == (three_days, one_day)
    assert seen[("PAYMENT", "card-1")] == (three_days, three_days)
    assert seen[("ADDRESS", normalized_address(FLAT))] == (three_days, three_days)
    assert seen[("IP_UA", ip_with_user_agent("198.51.100.7", FIREFOX))] == (three_days, three_days)
    assert len(seen) == 5


async def test_the_click_that_brought_a_referee_counts_as_their_device(tenant):
    program = await h.program_with_credit(tenant)
    await h.without_referrer_memory(tenant, program["id"])
    await h.signup(tenant, "alice", deviceId="dev-alice")
    code = (await scenarios.code_for(tenant, program["id"], "alice"))["code"]

    own_click = await scenarios.click(tenant, code, device_id="dev-alice")  # the referrer clicks her own link
    alias = await h.record(
        tenant,
        type="SIGNUP",
        customerExternalId="alias",
        idempotencyKey="signup-alias",
        attributionToken=own_click["attributionToken"],
    )
    assert alias["action"]["attribution"] == "REFERRAL_CREATED"
    decision = (await h.decisions(tenant, alias["referral"]["id"]))[0]
    same_device = next(o for o in decision["observations"] if o["signal"] == "same_device")
    assert same_device["fired"] and "dev-alice" in same_device["evidence"] and "alice" in same_device["evidence"]
    assert decision["outcome"] == "REVIEW"

    friends_click = await scenarios.click(tenant, code, device_id="dev-friend")
    friend = await h.record(
        tenant,
        type="SIGNUP",
        customerExternalId="friend",
        idempotencyKey="signup-friend",
        attributionToken=friends_click["attributionToken"],
    )
    decision = (await h.decisions(tenant, friend["referral"]["id"]))[0]
    assert "same_device" not in h.fired(decision)
    assert decision["outcome"] == "ALLOW"
