"""Merchant admins as people use them: created by an owner with a one-time setup token,
passwords that are not on breach lists, login and sessions (listed, revoked, expiring), roles,
and an audit log that names the admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import create_session_factory, utcnow
from app.merchants import sessions
from app.merchants.models import AdminRole, AdminSession, AuditEntry
from tests.conftest import test_settings as make_settings
from tests.payouts import helpers as h
from tests.scenarios import active_program, record

CREATE_ADMIN = """
mutation($email: String!, $role: AdminRole!) {
  createAdmin(email: $email, role: $role) { admin { id email role status } setupToken setupExpiresAt userErrors { field code message } }
}"""
COMPLETE_SETUP = """
mutation($token: String!, $password: String!) {
  completeAdminSetup(token: $token, password: $password) { admin { id status } userErrors { field code message } }
}"""
ME = "{ me { id email role status totpEnabled } }"
SESSIONS = "query($adminId: ID) { adminSessions(adminId: $adminId) { id adminId current revokedAt } }"
REVOKE_SESSION = "mutation($id: ID!) { revokeAdminSession(id: $id) { session { id revokedAt } userErrors { field code } } }"
SET_ROLE = (
    "mutation($id: ID!, $role: AdminRole!) { setAdminRole(id: $id, role: $role) { admin { role } userErrors { field code } } }"
)
DISABLE = "mutation($id: ID!) { disableAdmin(id: $id) { admin { status } userErrors { field code } } }"
LOGOUT = "mutation { logout { session { revokedAt } userErrors { code } } }"


async def test_an_owner_invites_an_admin_who_sets_a_password_and_logs_in(tenant):
    owner = await h.make_admin(tenant, AdminRole.OWNER)
    invited = (await tenant.gql(CREATE_ADMIN, {"email": "Finn@Shop.example", "role": "FINANCE"}, key=owner.token))["createAdmin"]
    assert invited["userErrors"] == [] and invited["admin"]["status"] == "INVITED"
    assert invited["admin"]["email"] == "finn@shop.example" and invited["setupToken"].startswith("setup_")

    weak = await tenant.gql(COMPLETE_SETUP, {"token": invited["setupToken"], "password": "password1234"})
    assert [e["code"] for e in weak["completeAdminSetup"]["userErrors"]] == ["WEAK_PASSWORD"]  # on the breach list
    short = await tenant.gql(COMPLETE_SETUP, {"token": invited["setupToken"], "password": "Xq9!short"})
    assert [e["code"] for e in short["completeAdminSetup"]["userErrors"]] == ["WEAK_PASSWORD"]
    done = await tenant.gql(COMPLETE_SETUP, {"token": invited["setupToken"], "password": "a long and unusual sentence 42"})
    assert done["completeAdminSetup"]["admin"]["status"] == "ACTIVE"
    spent = await tenant.gql(COMPLETE_SETUP, {"token": invited["setupToken"], "password": "another long sentence 43"})
    assert [e["code"] for e in spent["completeAdminSetup"]["userErrors"]] == ["INVALID_TOKEN"]

    login = await tenant.gql(h.LOGIN, {"email": "FINN@shop.example", "password": "a long and unusual sentence 42"})
    token = login["login"]["token"]
    assert token.startswith("sess_") and login["login"]["session"]["current"] is True
    me = (await tenant.gql(ME, key=token))["me"]
    assert (me["email"], me["role"], me["totpEnabled"]) == ("finn@shop.example", "FINANCE", False)


async def test_a_wrong_password_and_an_unknown_email_look_the_same(tenant):
    admin = await h.make_admin(tenant, AdminRole.ADMIN, login=False)
    wrong = await tenant.gql(h.LOGIN, {"email": admin.email, "password": "not the password at all"})
    unknown = await tenant.gql(h.LOGIN, {"email": "nobody@shop.example", "password": admin.password})
    assert (
        wrong["login"]["userErrors"]
        == unknown["login"]["userErrors"]
        == [{"field": None, "code": "INVALID_CREDENTIALS", "message": "wrong email or password"}]
    )
    assert wrong["login"]["token"] is None


async def test_an_email_at_two_merchants_needs_the_merchant_only_when_both_passwords_match(tenant, other_tenant):
    mine = await h.make_admin(tenant, AdminRole.OWNER, "sam@agency.example", login=False)
    theirs = await h.make_admin(other_tenant, AdminRole.OWNER, "sam@agency.example", login=False)
    assert (await tenant.gql(h.LOGIN, {"email": mine.email, "password": mine.password}))["login"]["token"]
    assert (await tenant.gql(h.LOGIN, {"email": theirs.email, "password": theirs.password}))["login"]["token"]
    # Same password at both: say which merchant
    from app.merchants import admins as admin_service

    async with create_session_factory(tenant.engine)() as session:
        from app.merchants import passwords
        from app.merchants.models import Admin

        hashed = await passwords.hash_password(make_settings(), mine.password)
        await session.execute(update(Admin).where(Admin.merchant_id == other_tenant.id).values(password_hash=hashed))
        await session.commit()
        assert admin_service  # imported for the reader: admins are per merchant
    both = await tenant.gql(h.LOGIN, {"email": mine.email, "password": mine.password})
    assert [e["code"] for e in both["login"]["userErrors"]] == ["MERCHANT_REQUIRED"]
    named = await tenant.gql(h.LOGIN, {"email": mine.email, "password": mine.password, "merchantId": str(other_tenant.id)})
    assert named["login"]["admin"]["id"] == theirs.id


async def test_sessions_are_listed_revoked_and_end_on_logout(tenant):
    owner = await h.make_admin(tenant, AdminRole.OWNER)
    staff = await h.make_admin(tenant, AdminRole.ADMIN)
    second = await h.log_in(tenant, staff)

    mine = (await tenant.gql(SESSIONS, key=staff.token))["adminSessions"]
    assert len(mine) == 2 and {s["adminId"] for s in mine} == {staff.id}
    forbidden = await tenant.raw(SESSIONS, {"adminId": owner.id}, key=staff.token)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # the owner ends one of the admin's sessions; it stops working at once
    current = next(s for s in mine if s["current"])
    revoked = await tenant.gql(REVOKE_SESSION, {"id": current["id"]}, key=owner.token)
    assert revoked["revokeAdminSession"]["session"]["revokedAt"]
    assert (await tenant.raw(ME, key=staff.token))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await tenant.gql(ME, key=second))["me"]["id"] == staff.id

    # another admin cannot end the owner's session (it is not found for them)
    everyone = (await tenant.gql(SESSIONS, key=owner.token))["adminSessions"]
    assert {s["adminId"] for s in everyone} == {owner.id, staff.id}  # an owner sees every session
    [owner_session] = (await tenant.gql(SESSIONS, {"adminId": owner.id}, key=owner.token))["adminSessions"]
    assert (await tenant.gql(REVOKE_SESSION, {"id": owner_session["id"]}, key=second))["revokeAdminSession"]["userErrors"] == [
        {"field": "id", "code": "NOT_FOUND"}
    ]

    assert (await tenant.gql(LOGOUT, key=second))["logout"]["session"]["revokedAt"]
    assert (await tenant.raw(ME, key=second))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_session_ends_when_idle_or_expired(db, tenant):
    admin = await h.make_admin(tenant, AdminRole.REVIEWER)
    settings = make_settings()
    async with create_session_factory(db)() as session:
        assert await sessions.authenticate(session, settings=settings, token=admin.token)
        await session.execute(
            update(AdminSession).values(last_used_at=utcnow() - timedelta(minutes=settings.admin_idle_minutes + 1))
        )
        await session.commit()
        assert await sessions.authenticate(session, settings=settings, token=admin.token) is None
        await session.execute(update(AdminSession).values(last_used_at=utcnow(), expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
        assert await sessions.authenticate(session, settings=settings, token=admin.token) is None
    assert (await tenant.raw(ME, key=admin.token))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await tenant.raw(ME, key="sess_" + "x" * 43))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_secret_key_cannot_create_admins_and_a_merchant_keeps_an_owner(tenant):
    refused = await tenant.raw(CREATE_ADMIN, {"email": "mallory@evil.example", "role": "FINANCE"})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # a leaked key cannot mint an approver
    owner = await h.make_admin(tenant, AdminRole.OWNER)
    staff = await h.make_admin(tenant, AdminRole.FINANCE)
    assert (await tenant.raw(CREATE_ADMIN, {"email": "x@shop.example", "role": "OWNER"}, key=staff.token))["errors"][0][
        "extensions"
    ]["code"] == "FORBIDDEN"

    assert (await tenant.gql(SET_ROLE, {"id": owner.id, "role": "ADMIN"}, key=owner.token))["setAdminRole"]["userErrors"] == [
        {"field": "id", "code": "LAST_OWNER"}
    ]
    assert (await tenant.gql(DISABLE, {"id": owner.id}, key=owner.token))["disableAdmin"]["userErrors"] == [
        {"field": "id", "code": "LAST_OWNER"}
    ]
    assert (await tenant.gql(SET_ROLE, {"id": staff.id, "role": "OWNER"}, key=owner.token))["setAdminRole"]["admin"][
        "role"
    ] == "OWNER"
    assert (await tenant.gql(DISABLE, {"id": owner.id}, key=staff.token))["disableAdmin"]["admin"]["status"] == "DISABLED"
    assert (await tenant.raw(ME, key=owner.token))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await tenant.gql(h.LOGIN, {"email": owner.email, "password": owner.password}))["login"]["token"] is None


@pytest.mark.parametrize("role, allowed", [("REVIEWER", True), ("ADMIN", True), ("FINANCE", False)])
async def test_reviewers_resolve_fraud_reviews_and_the_audit_log_names_them(db, tenant, role, allowed):
    program = await active_program(tenant)
    await record(tenant, type="SIGNUP", customerExternalId="jane", idempotencyKey="s-jane", context={"deviceId": "dev-1"})
    code = (
        await tenant.gql(
            """mutation($p: ID!) { issueReferralCode(input: {programId: $p, customerExternalId: "jane"}) {
        referralCode { code } } }""",
            {"p": program["id"]},
        )
    )["issueReferralCode"]["referralCode"]["code"]
    await record(
        tenant,
        type="SIGNUP",
        customerExternalId="jane2",
        idempotencyKey="s-jane2",
        referralCode=code,
        context={"deviceId": "dev-1"},
    )
    [review] = [e["node"] for e in (await tenant.gql("{ fraudReviews { edges { node { id } } } }"))["fraudReviews"]["edges"]]
    person = await h.make_admin(tenant, AdminRole(role))
    body = await tenant.raw(
        """mutation($id: ID!) { resolveFraudReview(id: $id, resolution: APPROVE, note: "same household") {
        review { status resolvedByAdminId resolvedByKeyId } userErrors { code } } }""",
        {"id": review["id"]},
        key=person.token,
    )
    if not allowed:
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        return
    resolved = body["data"]["resolveFraudReview"]["review"]
    assert resolved == {"status": "APPROVED", "resolvedByAdminId": person.id, "resolvedByKeyId": None}
    log = await tenant.gql("{ auditLog(first: 100) { edges { node { action actorAdminId actorKeyId subjectId } } } }")
    entry = next(e["node"] for e in log["auditLog"]["edges"] if e["node"]["action"] == "fraud_review.approved")
    assert entry == {"action": "fraud_review.approved", "actorAdminId": person.id, "actorKeyId": None, "subjectId": review["id"]}
    async with create_session_factory(db)() as session:
        logins = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "admin.login"))).all()
        assert [str(e.actor_admin_id) for e in logins] == [person.id]
