"""GraphQL over HTTP: `application/graphql-response+json` as the spec describes it (4xx and no
`data` for a request that never ran), `application/json` as before, errors as GraphQL error
documents, and GraphiQL from local files with subresource integrity."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from app.schema.view import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_URL, response_media_type

GRJ = "application/graphql-response+json"


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRJ, GRJ),
        (f"{GRJ}, application/json;q=0.9", GRJ),
        (f"application/json, {GRJ};q=0.5", "application/json"),
        (f"application/json;q=0.5, {GRJ}", GRJ),
        (f"{GRJ};q=0", "application/json"),
        ("text/html", "application/json"),
    ],
)
def test_the_answer_media_type_follows_the_clients_preference(accept, expected):
    assert response_media_type(accept) == expected


async def send(client, accept: str | None, body: dict):
    headers = {"accept": accept} if accept else {}
    return await client.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{"},  # syntax
        {"query": "{ noSuchField }"},  # validation
        {"query": "query($id: ID!) { viewer(id: $id) { id } }", "variables": {"id": None}},  # variables (and unknown arg)
        {"query": "query($n: Int!) { __typename }", "variables": {}},  # a variable that is required and missing
    ],
)
async def test_a_request_that_never_ran_is_a_400_without_data_for_graphql_response_json(client, body):
    response = await send(client, GRJ, body)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRJ)
    assert "data" not in response.json() and response.json()["errors"]


@pytest.mark.parametrize("body", [{"query": "{"}, {"query": "{ noSuchField }"}])
async def test_the_same_request_is_a_200_with_null_data_for_application_json(client, body):
    response = await send(client, "application/json", body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] is None and response.json()["errors"]


async def test_a_request_that_ran_is_a_200_in_both_media_types_even_with_field_errors(client):
    for accept in (GRJ, "application/json"):
        response = await send(client, accept, {"query": "{ __typename viewer { id } }"})  # viewer needs a key

        assert response.status_code == 200
        assert response.json()["data"] is None  # viewer is non-null: the error reaches the root
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_mutation_over_get_and_an_unknown_method_are_4xx_graphql_errors(client):
    over_get = await client.get("/graphql", params={"query": "mutation { __typename }"}, headers={"accept": GRJ})
    put = await client.put("/graphql", json={"query": "{ __typename }"})

    assert over_get.status_code == 400 and over_get.headers["content-type"].startswith(GRJ)
    assert over_get.json()["errors"][0]["message"]
    assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
    assert put.json()["errors"][0]["message"]


async def test_graphiql_loads_only_local_assets_whose_integrity_matches(client):
    page = await client.get("/graphql", headers={"accept": "text/html"})

    assert page.status_code == 200
    assert not re.search(r'(?:src|href)="https?://', page.text)
    assets = re.findall(r'(?:src|href)="(/graphiql/static/[^"]+)"\s+integrity="(sha384-[^"]+)"', page.text)
    assert len(assets) == 7
    for url, integrity in assets:
        served = await client.get(url)
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
        assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(served.content).digest()).decode()
        assert (GRAPHIQL_ASSETS / url.removeprefix(GRAPHIQL_ASSETS_URL + "/")).read_bytes() == served.content


async def test_the_static_files_stay_inside_their_folder(client):
    for path in ("/graphiql/static/../../config.py", "/graphiql/static/%2e%2e/%2e%2e/config.py"):
        assert (await client.get(path)).status_code == 404
