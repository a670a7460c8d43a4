"""The second factor: enrollment (URI, QR code, recovery codes), codes with at most one step of
drift, each accepted once (also when used twice at the same moment), the lockout after five
wrong codes however they arrive (aliases, batches, several sessions and addresses), recovery
codes, changing and resetting the device (announced and audited), and no secret in the
database in plain text."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, text

from app.db import create_session_factory
from app.main import create_app
from app.merchants import admins, audit, totp
from app.merchants.models import AdminRole, AuditEntry, SecondFactorAttempt
from app.webhooks.models import WebhookDelivery
from tests.conftest import test_settings as make_settings
from tests.payouts import helpers as h


async def attempts(db, **where) -> list[SecondFactorAttempt]:
    async with create_session_factory(db)() as session:
        query = select(SecondFactorAttempt).order_by(SecondFactorAttempt.id)
        for name, value in where.items():
            query = query.where(getattr(SecondFactorAttempt, name) == value)
        return list((await session.scalars(query)).all())


async def check(db, person: h.Person, at, code: str | None = None, recovery: str | None = None):
    """One check through the service, at a given moment."""
    async with create_session_factory(db)() as session:
        admin = await admins.get_admin(session, merchant_id=(await _merchant(db, person)), admin_id=_uuid(person.id), lock=True)
        refused = await totp.check(
            session, settings=make_settings(), admin=admin, proof=totp.Proof(code, recovery), purpose="test", actor=audit.SYSTEM
        )
        await session.commit()
        return refused


def shifted(otp: pyotp.TOTP, now, steps: int) -> str:
    """The code of the step `steps` steps from `now` (a phone whose clock is off)."""
    return otp.at(now + timedelta(seconds=30 * steps))


def _uuid(value: str):
    import uuid

    return uuid.UUID(value)


async def _merchant(db, person: h.Person):
    from app.merchants.models import Admin

    async with create_session_factory(db)() as session:
        return await session.scalar(select(Admin.merchant_id).where(Admin.id == _uuid(person.id)))


async def test_enrollment_gives_a_qr_code_and_ten_recovery_codes_and_stores_no_plain_secret(db, tenant, clock):
    person = await h.make_admin(tenant, AdminRole.FINANCE, "finn@shop.example")
    started = (await tenant.gql(h.START_TOTP, key=person.token))["startTotpEnrollment"]["enrollment"]
    uri = started["provisioningUri"]
    assert uri.startswith("otpauth://totp/") and "finn%40shop.example" in uri and "issuer=Referral" in uri
    secret = h.secret_of(uri)
    assert secret == started["secret"] and len(secret) == 32  # 32 base32 characters: 160 bits
    assert h.svg_ok(started["qrCodeSvg"])

    wrong = await tenant.gql(h.CONFIRM_TOTP, {"code": "000000"}, key=person.token)
    assert [e["code"] for e in wrong["confirmTotpEnrollment"]["userErrors"]] == ["SECOND_FACTOR_INVALID"]
    confirmed = (await tenant.gql(h.CONFIRM_TOTP, {"code": pyotp.TOTP(secret).at(clock())}, key=person.token))[
        "confirmTotpEnrollment"
    ]
    codes = confirmed["recoveryCodes"]
    assert confirmed["admin"]["totpEnabled"] is True
    assert len(codes) == len(set(codes)) == 10 and all(re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", c) for c in codes)

    dump = []
    async with db.connect() as connection:
        for table in ("admins", "admin_recovery_codes", "second_factor_attempts", "audit_entries", "webhook_deliveries"):
            dump += [
                json.dumps([str(v) for v in row]) for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            ]
    everything = "\n".join(dump)
    assert secret not in everything and secret.lower() not in everything
    assert not any(code in everything or code.replace("-", "") in everything for code in codes)
    assert person.password not in everything


async def test_a_code_is_accepted_one_step_either_side_and_no_further(db, tenant, clock):
    person = await h.approver(tenant, clock)
    clock.advance(60)  # well past the step the enrollment used
    otp = pyotp.TOTP(person.secret)
    now = clock()
    assert (await check(db, person, now, shifted(otp, now, -2))).code.value == "SECOND_FACTOR_INVALID"
    assert (await check(db, person, now, shifted(otp, now, 2))).code.value == "SECOND_FACTOR_INVALID"
    assert await check(db, person, now, shifted(otp, now, -1)) is None  # the phone is 30 s behind
    assert await check(db, person, now, shifted(otp, now, 1)) is None  # ... or ahead
    assert [a.reason for a in await attempts(db)] == ["WRONG", "WRONG", "ACCEPTED", "ACCEPTED"]


async def test_a_code_is_accepted_once(db, tenant, clock):
    person = await h.approver(tenant, clock)
    code = person.code(clock())
    assert await check(db, person, clock(), code) is None
    replay = await check(db, person, clock(), code)
    assert replay.code.value == "SECOND_FACTOR_INVALID" and "already used" in replay.message
    # an earlier step after a later one is a replay too
    clock.advance(30)
    assert await check(db, person, clock(), person.code(clock())) is None
    assert (
        await check(db, person, clock(), shifted(pyotp.TOTP(person.secret), clock(), -1))
    ).message == "this code was already used"
    assert [a.reason for a in await attempts(db)] == ["ACCEPTED", "REPLAYED", "ACCEPTED", "REPLAYED"]


@pytest.mark.postgresql_only
async def test_one_code_used_twice_at_the_same_moment_succeeds_once(db, tenant, clock):
    person = await h.approver(tenant, clock)
    code = person.code(clock())
    results = await asyncio.gather(*[check(db, person, clock(), code) for _ in range(5)])
    assert sum(r is None for r in results) == 1
    assert sorted(a.reason for a in await attempts(db)) == ["ACCEPTED"] + ["REPLAYED"] * 4


ALIASED = "mutation {\n%s\n}" % "\n".join(
    f'a{n}: approvePayouts(ids: ["00000000-0000-7000-8000-000000000000"], expectedTotals: [], totpCode: "{n:06d}") '
    "{ approvedCount userErrors { code } }"
    for n in range(100)
)


async def test_a_hundred_aliased_attempts_check_no_code(db, tenant, clock, settings):
    person = await h.approver(tenant, clock)
    body = await tenant.raw(ALIASED, key=person.token)
    assert body["data"] is None
    assert any("at most one field that checks a second factor" in e["message"] for e in body["errors"])
    assert await attempts(db, purpose="approve_payouts") == []
    # two different second-factor fields in one document (via fragments) are refused too
    mixed = """mutation { ...A ...B }
      fragment A on Mutation { resetTotp(totpCode: "000000") { userErrors { code } } }
      fragment B on Mutation { confirmTotpEnrollment(code: "000000") { userErrors { code } } }"""
    assert (await tenant.raw(mixed, key=person.token))["data"] is None
    assert await attempts(db) == []


async def wrong_approval(tenant, token: str, client: httpx.AsyncClient | None = None) -> dict:
    body = {"query": h.APPROVE, "variables": {"ids": ["00000000-0000-7000-8000-000000000000"], "totals": [], "code": "000000"}}
    response = await (client or tenant.client).post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    return response.json()


async def test_five_wrong_codes_from_several_sessions_and_addresses_lock_money_actions(db, tenant, clock):
    program = await h.commission_program(tenant)
    await h.no_cooling_off(tenant)
    person = await h.approver(tenant, clock)
    payout = await h.payout_for(tenant, program, "jane", 500)
    other_session = await h.log_in(tenant, person)
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(make_settings(), engine=db), client=("198.51.100.9", 4000)),
        base_url="http://testserver",
    )
    async with elsewhere:
        for n in range(5):
            token, via = (person.token, None) if n % 2 else (other_session, elsewhere)
            body = (
                await h.approve(tenant, person, [payout], code=f"{n:06d}", key=token)
                if via is None
                else (
                    await via.post(
                        "/graphql",
                        json={
                            "query": h.APPROVE,
                            "variables": {"ids": [payout["id"]], "totals": h.totals(payout), "code": f"{n:06d}"},
                        },
                        headers={"Authorization": f"Bearer {token}"},
                    )
                ).json()
            )
            [error] = body["data"]["approvePayouts"]["userErrors"]
            assert error["code"] == ("SECOND_FACTOR_LOCKED" if n == 4 else "SECOND_FACTOR_INVALID"), (n, error)
    checked = await attempts(db)
    assert len(checked) == 5 and {a.ip for a in checked} == {"203.0.113.7", "198.51.100.9"}
    assert len({a.session_id for a in checked}) == 2

    # now even the right code is not checked, from any session
    locked = await h.approve(tenant, person, [payout], code=person.code(clock()))
    assert locked["data"]["approvePayouts"]["userErrors"][0]["code"] == "SECOND_FACTOR_LOCKED"
    assert len(await attempts(db)) == 5
    assert (await tenant.gql("{ me { secondFactorLockedUntil } }", key=person.token))["me"]["secondFactorLockedUntil"]

    clock.advance(15 * 60 + 1)
    unlocked = await h.approve(tenant, person, [payout], code=person.code(clock()))
    assert unlocked["data"]["approvePayouts"]["approvedCount"] == 1
    async with create_session_factory(db)() as session:
        assert await session.scalar(select(func.count()).where(AuditEntry.action == "admin.second_factor_locked")) == 1


async def test_a_batch_of_operations_in_one_request_is_refused(db, tenant, clock):
    person = await h.approver(tenant, clock)
    batch = [
        {"query": h.APPROVE, "variables": {"ids": ["00000000-0000-7000-8000-000000000000"], "totals": [], "code": "000000"}}
    ] * 10
    response = await tenant.client.post("/graphql", json=batch, headers={"Authorization": f"Bearer {person.token}"})
    assert response.status_code == 400
    assert await attempts(db) == []


@pytest.mark.postgresql_only
async def test_concurrent_wrong_codes_are_counted_one_by_one(db, tenant, clock):
    person = await h.approver(tenant, clock)
    tokens = [person.token] + [await h.log_in(tenant, person) for _ in range(3)]
    results = await asyncio.gather(*[wrong_approval(tenant, tokens[n % 4]) for n in range(20)])
    codes = [r["data"]["approvePayouts"]["userErrors"][0]["code"] for r in results]
    assert len(await attempts(db)) == 0  # an unknown payout: refused before any code is checked
    assert set(codes) == {"NOT_FOUND"}

    program = await h.commission_program(tenant)
    await h.no_cooling_off(tenant)
    payout = await h.payout_for(tenant, program, "jane", 500)
    results = await asyncio.gather(*[h.approve(tenant, person, [payout], code=f"{n:06d}", key=tokens[n % 4]) for n in range(20)])
    codes = sorted(r["data"]["approvePayouts"]["userErrors"][0]["code"] for r in results)
    assert codes == ["SECOND_FACTOR_INVALID"] * 4 + ["SECOND_FACTOR_LOCKED"] * 16
    assert len(await attempts(db)) == 5


async def test_recovery_codes_work_once_and_reset_the_device(db, tenant, clock):
    owner = await h.make_admin(tenant, AdminRole.OWNER, "olivia@shop.example")
    person = await h.approver(tenant, clock)
    await tenant.gql(
        """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }""",
        {"input": {"url": "https://hooks.shop.example/admins", "eventTypes": ["admin.totp_changed"]}},
    )
    code = person.recovery_codes[3]
    wrong = await tenant.gql(h.RESET_TOTP, {"recoveryCode": "aaaa-bbbb-cccc-dddd"}, key=person.token)
    assert wrong["resetTotp"]["userErrors"][0]["code"] == "SECOND_FACTOR_INVALID"
    reset = await tenant.gql(h.RESET_TOTP, {"recoveryCode": code.upper().replace("-", " ")}, key=person.token)
    assert reset["resetTotp"]["admin"]["totpEnabled"] is False
    assert (await check(db, person, clock(), person.code(clock()))).code.value == "SECOND_FACTOR_NOT_ENROLLED"

    await h.enroll(tenant, person, clock)
    assert (await check(db, person, clock(), recovery=code)).code.value == "SECOND_FACTOR_INVALID"  # the old codes are gone
    assert await check(db, person, clock(), recovery=person.recovery_codes[0]) is None
    assert (await check(db, person, clock(), recovery=person.recovery_codes[0])).code.value == "SECOND_FACTOR_INVALID"

    async with create_session_factory(db)() as session:
        deliveries = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.subject_id == _uuid(person.id)).order_by(AuditEntry.id)
            )
        ).all()
    assert [d.payload["change"] for d in deliveries] == ["RESET", "ENROLLED"]
    assert deliveries[0].payload["notify"] == [{"adminId": owner.id, "email": "olivia@shop.example", "role": "OWNER"}]
    assert deliveries[0].payload["email"] == person.email
    assert [a for a in actions if a.startswith("admin.totp")] == [
        "admin.totp_enrolled",
        "admin.totp_reset",
        "admin.totp_enrolled",
    ]


async def test_changing_the_device_needs_the_old_one(db, tenant, clock):
    person = await h.approver(tenant, clock)
    old = pyotp.TOTP(person.secret)
    started = (await tenant.gql(h.START_TOTP, key=person.token))["startTotpEnrollment"]["enrollment"]
    new = pyotp.TOTP(started["secret"])
    without = await tenant.gql(h.CONFIRM_TOTP, {"code": new.at(clock())}, key=person.token)
    assert without["confirmTotpEnrollment"]["userErrors"][0]["code"] == "SECOND_FACTOR_REQUIRED"
    changed = await tenant.gql(h.CONFIRM_TOTP, {"code": new.at(clock()), "currentCode": old.at(clock())}, key=person.token)
    assert changed["confirmTotpEnrollment"]["userErrors"] == [] and len(changed["confirmTotpEnrollment"]["recoveryCodes"]) == 10
    clock.advance(30)
    assert (await check(db, person, clock(), old.at(clock()))).code.value == "SECOND_FACTOR_INVALID"
    assert await check(db, person, clock(), new.at(clock())) is None
    async with create_session_factory(db)() as session:
        assert await session.scalar(select(func.count()).where(AuditEntry.action == "admin.totp_changed")) == 1
