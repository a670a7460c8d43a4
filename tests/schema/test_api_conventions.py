"""What every caller of the API can rely on, whatever the operation: guardrails on query
size, nothing about the schema leaked in production, no writes over GET, a body size limit,
typed user errors for bad input, masked bugs with a request id, a health check, and the
visitor's real IP behind trusted proxies only."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from app.config import Settings
from app.logs import JSONFormatter, request_id_var
from app.main import create_app
from app.referrals.models import Click
from tests import graphql_ops as ops
from tests.conftest import test_settings as make_settings
from tests.scenarios import active_program, code_for

PEER = "203.0.113.7"  # the direct peer of every test request (see conftest's client)
TABLES = ("programs", "customers", "referral_codes", "clicks", "actions", "referrals")


@asynccontextmanager
async def app_client(engine, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built with other settings, on the test database."""
    app = create_app(make_settings(**overrides), engine=engine)
    transport = httpx.ASGITransport(app=app, client=(PEER, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def row_counts(session) -> dict[str, int]:
    counts = {table: await session.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES}
    await session.rollback()  # hand the connection back: SQLite's pool has only one
    return counts


async def program_names(session) -> list[str]:
    names = list((await session.scalars(text("SELECT name FROM programs ORDER BY name"))).all())
    await session.rollback()
    return names


def auth(tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.secret_key}"}


def nested_query(levels: int) -> str:
    """`{ referrals { edges { node { referrer { referrals ... { __typename } } } } } }` with
    `levels` nested fields, counting the root field and the leaf."""
    chain = (["referrals", "edges", "node", "referrer"] * levels)[: levels - 1]
    return "{ " + " { ".join(chain) + " { __typename" + " }" * len(chain) + " }"


def signup(key: str) -> dict[str, Any]:
    return {"input": {"type": "SIGNUP", "customerExternalId": f"c-{key}", "idempotencyKey": key}}


# --- Guardrails: depth, aliases, tokens -------------------------------------------------


async def test_a_query_within_the_depth_limit_runs(tenant, settings):
    body = await tenant.raw(nested_query(settings.max_query_depth))
    assert "errors" not in body
    assert body["data"] == {"referrals": {"edges": []}}


async def test_a_query_nested_deeper_than_the_limit_is_refused(tenant, settings):
    body = await tenant.raw(nested_query(settings.max_query_depth + 2))
    assert body.get("data") is None
    assert "depth" in body["errors"][0]["message"]


async def test_a_mutation_with_a_too_deep_selection_is_not_executed(tenant, settings, session):
    chain = (["referral"] + ["referrer", "referrals", "edges", "node"] * settings.max_query_depth)[: settings.max_query_depth + 2]
    selection = " { ".join(chain) + " { __typename" + " }" * len(chain)
    deep = f"mutation($input: RecordActionInput!) {{ recordAction(input: $input) {{ {selection} }} }}"

    refused = await tenant.raw(deep, signup("deep"))
    assert refused.get("data") is None
    assert "depth" in refused["errors"][0]["message"]
    assert (await row_counts(session))["actions"] == 0

    shallow = "mutation($input: RecordActionInput!) { recordAction(input: $input) { action { id } userErrors { code } } }"
    assert (await tenant.gql(shallow, signup("deep")))["recordAction"]["userErrors"] == []
    assert (await row_counts(session))["actions"] == 1


def aliased_creates(count: int) -> str:
    fields = " ".join(f'p{i}: createProgram(input: {{name: "p{i}"}}) {{ program {{ id }} }}' for i in range(count))
    return "mutation { " + fields + " }"


async def test_more_aliases_than_allowed_are_refused_before_anything_runs(tenant, settings, session):
    refused = await tenant.raw(aliased_creates(settings.max_aliases + 1))
    assert refused.get("data") is None
    assert "aliases" in refused["errors"][0]["message"]
    assert (await row_counts(session))["programs"] == 0

    allowed = await tenant.gql(aliased_creates(settings.max_aliases))
    assert len(allowed) == settings.max_aliases
    assert (await row_counts(session))["programs"] == settings.max_aliases


async def test_a_document_over_the_token_limit_is_refused_before_anything_runs(tenant, settings, session):
    padded = 'mutation { createProgram(input: {name: "big"}) { program { ' + "id " * settings.max_tokens + "} } }"
    refused = await tenant.raw(padded)
    assert refused.get("data") is None
    assert "tokens" in refused["errors"][0]["message"]
    assert (await row_counts(session))["programs"] == 0

    small = 'mutation { createProgram(input: {name: "big"}) { program { id id id } } }'
    assert (await tenant.gql(small))["createProgram"]["program"]["id"]


# --- Production hides the schema ---------------------------------------------------------


@pytest.fixture
async def production(db, tenant):
    """The tenant, calling an app that runs with APP_ENV=production."""
    async with app_client(db, app_env="production") as client:
        yield dataclasses.replace(tenant, client=client)


INTROSPECTION = "{ __schema { types { name } } }"


async def test_introspection_works_in_development(tenant):
    body = await tenant.raw(INTROSPECTION)
    assert "errors" not in body
    assert "Program" in {t["name"] for t in body["data"]["__schema"]["types"]}


async def test_introspection_is_refused_in_production(production):
    for document in (INTROSPECTION, '{ __type(name: "Program") { fields { name } } }'):
        body = await production.raw(document)
        assert body.get("data") is None
        assert "introspection" in body["errors"][0]["message"]
        assert "Program" not in json.dumps(body.get("data"))
    # __typename is not introspection; clients (Apollo, urql) add it everywhere
    assert (await production.gql("{ __typename }")) == {"__typename": "Query"}


MISSPELLED = [
    pytest.param("{ programz { edges { cursor } } }", None, id="field"),
    pytest.param("{ programs { edges { node { nam } } } }", None, id="nested-field"),
    pytest.param("{ programs(firs: 2) { edges { cursor } } }", None, id="argument"),
    pytest.param("{ programs(status: ACTIV) { edges { cursor } } }", None, id="enum-value"),
    pytest.param('mutation { createProgram(input: {nam: "x"}) { program { id } } }', None, id="input-field"),
    pytest.param("query($s: ProgramStatu) { programs(status: $s) { edges { cursor } } }", None, id="type"),
    pytest.param(ops.CREATE_PROGRAM, {"input": {"nam": "x", "status": "ACTIV"}}, id="variables"),
]


@pytest.mark.parametrize(("document", "variables"), MISSPELLED)
async def test_a_misspelling_gets_a_suggestion_in_development(tenant, document, variables):
    body = await tenant.raw(document, variables)
    assert "Did you mean" in json.dumps(body["errors"])


@pytest.mark.parametrize(("document", "variables"), MISSPELLED)
async def test_a_misspelling_gets_no_suggestion_in_production(production, document, variables):
    body = await production.raw(document, variables)
    assert body["errors"]
    assert "Did you mean" not in json.dumps(body["errors"])


async def test_graphiql_is_served_in_development_only(client, production):
    development = await client.get("/graphql", headers={"Accept": "text/html"})
    assert development.status_code == 200
    assert "graphiql" in development.text.lower()

    response = await production.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


# --- GET is for queries only -------------------------------------------------------------


async def test_a_mutation_over_get_is_refused_and_writes_nothing(tenant, client, session):
    mutation = 'mutation { createProgram(input: {name: "via GET", status: ACTIVE}) { program { id } } }'
    response = await client.get("/graphql", params={"query": mutation}, headers=auth(tenant))
    assert response.status_code in (400, 405)
    assert (await row_counts(session))["programs"] == 0


async def test_a_query_over_get_works(tenant, client):
    program = await active_program(tenant, name="Listed")
    response = await client.get("/graphql", params={"query": "{ programs { edges { node { id name } } } }"}, headers=auth(tenant))
    assert response.status_code == 200
    assert response.json()["data"]["programs"]["edges"] == [{"node": {"id": program["id"], "name": "Listed"}}]


# --- Body size limit ---------------------------------------------------------------------

LIMIT = 2048


def create_program_body(padding: int) -> bytes:
    query = 'mutation { createProgram(input: {name: "Posted"}) { program { id } } }' + " " * padding
    return json.dumps({"query": query}).encode()


async def chunks(body: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_over_the_limit_is_refused_with_413(db, tenant, session):
    async with app_client(db, max_body_bytes=LIMIT) as client:
        headers = {**auth(tenant), "Content-Type": "application/json"}
        too_big = create_program_body(LIMIT)

        declared = await client.post("/graphql", content=too_big, headers=headers)
        assert declared.status_code == 413
        assert declared.headers["x-request-id"]

        streamed = await client.post("/graphql", content=chunks(too_big), headers=headers)  # no Content-Length
        assert "content-length" not in streamed.request.headers
        assert streamed.status_code == 413
        assert streamed.headers["x-request-id"]
        assert (await row_counts(session))["programs"] == 0

        fits = await client.post("/graphql", content=chunks(create_program_body(100)), headers=headers)
        assert fits.status_code == 200, fits.text
        assert fits.json()["data"]["createProgram"]["program"]["id"]
        assert (await row_counts(session))["programs"] == 1


# --- Invalid input: a typed userError, nothing written ------------------------------------

NUL = "bad\x00value"
LONG = "x" * 10_000

INVALID_INPUTS = [
    pytest.param(ops.UPSERT_CUSTOMER, {"input": {"externalId": NUL}}, "externalId", "INVALID_INPUT", id="nul-external-id"),
    pytest.param(ops.UPSERT_CUSTOMER, {"input": {"externalId": "bob", "name": NUL}}, "name", "INVALID_INPUT", id="nul-name"),
    pytest.param(
        ops.UPSERT_CUSTOMER,
        {"input": {"externalId": "bob", "metadata": {"note": NUL}}},
        "metadata",
        "INVALID_INPUT",
        id="nul-metadata",
    ),
    pytest.param(ops.UPSERT_CUSTOMER, {"input": {"externalId": LONG}}, "externalId", "TOO_LONG", id="long-external-id"),
    pytest.param(
        ops.UPSERT_CUSTOMER, {"input": {"externalId": "bob", "name": LONG}}, "name", "TOO_LONG", id="long-customer-name"
    ),
    pytest.param(
        ops.UPSERT_CUSTOMER, {"input": {"externalId": "bob", "email": "bob-at-example"}}, "email", "INVALID_EMAIL", id="bad-email"
    ),
    pytest.param(ops.CREATE_PROGRAM, {"input": {"name": NUL}}, "name", "INVALID_INPUT", id="nul-program-name"),
    pytest.param(ops.CREATE_PROGRAM, {"input": {"name": LONG}}, "name", "TOO_LONG", id="long-program-name"),
    pytest.param(
        ops.CREATE_PROGRAM,
        {"input": {"name": "P", "shareUrlTemplate": "https://shop.example/"}},
        "shareUrlTemplate",
        "INVALID_URL",
        id="template-without-code",
    ),
    pytest.param(
        ops.CREATE_PROGRAM,
        {"input": {"name": "P", "shareUrlTemplate": "javascript:alert(1)//{code}"}},
        "shareUrlTemplate",
        "INVALID_URL",
        id="template-not-http",
    ),
    pytest.param(ops.UPDATE_PROGRAM, {"id": "not-an-id", "input": {"name": "New"}}, "id", "INVALID_ID", id="malformed-id"),
    pytest.param(ops.UPDATE_PROGRAM, {"id": NUL, "input": {"name": "New"}}, "id", "INVALID_ID", id="nul-id"),
    pytest.param(
        ops.ISSUE_CODE,
        {"input": {"programId": "not-an-id", "customerExternalId": "bob"}},
        "programId",
        "INVALID_ID",
        id="malformed-program-id",
    ),
    pytest.param(
        ops.RECORD_ACTION,
        {"input": {"type": "SIGNUP", "customerExternalId": "bob", "idempotencyKey": NUL}},
        "idempotencyKey",
        "INVALID_INPUT",
        id="nul-idempotency-key",
    ),
    pytest.param(
        ops.RECORD_ACTION,
        {"input": {"type": "SIGNUP", "customerExternalId": "bob", "idempotencyKey": "k", "orderId": LONG}},
        "orderId",
        "TOO_LONG",
        id="long-order-id",
    ),
]


@pytest.mark.parametrize(("document", "variables", "field", "code"), INVALID_INPUTS)
async def test_invalid_input_is_a_user_error_and_writes_nothing(tenant, session, document, variables, field, code):
    await active_program(tenant, name="Original")
    before = await row_counts(session)

    body = await tenant.raw(document, variables)

    assert "errors" not in body, body["errors"]
    (payload,) = body["data"].values()
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert "\x00" not in payload["userErrors"][0]["message"]
    assert await row_counts(session) == before
    assert await program_names(session) == ["Original"]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"name": NUL}, "name", "INVALID_INPUT"),
        ({"name": LONG}, "name", "TOO_LONG"),
        ({"name": "Renamed", "shareUrlTemplate": "https://shop.example/no-placeholder"}, "shareUrlTemplate", "INVALID_URL"),
    ],
)
async def test_an_invalid_update_leaves_the_program_as_it_was(tenant, session, changes, field, code):
    program = await active_program(tenant, name="Original")
    data = await tenant.gql(ops.UPDATE_PROGRAM, {"id": program["id"], "input": changes})
    assert [(e["field"], e["code"]) for e in data["updateProgram"]["userErrors"]] == [(field, code)]
    assert data["updateProgram"]["program"] is None
    fetched = await tenant.gql("query($id: ID!) { program(id: $id) { name shareUrlTemplate } }", {"id": program["id"]})
    assert fetched["program"] == {"name": "Original", "shareUrlTemplate": program["shareUrlTemplate"]}


