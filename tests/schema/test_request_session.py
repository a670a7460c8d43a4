"""One request, one database session that outlives every resolver: a field that fails next
to siblings still loading is a field error, never a 500, and a committed mutation always gets
its answer (graphql-core cancels the siblings of a failed field; those must not break the
session half-way through a statement)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests import graphql_ops as ops
from tests.scenarios import active_program, code_for

CUSTOMER_WITH_A_FAILING_LIST = """
{ customer(externalId: "jane") { referralCodes { code } referrals(first: -1) { nodes { id } } } }"""

UPSERT_THEN_A_FAILING_LIST = """
mutation { upsertCustomer(input: {externalId: "jane", name: "Jane Updated"}) {
  customer { referralCodes { code } referrals(first: -1) { nodes { id } } } } }"""


@pytest.fixture
async def jane_code(tenant) -> str:
    program = await active_program(tenant)
    return (await code_for(tenant, program["id"], "jane"))["code"]


async def post(tenant, document: str, key: str):
    return await tenant.client.post("/graphql", json={"query": document}, headers={"Authorization": f"Bearer {key}"})


async def test_a_failing_field_next_to_a_loading_sibling_is_a_field_error(tenant, jane_code, caplog):
    caplog.set_level(logging.WARNING)
    response = await post(tenant, CUSTOMER_WITH_A_FAILING_LIST, tenant.secret_key)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"customer": None}
    [error] = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["customer", "referrals"], "INVALID_INPUT")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_forbidden_field_with_a_publishable_key_next_to_a_loading_sibling(tenant, jane_code):
    document = '{ referralCode(code: "%s") { shareUrl customer { externalId } } }' % jane_code
    response = await post(tenant, document, tenant.publishable_key)

    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["referralCode", "customer"], "FORBIDDEN")


async def test_a_committed_mutation_answers_even_when_a_nested_field_fails(tenant, jane_code):
    response = await post(tenant, UPSERT_THEN_A_FAILING_LIST, tenant.secret_key)

    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert error["path"] == ["upsertCustomer", "customer", "referrals"]
    after = await tenant.gql('{ customer(externalId: "jane") { name } }')
    assert after["customer"]["name"] == "Jane Updated"  # the write happened, and the client was told


async def test_many_such_requests_at_once_leave_the_pool_healthy(tenant, jane_code):
    documents = [CUSTOMER_WITH_A_FAILING_LIST, UPSERT_THEN_A_FAILING_LIST] * 15
    responses = await asyncio.gather(*(post(tenant, d, tenant.secret_key) for d in documents))

    assert [r.status_code for r in responses] == [200] * len(documents)
    data = await tenant.gql(ops.UPSERT_CUSTOMER, {"input": {"externalId": "bob"}})
    assert data["upsertCustomer"]["userErrors"] == []
