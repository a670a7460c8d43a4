"""A click as stored is what `trackClick` answered: its code, its program, its expiry from the
program's own window, and nothing is stored for a click that did not count."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

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
