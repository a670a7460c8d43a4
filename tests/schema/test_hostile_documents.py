"""Documents and bodies written to hurt: fragment fan-out, unknown fragments and cycles, deep
JSON, huge literals, lone surrogates. Each is answered with the request's own error (never a
500, never "Unexpected error."), logs nothing above INFO, and does not hold up the process."""

from __future__ import annotations

import asyncio
import logging

import pytest
from graphql import parse

from app.schema.limits import DocumentShapes


def fan_out(levels: int, leaf: str = "viewer { id }") -> str:
    """Each fragment spreads the next one twice: 2^levels expansions of the leaf."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ {leaf} }}")
    return "query FanOut { ...F0 }\n" + "\n".join(fragments)


@pytest.fixture
def no_error_logs(caplog):
    caplog.set_level(logging.INFO)
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.INFO] == []


async def post(tenant, body: dict | bytes, *, key: str | None = None, **headers: str):
    headers = ({"Authorization": f"Bearer {key}"} if key else {}) | headers
    if isinstance(body, bytes):
        return await tenant.client.post("/graphql", content=body, headers={"content-type": "application/json", **headers})
    return await tenant.client.post("/graphql", json=body, headers=headers)


async def test_a_fragment_fan_out_of_forty_levels_is_measured_once_per_fragment(tenant, no_error_logs):
    # 2^40 expansions: a walk per spread would never finish; the hang guard is not a timing goal.
    response = await asyncio.wait_for(post(tenant, {"query": fan_out(40)}, key=tenant.secret_key), timeout=30)

    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"id": str(tenant.id)}}}


async def test_a_fan_out_of_aliases_is_refused_by_the_alias_limit(tenant, settings, no_error_logs):
    response = await asyncio.wait_for(post(tenant, {"query": fan_out(40, "a: viewer { id }")}, key=tenant.secret_key), 30)

    [error] = response.json()["errors"]
    assert error["message"] == f"more than {settings.max_aliases} aliases found. Allowed: {settings.max_aliases}"


def test_each_fragment_is_measured_once_and_counts_once_per_spread():
    document = parse(fan_out(12, "a: viewer { id } b: viewer { id }"))
    shapes = DocumentShapes(document.definitions, cap=10**9)

    assert len(shapes.measured) == 13
    assert shapes.measured["F0"].aliases == 2 * 2**12  # what the document would execute
    assert shapes.measured["F0"].depth == 1


def test_a_chain_of_five_hundred_fragments_needs_no_recursion():
    chain = [f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(500)] + ["fragment F500 on Query { viewer { id } }"]
    shapes = DocumentShapes(parse("{ ...F0 }\n" + "\n".join(chain)).definitions, cap=10**6)

    assert shapes.measured["F0"].depth == 1


async def test_fragments_nested_in_fields_add_their_depth(tenant, settings):
    # F0 -> field -> F1 -> field -> ...: depth grows through fragments and is refused in time
    levels = settings.max_query_depth + 2
    fragments = [
        f"fragment F{i} on Referral {{ referrer {{ referrals(first: 1) {{ nodes {{ ...F{i + 1} }} }} }} }}" for i in range(levels)
    ]
    fragments.append(f"fragment F{levels} on Referral {{ id }}")
    document = '{ referral(id: "00000000-0000-0000-0000-000000000000") { ...F0 } }\n' + "\n".join(fragments)

    [error] = (await post(tenant, {"query": document}, key=tenant.secret_key)).json()["errors"]

    assert error["message"] == f"'anonymous' exceeds maximum operation depth of {settings.max_query_depth}"


@pytest.mark.parametrize(
    "document, message",
    [
        ("{ ...Nope }", "Unknown fragment 'Nope'."),
        (
            "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
    ],
)
async def test_unknown_and_cyclic_fragments_get_graphqls_own_errors(tenant, document, message, no_error_logs):
    response = await post(tenant, {"query": document})

    assert response.status_code == 200
    assert message in [e["message"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[" * 3000 + b"]" * 3000, "the request body is nested too deeply"),
        (
            b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}",
            "the request body is nested too deeply",
        ),
        (b'"{ __typename }"', "the request body must be a JSON object"),
        (b"42", "the request body must be a JSON object"),
        (b'[{"query": "{ __typename }"}]', "the request body must be a JSON object"),
        (b'{"query": "{ __typename }"', "Unable to parse request body as JSON"),
        (b"\xff\xfe{}", "Unable to parse request body as JSON"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_400_with_a_graphql_error(tenant, body, message, no_error_logs):
    response = await post(tenant, body)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"errors": [{"message": message}]}


async def test_a_bigint_literal_beyond_two_to_the_53_is_a_validation_error(tenant, no_error_logs):
    document = """mutation { recordAction(input: {type: "PURCHASE", customerExternalId: "bob", idempotencyKey: "o-1",
                    orderId: "1", amount: 9007199254740993, currency: "USD"}) { replayed } }"""

    response = await post(tenant, {"query": document}, key=tenant.secret_key)

    [error] = response.json()["errors"]
    assert "BigInt is out of range" in error["message"] and error["locations"]
    assert (await tenant.gql("{ actions(first: 5) { nodes { id } } }"))["actions"]["nodes"] == []


async def test_a_bigint_variable_beyond_two_to_the_53_is_a_variable_error(tenant, no_error_logs):
    document = """mutation($amount: BigInt) { recordAction(input: {type: "PURCHASE", customerExternalId: "bob",
                    idempotencyKey: "o-1", orderId: "1", amount: $amount, currency: "USD"}) { replayed } }"""

    response = await post(tenant, {"query": document, "variables": {"amount": 2**63}}, key=tenant.secret_key)

    [error] = response.json()["errors"]
    assert "BigInt is out of range" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        # a lone surrogate in a variable, and in the document itself (as a JSON escape)
        b'{"query": "mutation($e: String!) { upsertCustomer(input: {externalId: $e}) { userErrors { code } } }",'
        b' "variables": {"e": "a\\ud800b"}}',
        b'{"query": "mutation { upsertCustomer(input: {externalId: \\"a\\udc00b\\"}) { userErrors { code } } }"}',
    ],
)
async def test_a_lone_surrogate_anywhere_in_the_body_is_refused_before_anything_runs(tenant, body, no_error_logs):
    response = await post(tenant, body, key=tenant.secret_key)

    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "the request body contains a lone UTF-16 surrogate"}]}


async def test_a_lone_surrogate_escape_in_a_graphql_string_is_a_syntax_error(tenant, no_error_logs):
    document = 'mutation { upsertCustomer(input: {externalId: "a\\ud800b"}) { userErrors { code } } }'

    response = await post(tenant, {"query": document}, key=tenant.secret_key)

    assert "Invalid Unicode escape sequence" in response.json()["errors"][0]["message"]


async def test_an_escaped_emoji_is_a_pair_and_is_stored(tenant):
    body = (
        b'{"query": "mutation($n: String) { upsertCustomer(input: {externalId: \\"emoji\\", name: $n}) '
        b'{ customer { name } } }", "variables": {"n": "Run \\ud83c\\udfc3"}}'
    )

    response = await post(tenant, body, key=tenant.secret_key)

    assert response.json()["data"]["upsertCustomer"]["customer"]["name"] == "Run \U0001f3c3"