# --- Bugs are masked, logged with a traceback, and traceable by request id ----------------


class JSONCapture(logging.Handler):
    """Formats records as they are emitted, while the request's context is still set."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def graphql_log():
    handler = JSONCapture()
    logger = logging.getLogger("app.graphql")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_an_unexpected_error_is_masked_and_logged_with_its_traceback(tenant, client, monkeypatch, caplog, graphql_log):
    from app.referrals import programs

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(programs, "list_programs", broken)
    caplog.set_level(logging.ERROR, logger="app.graphql")

    response = await client.post(
        "/graphql",
        json={"query": "{ programs { edges { cursor } } }"},
        headers={**auth(tenant), "X-Request-ID": "req-42.abc_DEF"},
    )

    assert response.status_code == 200
    assert [e["message"] for e in response.json()["errors"]] == ["Unexpected error."]
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["x-request-id"] == "req-42.abc_DEF"

    logged = [r for r in caplog.records if r.name == "app.graphql" and r.exc_info]
    assert len(logged) == 1
    assert isinstance(logged[0].exc_info[1], RuntimeError)
    assert "secret detail" in caplog.text and "Traceback" in caplog.text

    (line,) = [line for line in graphql_log.lines if "exception" in line]
    assert line["request_id"] == "req-42.abc_DEF"
    assert line["level"] == "error"
    assert "RuntimeError: secret detail" in line["exception"]


async def test_an_unexpected_error_after_a_write_rolls_the_write_back(tenant, monkeypatch, session):
    from app.schema import programs as program_schema

    def broken(model: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(program_schema.Program, "from_model", broken)
    body = await tenant.raw(ops.CREATE_PROGRAM, {"input": {"name": "Half written", "status": "ACTIVE"}})
    assert [e["message"] for e in body["errors"]] == ["Unexpected error."]
    assert "secret detail" not in json.dumps(body)
    assert (await row_counts(session))["programs"] == 0


async def test_every_response_carries_a_request_id(tenant, client):
    first = await client.post("/graphql", json={"query": "{ __typename }"})
    second = await client.post("/graphql", json={"query": "{ __typename }"})
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert all(len(r.headers["x-request-id"]) >= 16 for r in (first, second))

    echoed = await client.get("/healthz", headers={"X-Request-ID": "lb-trace-7"})
    assert echoed.headers["x-request-id"] == "lb-trace-7"

    for forged in ("has spaces in it", "x" * 65, "semi;colon"):
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": forged})
        assert response.headers["x-request-id"] != forged


def test_a_json_log_line_carries_the_request_id():
    formatter = JSONFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app.http", logging.ERROR, __file__, 1, "failed %s", ("GET",), exc_info)
    record.status = 500

    token = request_id_var.set("req-123")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(token)

    assert line["request_id"] == "req-123"
    assert line["message"] == "failed GET"
    assert line["level"] == "error"
    assert line["logger"] == "app.http"
    assert line["status"] == 500
    assert "RuntimeError: boom" in line["exception"]

    outside = json.loads(formatter.format(logging.LogRecord("app.http", logging.INFO, __file__, 1, "idle", (), None)))
    assert "request_id" not in outside


# --- Health check ------------------------------------------------------------------------


async def test_healthz_is_ok_with_a_working_database(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_healthz_is_503_when_the_database_is_unreachable():
    # Port 1 refuses connections at once: the check must fail, not hang.
    app = create_app(make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/x"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            response = await client.get("/healthz")
    finally:
        await app.app.state.engine.dispose()
    assert response.status_code == 503
    assert response.json()["status"] != "ok"
    assert "127.0.0.1" not in response.text


# --- The visitor's IP on clicks ----------------------------------------------------------


async def click_ip(tenant, session, code: str, forwarded_for: str | None) -> str | None:
    headers = {"Authorization": f"Bearer {tenant.publishable_key}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    response = await tenant.client.post(
        "/graphql",
        json={"query": ops.TRACK_CLICK, "variables": {"input": {"code": code, "deviceId": uuid.uuid4().hex}}},
        headers=headers,
    )
    payload = response.json()["data"]["trackClick"]
    assert payload["userErrors"] == [], payload
    ip = await session.scalar(select(Click.ip).where(Click.attribution_token == payload["attributionToken"]))  # decrypted
    await session.rollback()
    return ip


@pytest.fixture
async def shared_code(tenant) -> str:
    program = await active_program(tenant)
    return (await code_for(tenant, program["id"], "jane"))["code"]


async def test_forwarded_for_is_ignored_without_trusted_proxies(tenant, session, shared_code):
    assert await click_ip(tenant, session, shared_code, None) == PEER
    assert await click_ip(tenant, session, shared_code, "198.51.100.9") == PEER
    assert await click_ip(tenant, session, shared_code, "10.0.0.1, 198.51.100.9") == PEER


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "expected"),
    [
        pytest.param("203.0.113.7", "198.51.100.9", "198.51.100.9", id="one-proxy"),
        pytest.param("203.0.113.0/24", "198.51.100.9", "198.51.100.9", id="proxy-network"),
        pytest.param("203.0.113.7,10.0.0.0/8", "198.51.100.9, 10.0.0.2", "198.51.100.9", id="two-proxies"),
        pytest.param("203.0.113.7", "1.2.3.4, 198.51.100.9", "198.51.100.9", id="spoofed-leftmost"),
        pytest.param("203.0.113.7,10.0.0.0/8", "1.2.3.4, 198.51.100.9, 10.0.0.2", "198.51.100.9", id="spoofed-behind-two"),
        pytest.param("203.0.113.7", "2001:db8::1", "2001:db8::1", id="ipv6-visitor"),
        pytest.param("203.0.113.7", "not-an-ip", PEER, id="garbage-hop"),
        pytest.param("203.0.113.7", "1.2.3.4, not-an-ip", PEER, id="garbage-rightmost-hop"),
        pytest.param("203.0.113.7", "fe80::1%" + "z" * 60, PEER, id="overlong-scoped-ipv6"),
        pytest.param("198.51.100.0/24", "1.2.3.4", PEER, id="peer-not-trusted"),
    ],
)
async def test_forwarded_for_is_read_from_the_right_past_trusted_proxies(
    db, tenant, session, shared_code, trusted, forwarded_for, expected
):
    proxies = Settings.from_env({"TRUSTED_PROXIES": trusted}).trusted_proxies  # as a deployment sets it
    async with app_client(db, trusted_proxies=proxies) as client:
        behind_proxy = dataclasses.replace(tenant, client=client)
        assert await click_ip(behind_proxy, session, shared_code, forwarded_for) == expected


async def test_many_root_fields_and_their_relations_resolve_together_in_one_request(tenant):
    """Root fields and DataLoader batches run concurrently; they share one database session,
    which must never be used by two of them at once."""
    from tests.scenarios import active_program, code_for, record

    program = await active_program(tenant)
    code = (await code_for(tenant, program["id"], "jane"))["code"]
    for i in range(3):
        await record(tenant, type="SIGNUP", customerExternalId=f"friend-{i}", idempotencyKey=f"s-{i}", referralCode=code)

    data = await tenant.gql(
        """query($p: ID!) {
          viewer { name }
          apiKeys { maskedKey }
          programs { edges { node { name } } }
          program(id: $p) { name }
          referrals { edges { node { referrer { externalId } referee { externalId } code { code } program { name } } } }
          actions { edges { node { type customer { externalId } referral { status } } } }
          jane: customer(externalId: "jane") { referralCodes { code } referrals { edges { node { referee { externalId } } } } }
          referralCode(code: "%s") { code customer { externalId } }
        }"""
        % code,
        {"p": program["id"]},
    )

    assert data["viewer"]["name"] == "Shop A"
    assert len(data["apiKeys"]) == 2
    assert sorted(e["node"]["referee"]["externalId"] for e in data["referrals"]["edges"]) == ["friend-0", "friend-1", "friend-2"]
    assert {e["node"]["referral"]["status"] for e in data["actions"]["edges"]} == {"PENDING"}
    assert len(data["jane"]["referrals"]["edges"]) == 3
    assert data["referralCode"]["customer"]["externalId"] == "jane"
