"""API keys: shown once, stored as a hash, revocable and rotatable; publishable keys can
only do what the widget needs."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app.db import Base, utcnow
from app.merchants import service as merchants
from app.merchants.models import AdminRole, ApiKey, ApiKeyKind
from app.referrals.models import Action, Customer, Program
from tests import graphql_ops as ops
from tests.scenarios import active_program, code_for

CREATE_KEY = """
mutation($kind: ApiKeyKind!, $name: String) {
  createApiKey(kind: $kind, name: $name) {
    key
    apiKey { id kind name maskedKey last4 createdAt expiresAt revokedAt active }
    userErrors { field code message }
  }
}"""

REVOKE_KEY = """
mutation($id: ID!) {
  revokeApiKey(id: $id) {
    apiKey { id active revokedAt }
    userErrors { field code message }
  }
}"""

API_KEYS = "query { apiKeys { id kind name maskedKey last4 createdAt expiresAt revokedAt active } }"
VIEWER = "query { viewer { id name } }"


def error_codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def create_key(tenant, kind: str, name: str | None = None) -> dict:
    data = await tenant.gql(CREATE_KEY, {"kind": kind, "name": name})
    assert data["createApiKey"]["userErrors"] == []
    return data["createApiKey"]


async def key_ids(tenant, kind: str) -> list[str]:
    return [k["id"] for k in (await tenant.gql(API_KEYS))["apiKeys"] if k["kind"] == kind]


@pytest.mark.parametrize(("kind", "prefix"), [("SECRET", "sk_"), ("PUBLISHABLE", "pk_")])
async def test_created_key_is_shown_once_and_listed_masked(tenant, kind, prefix):
    created = await create_key(tenant, kind, name="ci deploy")
    plaintext = created["key"]
    assert plaintext.startswith(prefix) and len(plaintext) >= 32
    assert created["apiKey"]["kind"] == kind
    assert created["apiKey"]["last4"] == plaintext[-4:]
    assert created["apiKey"]["maskedKey"] == f"{prefix}…{plaintext[-4:]}"
    assert created["apiKey"]["active"] is True and created["apiKey"]["revokedAt"] is None

    listed = await tenant.gql(API_KEYS)
    assert plaintext not in str(listed)
    assert plaintext[3:] not in str(listed)
    ours = [k for k in listed["apiKeys"] if k["id"] == created["apiKey"]["id"]]
    assert ours == [created["apiKey"]]
    assert len(listed["apiKeys"]) == 3  # the fixture's two and this one

    # The key is real: it authenticates as this merchant (publishable keys for widget operations).
    if kind == "SECRET":
        assert (await tenant.gql(VIEWER, key=plaintext))["viewer"]["id"] == str(tenant.id)
    else:
        body = await tenant.raw('query { referralCode(code: "NOPE1234") { code } }', key=plaintext)
        assert error_codes(body) == ["NOT_FOUND"]


async def test_two_keys_are_never_the_same(tenant):
    keys = {(await create_key(tenant, "SECRET"))["key"] for _ in range(5)}
    assert len(keys) == 5


async def test_database_stores_only_a_hash(tenant, session):
    created = await create_key(tenant, "SECRET", name="stored")
    plaintext = created["key"]
    secret_part = plaintext[3:]

    row = await session.get_one(ApiKey, uuid.UUID(created["apiKey"]["id"]))
    assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()

    # No column of any table holds the key, or its random part.
    for table in Base.metadata.sorted_tables:
        for values in (await session.execute(select(table))).all():
            for value in values:
                assert secret_part not in str(value), f"{table.name} stores the plaintext key"
    raw = (await session.execute(text("SELECT * FROM api_keys"))).all()
    assert len(raw) == 3
    assert all(secret_part not in repr(values) for values in raw)


async def test_a_revoked_key_stops_working_on_the_next_request(tenant):
    second = await create_key(tenant, "SECRET", name="to revoke")
    assert (await tenant.gql(VIEWER, key=second["key"]))["viewer"]["id"] == str(tenant.id)

    revoked = await tenant.gql(REVOKE_KEY, {"id": second["apiKey"]["id"]})
    payload = revoked["revokeApiKey"]
    assert payload["userErrors"] == []
    assert payload["apiKey"]["active"] is False and payload["apiKey"]["revokedAt"] is not None

    body = await tenant.raw(VIEWER, key=second["key"])
    assert error_codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
    listed = {k["id"]: k for k in (await tenant.gql(API_KEYS))["apiKeys"]}
    assert listed[second["apiKey"]["id"]]["active"] is False
    # The key that did the revoking still works.
    assert (await tenant.gql(VIEWER))["viewer"]["id"] == str(tenant.id)


async def test_a_key_can_revoke_itself_while_another_secret_key_remains(tenant):
    second = await create_key(tenant, "SECRET")
    own_id = next(i for i in await key_ids(tenant, "SECRET") if i != second["apiKey"]["id"])
    data = await tenant.gql(REVOKE_KEY, {"id": own_id})
    assert data["revokeApiKey"]["userErrors"] == []
    assert error_codes(await tenant.raw(VIEWER)) == ["UNAUTHENTICATED"]
    assert (await tenant.gql(VIEWER, key=second["key"]))["viewer"]["id"] == str(tenant.id)


async def test_the_last_active_secret_key_cannot_be_revoked(tenant):
    [only_secret] = await key_ids(tenant, "SECRET")
    data = await tenant.gql(REVOKE_KEY, {"id": only_secret})
    assert data["revokeApiKey"]["apiKey"] is None
    assert [(e["field"], e["code"]) for e in data["revokeApiKey"]["userErrors"]] == [("id", "LAST_SECRET_KEY")]
    assert (await tenant.gql(VIEWER))["viewer"]["id"] == str(tenant.id)

    # A revoked second secret key does not count as "another one".
    second = await create_key(tenant, "SECRET")
    assert (await tenant.gql(REVOKE_KEY, {"id": second["apiKey"]["id"]}))["revokeApiKey"]["userErrors"] == []
    again = await tenant.gql(REVOKE_KEY, {"id": only_secret})
    assert [e["code"] for e in again["revokeApiKey"]["userErrors"]] == ["LAST_SECRET_KEY"]

    # The only publishable key can go: it does not lock the merchant out.
    [publishable] = await key_ids(tenant, "PUBLISHABLE")
    assert (await tenant.gql(REVOKE_KEY, {"id": publishable}))["revokeApiKey"]["userErrors"] == []
    assert error_codes(await tenant.raw(VIEWER, key=tenant.publishable_key)) == ["UNAUTHENTICATED"]


async def test_revoking_twice_is_already_revoked(tenant):
    second = await create_key(tenant, "PUBLISHABLE")
    first = await tenant.gql(REVOKE_KEY, {"id": second["apiKey"]["id"]})
    revoked_at = first["revokeApiKey"]["apiKey"]["revokedAt"]
    again = await tenant.gql(REVOKE_KEY, {"id": second["apiKey"]["id"]})
    assert again["revokeApiKey"]["apiKey"] is None
    assert [(e["field"], e["code"]) for e in again["revokeApiKey"]["userErrors"]] == [("id", "ALREADY_REVOKED")]
    listed = {k["id"]: k for k in (await tenant.gql(API_KEYS))["apiKeys"]}
    assert listed[second["apiKey"]["id"]]["revokedAt"] == revoked_at


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1", "x" * 100])
async def test_revoking_a_malformed_id_is_invalid_id(tenant, bad_id):
    data = await tenant.gql(REVOKE_KEY, {"id": bad_id})
    assert [(e["field"], e["code"]) for e in data["revokeApiKey"]["userErrors"]] == [("id", "INVALID_ID")]


async def test_revoking_an_unknown_id_is_not_found(tenant):
    data = await tenant.gql(REVOKE_KEY, {"id": str(uuid.uuid4())})
    assert [(e["field"], e["code"]) for e in data["revokeApiKey"]["userErrors"]] == [("id", "NOT_FOUND")]


# --- publishable keys -------------------------------------------------------------------------


async def _counts(session) -> dict[str, int]:
    counts = {}
    for model in (Action, Customer, Program, ApiKey):
        counts[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    await session.commit()  # end the read: SQLite has one pooled connection, the app needs it
    return counts


async def authenticate(session, plaintext: str):
    caller = await merchants.authenticate(session, plaintext=plaintext)
    await session.commit()
    return caller


SECRET_ONLY = [
    ("programs", "query { programs { edges { node { id } } } }", {}),
    ("viewer", VIEWER, {}),
    ("apiKeys", API_KEYS, {}),
    ("customer", 'query { customer(externalId: "jane") { id } }', {}),
    ("actions", "query { actions { edges { node { id } } } }", {}),
    (
        "recordAction",
        ops.RECORD_ACTION,
        {"input": {"type": "PURCHASE", "customerExternalId": "eve", "idempotencyKey": "k1", "amount": 100, "currency": "USD"}},
    ),
    ("upsertCustomer", ops.UPSERT_CUSTOMER, {"input": {"externalId": "eve", "email": "eve@example.com"}}),
    ("createProgram", ops.CREATE_PROGRAM, {"input": {"name": "Sneaky", "status": "ACTIVE"}}),
    ("createApiKey", CREATE_KEY, {"kind": "SECRET"}),
]


@pytest.mark.parametrize(("field", "document", "variables"), SECRET_ONLY, ids=[s[0] for s in SECRET_ONLY])
async def test_publishable_key_is_forbidden_secret_operations_and_writes_nothing(tenant, session, field, document, variables):
    before = await _counts(session)
    body = await tenant.raw(document, variables, key=tenant.publishable_key)
    assert error_codes(body) == ["FORBIDDEN"], body
    assert body["errors"][0]["path"] == [field]
    assert body["data"] is None or body["data"].get(field) is None
    assert await _counts(session) == before


async def test_publishable_key_cannot_revoke_keys(tenant):
    [secret_id] = await key_ids(tenant, "SECRET")
    second = await create_key(tenant, "SECRET")
    body = await tenant.raw(REVOKE_KEY, {"id": second["apiKey"]["id"]}, key=tenant.publishable_key)
    assert error_codes(body) == ["FORBIDDEN"]
    assert (await tenant.gql(VIEWER, key=second["key"]))["viewer"]["id"] == str(tenant.id)
    assert secret_id in await key_ids(tenant, "SECRET")


async def test_publishable_key_runs_the_widget_but_never_sees_the_referrer(tenant):
    program = await active_program(tenant)
    await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "jane", "email": "jane@example.com"}})
    code = await code_for(tenant, program["id"], "jane")

    tracked = await tenant.gql(ops.TRACK_CLICK, {"input": {"code": code["code"], "deviceId": "d1"}}, key=tenant.publishable_key)
    assert tracked["trackClick"]["userErrors"] == []
    assert tracked["trackClick"]["attributionToken"].startswith("at_")

    looked_up = await tenant.gql(
        "query($c: String!) { referralCode(code: $c) { code active shareUrl program { name } } }",
        {"c": code["code"].lower()},
        key=tenant.publishable_key,
    )
    assert looked_up["referralCode"] == {
        "code": code["code"],
        "active": True,
        "shareUrl": code["shareUrl"],
        "program": {"name": program["name"]},
    }

    body = await tenant.raw(
        "query($c: String!) { referralCode(code: $c) { code customer { externalId email } } }",
        {"c": code["code"]},
        key=tenant.publishable_key,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["referralCode", "customer"]
    assert body["data"] is None or body["data"]["referralCode"] is None
    assert "jane" not in str(body)

    # The same lookup with the secret key shows the referrer.
    secret = await tenant.gql("query($c: String!) { referralCode(code: $c) { customer { externalId } } }", {"c": code["code"]})
    assert secret["referralCode"]["customer"] == {"externalId": "jane"}


async def test_every_field_of_a_request_is_authorised_on_its_own(tenant):
    # Root fields resolve concurrently: each must see the authenticated caller.
    data = await tenant.gql("query { viewer { id } apiKeys { id } programs { edges { node { id } } } }")
    assert data["viewer"]["id"] == str(tenant.id) and len(data["apiKeys"]) == 2

    # Nullable fields, so that each reports its own error.
    three = f'query {{ referralCode(code: "NOPE1234") {{ code }} program(id: "{uuid.uuid4()}") {{ id }} customer(externalId: "x") {{ id }} }}'
    body = await tenant.raw(three, key=tenant.publishable_key)
    by_field = {e["path"][0]: e["extensions"]["code"] for e in body["errors"]}
    assert by_field == {"referralCode": "NOT_FOUND", "program": "FORBIDDEN", "customer": "FORBIDDEN"}
    body = await tenant.raw(three)
    by_field = {e["path"][0]: e["extensions"]["code"] for e in body["errors"]}
    assert by_field == {"referralCode": "NOT_FOUND", "program": "NOT_FOUND", "customer": "NOT_FOUND"}


# --- authentication ---------------------------------------------------------------------------


def _headers_cases(tenant) -> list[dict[str, str]]:
    return [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer sk_" + "x" * 32},
        {"Authorization": "Bearer pk_" + "x" * 32},
        {"Authorization": "Bearer " + tenant.secret_key + "x"},
        {"Authorization": "Bearer " + tenant.secret_key[:-1]},
        {"Authorization": "Bearer " + tenant.secret_key * 3},
        {"Authorization": "Basic " + tenant.secret_key},
        {"Authorization": tenant.secret_key},
        {"Authorization": "Bearer " + hashlib.sha256(tenant.secret_key.encode()).hexdigest()},
    ]


async def test_missing_or_garbage_authorization_is_unauthenticated(tenant, client, session):
    before = await _counts(session)
    for headers in _headers_cases(tenant):
        for document, variables in (
            (VIEWER, {}),
            ('query { referralCode(code: "ABCD1234") { code } }', {}),
            (ops.CREATE_PROGRAM, {"input": {"name": "Nope"}}),
        ):
            response = await client.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
            assert response.status_code == 200
            body = response.json()
            assert error_codes(body) == ["UNAUTHENTICATED"], (headers, body)
            assert not any((body["data"] or {}).values())
    assert await _counts(session) == before


async def test_the_bearer_scheme_is_case_insensitive(tenant, client):
    response = await client.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"bearer {tenant.secret_key}"})
    assert response.json()["data"]["viewer"]["id"] == str(tenant.id)


# --- rotation (service level, as the CLI uses it) ---------------------------------------------


async def test_rotation_with_grace_keeps_old_keys_until_they_expire(tenant, session, monkeypatch):
    old_secret = tenant.secret_key
    second = await merchants.create_api_key(session, merchant_id=tenant.id, kind=ApiKeyKind.SECRET, name="second")
    await session.commit()

    issued = await merchants.rotate_api_keys(session, merchant_id=tenant.id, kind=ApiKeyKind.SECRET, grace=timedelta(hours=2))
    await session.commit()
    assert issued.plaintext.startswith("sk_") and issued.plaintext not in (old_secret, second.plaintext)

    keys = {k.id: k for k in await merchants.list_api_keys(session, merchant_id=tenant.id)}
    await session.commit()
    retiring = [k for k in keys.values() if k.key_kind is ApiKeyKind.SECRET and k.id != issued.api_key.id]
    assert len(retiring) == 2
    now = utcnow()
    for key in retiring:
        assert key.revoked_at is None
        assert timedelta(hours=2) - timedelta(minutes=1) < key.expires_at - now <= timedelta(hours=2)
    assert keys[issued.api_key.id].expires_at is None
    publishable = [k for k in keys.values() if k.key_kind is ApiKeyKind.PUBLISHABLE]
    assert [k.expires_at for k in publishable] == [None]  # other kinds are left alone

    # During the grace period every key works, over the API too.
    for plaintext in (old_secret, second.plaintext, issued.plaintext):
        assert (await authenticate(session, plaintext)) is not None
        assert (await tenant.gql(VIEWER, key=plaintext))["viewer"]["id"] == str(tenant.id)

    # Just after expires_at only the new key does.
    later = retiring[0].expires_at + timedelta(seconds=1)
    monkeypatch.setattr(merchants, "utcnow", lambda: later)
    assert await authenticate(session, old_secret) is None
    assert await authenticate(session, second.plaintext) is None
    assert (await authenticate(session, issued.plaintext)).merchant_id == tenant.id
    assert (await authenticate(session, tenant.publishable_key)).kind is ApiKeyKind.PUBLISHABLE


async def test_rotation_with_grace_never_extends_an_earlier_expiry(tenant, session):
    await merchants.rotate_api_keys(session, merchant_id=tenant.id, kind=ApiKeyKind.SECRET, grace=timedelta(hours=1))
    await session.commit()
    original = await session.scalar(
        select(ApiKey).where(ApiKey.merchant_id == tenant.id, ApiKey.key_hash == merchants.hash_key(tenant.secret_key))
    )
    first_expiry = original.expires_at
    await merchants.rotate_api_keys(session, merchant_id=tenant.id, kind=ApiKeyKind.SECRET, grace=timedelta(hours=24))
    await session.commit()
    await session.refresh(original)
    assert original.expires_at == first_expiry


async def test_rotation_without_grace_revokes_old_keys_at_once(tenant, other_tenant, session):
    issued = await merchants.rotate_api_keys(session, merchant_id=tenant.id, kind=ApiKeyKind.SECRET)
    await session.commit()

    assert await authenticate(session, tenant.secret_key) is None
    assert error_codes(await tenant.raw(VIEWER)) == ["UNAUTHENTICATED"]
    assert (await tenant.gql(VIEWER, key=issued.plaintext))["viewer"]["id"] == str(tenant.id)
    old = await session.scalar(select(ApiKey).where(ApiKey.key_hash == merchants.hash_key(tenant.secret_key)))
    await session.commit()
    assert old.revoked_at is not None
    # The publishable key and the other merchant's keys are untouched.
    assert await authenticate(session, tenant.publishable_key) is not None
    assert (await other_tenant.gql(VIEWER))["viewer"]["id"] == str(other_tenant.id)


async def test_rotating_publishable_keys_keeps_the_secret_key(tenant, session):
    issued = await merchants.rotate_api_keys(session, merchant_id=tenant.id, kind=ApiKeyKind.PUBLISHABLE)
    await session.commit()
    assert issued.plaintext.startswith("pk_")
    assert await authenticate(session, tenant.publishable_key) is None
    assert (await authenticate(session, issued.plaintext)).kind is ApiKeyKind.PUBLISHABLE
    assert (await tenant.gql(VIEWER))["viewer"]["id"] == str(tenant.id)


async def test_rotating_for_an_unknown_merchant_is_not_found(db, session):
    from app.errors import DomainError, ErrorCode

    with pytest.raises(DomainError) as refused:
        await merchants.rotate_api_keys(session, merchant_id=uuid.uuid4(), kind=ApiKeyKind.SECRET)
    assert refused.value.code is ErrorCode.NOT_FOUND


CREATE_KEY_WITH_CODE = """
mutation($kind: ApiKeyKind!, $code: String) {
  createApiKey(kind: $kind, name: "from the console", totpCode: $code) {
    key apiKey { id maskedKey active } userErrors { field code message }
  }
}"""
REVOKE_KEY_WITH_CODE = """
mutation($id: ID!, $code: String) {
  revokeApiKey(id: $id, totpCode: $code) { apiKey { id active revokedAt } userErrors { field code message } }
}"""


async def test_an_owner_session_issues_and_revokes_keys_with_a_second_factor_only(tenant, clock):
    """The console's keys page: an owner's session alone (stolen, say) issues no key; with a
    code from their app it does, and revoking takes a fresh code too. Other roles may not."""
    from tests.payouts.helpers import approver, make_admin

    owner = await approver(tenant, clock, AdminRole.OWNER)
    keys_before = len((await tenant.gql("query { apiKeys { id } }"))["apiKeys"])
    without = (await tenant.raw(CREATE_KEY_WITH_CODE, {"kind": "SECRET", "code": None}, key=owner.token))["data"]["createApiKey"]
    assert without["key"] is None and [e["code"] for e in without["userErrors"]] == ["SECOND_FACTOR_REQUIRED"]
    not_the_code = "000000" if owner.code(clock()) != "000000" else "111111"
    wrong = (await tenant.raw(CREATE_KEY_WITH_CODE, {"kind": "SECRET", "code": not_the_code}, key=owner.token))["data"][
        "createApiKey"
    ]
    assert wrong["key"] is None and [e["code"] for e in wrong["userErrors"]] == ["SECOND_FACTOR_INVALID"]
    assert len((await tenant.gql("query { apiKeys { id } }"))["apiKeys"]) == keys_before

    made = (await tenant.raw(CREATE_KEY_WITH_CODE, {"kind": "SECRET", "code": owner.code(clock())}, key=owner.token))["data"]
    made = made["createApiKey"]
    assert made["userErrors"] == [] and made["key"].startswith("sk_") and made["apiKey"]["active"]
    assert (await tenant.raw("query { apiKeys { id } }", key=made["key"]))["data"]["apiKeys"]  # it works
    replayed = (
        await tenant.raw(REVOKE_KEY_WITH_CODE, {"id": made["apiKey"]["id"], "code": owner.code(clock())}, key=owner.token)
    )["data"]["revokeApiKey"]
    assert [e["code"] for e in replayed["userErrors"]] == ["SECOND_FACTOR_INVALID"]  # that code was spent on the key
    clock.advance(30)
    revoked = (
        await tenant.raw(REVOKE_KEY_WITH_CODE, {"id": made["apiKey"]["id"], "code": owner.code(clock())}, key=owner.token)
    )["data"]["revokeApiKey"]
    assert revoked["userErrors"] == [] and revoked["apiKey"]["active"] is False
    assert (await tenant.raw("query { apiKeys { id } }", key=made["key"]))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    for role in (AdminRole.ADMIN, AdminRole.FINANCE, AdminRole.REVIEWER):
        person = await approver(tenant, clock, role)
        body = await tenant.raw(CREATE_KEY_WITH_CODE, {"kind": "SECRET", "code": person.code(clock())}, key=person.token)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    fresh = await make_admin(tenant, AdminRole.OWNER)
    body = (await tenant.raw(CREATE_KEY_WITH_CODE, {"kind": "SECRET", "code": "123456"}, key=fresh.token))["data"]["createApiKey"]
    assert [e["code"] for e in body["userErrors"]] == ["SECOND_FACTOR_NOT_ENROLLED"]
