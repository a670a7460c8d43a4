"""A click as stored is what `trackClick` answered: its code, its program, its expiry from the
program's own window, and nothing is stored for a click that did not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from app.referrals import clicks
from app.referrals.models import Click, ReferralCode
from tests import graphql_ops as ops
from tests.scenarios import active_program, click, code_for


async def _stored_clicks(session) -> list[tuple[dict, str]]:
    """Every stored click's columns (by attribute) and its code."""
    rows = (
        await session.execute(
            select(Click, ReferralCode.code).join(ReferralCode, ReferralCode.id == Click.code_id).order_by(Click.id)
        )
    ).all()
    stored = [({attr.key: getattr(found, attr.key) for attr in Click.__mapper__.column_attrs}, code) for found, code in rows]
    await session.rollback()
    return stored


async def test_the_stored_click_is_the_one_answered_with_its_programs_window(tenant, session):
    program = await active_program(tenant, attributionWindowDays=7)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    tracked = await tenant.gql(
        ops.TRACK_CLICK,
        {"input": {"code": code.lower(), "deviceId": "d-1", "channel": "WhatsApp", "subId": "newsletter"}},
        key=tenant.publishable_key,
    )
    answer = tracked["trackClick"]
    assert answer["userErrors"] == [] and answer["repeated"] is False
    assert answer["referralCode"]["code"] == code

    ((stored, stored_code),) = await _stored_clicks(session)
    assert stored["attribution_token"] == answer["attributionToken"]
    assert stored_code == code and str(stored["program_id"]) == program["id"]
    assert stored["expires_at"] - stored["created_at"] == timedelta(days=7)  # to the microsecond
    assert stored["expires_at"] == datetime.fromisoformat(answer["expiresAt"])
    assert (stored["channel"], stored["sub_id"], stored["device_id"]) == ("whatsapp", "newsletter", "d-1")


async def test_clicks_without_a_device_are_each_a_visit(tenant, session):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    answers = [
        (await tenant.gql(ops.TRACK_CLICK, {"input": {"code": code}}, key=tenant.publishable_key))["trackClick"] for _ in range(2)
    ]
    assert [a["repeated"] for a in answers] == [False, False]
    assert len({a["attributionToken"] for a in answers}) == 2
    assert len(await _stored_clicks(session)) == 2


async def test_a_click_that_does_not_count_stores_nothing(tenant, session):
    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await tenant.gql(ops.DEACTIVATE_CODE, {"code": code})
    assert [e["code"] for e in (await click(tenant, code))["userErrors"]] == ["CODE_INACTIVE"]

    other = (await code_for(tenant, program["id"], "bob"))["code"]
    await tenant.gql(ops.UPDATE_PROGRAM, {"id": program["id"], "input": {"status": "PAUSED"}})
    assert [e["code"] for e in (await click(tenant, other))["userErrors"]] == ["PROGRAM_NOT_ACTIVE"]
    assert await _stored_clicks(session) == []


def _zone_with_summer_time_within(days: int) -> str:
    """A time zone whose UTC offset differs `days` from now (a calendar day added there is not 24 hours)."""
    now = datetime.now(UTC)
    for zone in ("America/New_York", "Australia/Sydney"):  # their changes are never 200 days apart
        if now.astimezone(ZoneInfo(zone)).utcoffset() != (now + timedelta(days=days)).astimezone(ZoneInfo(zone)).utcoffset():
            return zone
    raise AssertionError("no zone changes its offset within the window")


@pytest.mark.postgresql_only(reason="SQLite's expiry is added in Python, in UTC")
async def test_a_clicks_expiry_is_its_window_in_hours_whatever_the_servers_time_zone(tenant, session):
    """On PostgreSQL the click's expiry is added by the statement that writes it, in the server's
    time zone: a window of days added by the calendar would be an hour short or long there."""
    program = await active_program(tenant, attributionWindowDays=200)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    await session.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": _zone_with_summer_time_within(200)})
    tracked = await clicks.track_click(
        session,
        merchant_id=tenant.id,
        code=code,
        device_id="d-1",
        landing_url=None,
        context=clicks.ClickContext(ip=None, user_agent=None),
    )
    answered = tracked.click.expires_at
    await session.commit()

    ((stored, _code),) = await _stored_clicks(session)
    assert answered == stored["expires_at"]
    assert stored["expires_at"] - stored["created_at"] == timedelta(days=200)
