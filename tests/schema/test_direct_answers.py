"""The common request (a JSON POST of one valid query or mutation) is answered without
Strawberry's HTTP view and `Schema.execute` (`GraphQLView.answer_directly`): every request here
gets the same status, media type and body either way, errors, masking and refusals included,
and the hot paths do take the direct way."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.referrals import queries
from app.schema.view import GRAPHQL_RESPONSE_JSON, GraphQLView
from tests.scenarios import active_program, code_for
from tests.schema.test_query_count import HOT_CLICK, HOT_PURCHASE, REFERRALS_WITH_RELATIONS

GRJ = GRAPHQL_RESPONSE_JSON


def _requests(code: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(key kind, body, headers): answers that worked, failed in a field, never ran, or were refused."""
    purchase = {
        "type": "PURCHASE",
        "customerExternalId": "bob",
        "idempotencyKey": "order-1",
        "orderId": "order-1",
        "amount": 5000,
        "currency": "USD",
        "referralCode": code,
    }
    two = "query A { __typename } query B { viewer { id } }"
    return [
        ("secret", {"query": REFERRALS_WITH_RELATIONS, "variables": {"first": 5}}, {}),
        ("secret", {"query": HOT_PURCHASE, "variables": {"i": purchase}}, {}),
        ("secret", {"query": HOT_PURCHASE, "variables": {"i": purchase}}, {"accept": GRJ}),  # the retry: same answer
        ("publishable", {"query": HOT_CLICK, "variables": {"i": {"code": code, "deviceId": "d-1"}}}, {}),
        ("publishable", {"query": HOT_CLICK, "variables": {"i": {"code": "NOPE-404", "deviceId": "d-1"}}}, {}),
        ("publishable", {"query": HOT_PURCHASE, "variables": {"i": purchase}}, {}),  # a secret key's mutation
        ("none", {"query": "{ __typename viewer { id } }"}, {}),  # a field error beside data
        ("secret", {"query": HOT_PURCHASE, "variables": {"i": {**purchase, "amount": "many"}}}, {}),  # variables: never ran
        ("secret", {"query": HOT_PURCHASE, "variables": {"i": {**purchase, "type": "PURCHASES"}}}, {"accept": GRJ}),
        ("secret", {"query": HOT_PURCHASE}, {"accept": GRJ}),  # a required variable missing
        ("secret", {"query": two, "operationName": "B"}, {}),
        ("secret", {"query": two, "operationName": "C"}, {}),  # no such operation: Strawberry's way
        ("secret", {"query": two}, {"accept": GRJ}),  # which one? Strawberry's way
        ("secret", {"query": "{ referrals(first: 5) { edges { node { nope } } } }"}, {"accept": GRJ}),  # invalid
        ("secret", {"query": "{ referrals(first: 5) { edges "}, {}),  # a syntax error
        ("secret", {"query": "subscription { __typename }"}, {}),
        ("secret", {"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1}}}, {}),
        ("secret", {"query": "{ __typename }", "variables": ["not", "an", "object"]}, {}),
        ("secret", {"query": 7}, {}),
        ("secret", {"variables": {}}, {"accept": GRJ}),
    ]


async def _answers(tenant, code: str) -> list[tuple[int, str, Any]]:
    keys = {"secret": tenant.secret_key, "publishable": tenant.publishable_key}
    answers = []
    for kind, body, headers in _requests(code):
        auth = {"authorization": f"Bearer {keys[kind]}"} if kind in keys else {}
        response = await tenant.client.post("/graphql", json=body, headers={**headers, **auth})
        answers.append((response.status_code, response.headers["content-type"], response.json()))
    return answers


def _strawberry_only(monkeypatch) -> None:
    async def never(self, request, context):
        return None

    monkeypatch.setattr(GraphQLView, "answer_directly", never)


@pytest.fixture
async def code(tenant) -> str:
    program = await active_program(tenant)
    return (await code_for(tenant, program["id"], "jane"))["code"]


async def test_every_answer_is_the_one_strawberrys_path_gives(tenant, other_tenant, code, monkeypatch):
    direct = await _answers(tenant, code)
    monkeypatch.setattr(tenant, "secret_key", other_tenant.secret_key)  # a shop in the same state, from scratch
    monkeypatch.setattr(tenant, "publishable_key", other_tenant.publishable_key)
    other_code = (await code_for(other_tenant, (await active_program(other_tenant))["id"], "jane"))["code"]
    _strawberry_only(monkeypatch)
    through_strawberry = await _answers(tenant, other_code)

    def same_shape(answer: tuple[int, str, Any], shop_code: str) -> Any:
        status, media_type, body = answer
        text = str(body).replace(shop_code, "CODE")
        for volatile in ("id", "attributionToken", "attribution"):  # ids and tokens of each shop's own rows
            text = _blank(text, volatile)
        return status, media_type, text

    assert [same_shape(a, code) for a in direct] == [same_shape(a, other_code) for a in through_strawberry]
    statuses = [status for status, _media, _body in direct]
    assert statuses.count(400) >= 4 and 200 in statuses  # the comparison covered refusals and answers


def _blank(text: str, key: str) -> str:
    import re

    return re.sub(rf"'{key}': '[^']*'", f"'{key}': '...'", text)


async def test_an_unexpected_error_is_masked_and_logged_the_same_way(tenant, monkeypatch, caplog):
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database said something private")

    monkeypatch.setattr(queries, "list_referrals", broken)
    answers = []
    for strawberry_only in (False, True):
        if strawberry_only:
            _strawberry_only(monkeypatch)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="app.graphql"):
            body = await tenant.raw(REFERRALS_WITH_RELATIONS, {"first": 5})
        logged = [record for record in caplog.records if record.name == "app.graphql"]
        assert len(logged) == 1 and "private" in str(logged[0].exc_info[1])  # the bug, with its traceback
        answers.append(body)
    assert answers[0] == answers[1]
    assert answers[0]["errors"][0]["message"] == "Unexpected error." and "private" not in str(answers[0])


async def test_the_hot_paths_are_answered_directly(tenant, code, monkeypatch):
    ran_through_strawberry = []
    run = GraphQLView.run

    async def counted(self, request, **kwargs):
        ran_through_strawberry.append(request.url.path)
        return await run(self, request, **kwargs)

    monkeypatch.setattr(GraphQLView, "run", counted)
    await tenant.gql(REFERRALS_WITH_RELATIONS, {"first": 5})
    await tenant.gql(HOT_CLICK, {"i": {"code": code, "deviceId": "d-1"}}, key=tenant.publishable_key)
    purchase = {"type": "PURCHASE", "customerExternalId": "bob", "idempotencyKey": "o-1", "referralCode": code}
    await tenant.gql(HOT_PURCHASE, {"i": purchase})
    assert ran_through_strawberry == []
    await tenant.client.get("/graphql", params={"query": "{ __typename }"})  # GET: Strawberry's way
    assert ran_through_strawberry == ["/graphql"]


def test_valid_documents_are_kept_up_to_their_number_and_nothing_else_is_kept():
    import strawberry

    from app.schema.execution import ValidDocuments

    @strawberry.type
    class Query:
        hello: str = "world"

    documents = ValidDocuments(strawberry.Schema(query=Query), [], max_tokens=50, size=2)
    first, second, third = "{ hello }", "{ h: hello }", "query Q { hello }"
    assert documents.get(first) is documents.get(first)  # parsed once
    kept_first = documents.get(first)
    documents.get(second)
    documents.get(first)  # used: the second is now the oldest
    documents.get(third)
    assert documents.get(first) is kept_first and len(documents._documents) == 2
    assert second not in documents._documents
    assert documents.get("{ nope }") is None and documents.get("{ hello") is None  # invalid, a syntax error
    assert documents.get("{ " + "h: hello " * 30 + "}") is None  # past max_tokens
    assert documents.get("{" * 10_000 + "}" * 10_000) is None  # hostile nesting: refused, never raised
    assert len(documents._documents) == 2
