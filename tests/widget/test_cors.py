"""Browser access (CORS): only publishable-key calls, only from the key's merchant's allowed
origins, never with credentials, never for a secret key."""

from __future__ import annotations

import pytest

from tests.widget.helpers import allow_origins

SHOP = "https://shop.example"
TRACK = {"query": 'mutation { trackClick(input: {code: "NOPE1234"}) { userErrors { code } } }'}
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-max-age",
)


def no_cors(response) -> bool:
    return not any(name in response.headers for name in CORS_HEADERS)


async def preflight(client, key: str | None, origin: str = SHOP, method: str = "POST"):
    return await client.options(
        "/graphql" + (f"?pk={key}" if key else ""),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


async def call(client, key: str | None, origin: str = SHOP):
    headers = {"Origin": origin, **({"Authorization": f"Bearer {key}"} if key else {})}
    return await client.post("/graphql", json=TRACK, headers=headers)


async def test_a_preflight_from_an_allowed_origin_gets_the_minimal_headers_and_no_credentials(client, tenant):
    await allow_origins(tenant, SHOP)
    response = await preflight(client, tenant.publishable_key)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://shop.example",
        "https://shop.example:8443",
        "https://eu.shop.example",
        "null",
    ],
)
async def test_a_preflight_from_any_other_origin_gets_no_cors_headers(client, tenant, origin):
    await allow_origins(tenant, SHOP)
    response = await preflight(client, tenant.publishable_key, origin)
    assert response.status_code == 403 and no_cors(response)


async def test_a_preflight_is_judged_by_the_named_publishable_keys_merchant(client, tenant, other_tenant):
    await allow_origins(other_tenant, SHOP)  # B allows the shop; A does not
    for key in (tenant.publishable_key, None, "pk_unknown", tenant.secret_key, other_tenant.secret_key):
        response = await preflight(client, key)
        assert response.status_code == 403 and no_cors(response), key
    assert (await preflight(client, other_tenant.publishable_key)).status_code == 204


async def test_a_preflight_for_another_method_is_refused(client, tenant):
    await allow_origins(tenant, SHOP)
    for method in ("GET", "PUT", "DELETE"):
        response = await preflight(client, tenant.publishable_key, method=method)
        assert response.status_code == 403 and no_cors(response)


async def test_a_publishable_key_call_from_an_allowed_origin_is_readable_by_the_page(client, tenant):
    await allow_origins(tenant, "https://*.shop.example")
    response = await call(client, tenant.publishable_key, "https://eu.shop.example")
    assert response.status_code == 200
    assert response.json()["data"]["trackClick"]["userErrors"] == [{"code": "CODE_NOT_FOUND"}]
    assert response.headers["access-control-allow-origin"] == "https://eu.shop.example"
    assert "access-control-allow-credentials" not in response.headers
    assert "Origin" in response.headers["vary"]


async def test_secret_keys_calls_without_a_key_and_other_origins_never_get_cors_headers(client, tenant, other_tenant):
    await allow_origins(tenant, SHOP)
    await allow_origins(other_tenant, "https://other-shop.example")
    for key, origin in (
        (tenant.secret_key, SHOP),  # a secret key must never be usable from a browser
        (None, SHOP),
        ("pk_not_a_real_key", SHOP),
        (tenant.publishable_key, "https://other-shop.example"),  # B's origin, A's key
        (other_tenant.publishable_key, SHOP),  # A's origin, B's key
    ):
        response = await call(client, key, origin)
        assert no_cors(response), (key, origin)


async def test_a_revoked_publishable_key_loses_browser_access(client, tenant):
    await allow_origins(tenant, SHOP)
    keys = await tenant.gql("{ apiKeys { id kind } }")
    [publishable] = [k["id"] for k in keys["apiKeys"] if k["kind"] == "PUBLISHABLE"]
    revoked = await tenant.gql("mutation($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }", {"id": publishable})
    assert revoked["revokeApiKey"]["userErrors"] == []
    assert no_cors(await call(client, tenant.publishable_key))
    assert (await preflight(client, tenant.publishable_key)).status_code == 403


async def test_removing_an_origin_takes_effect_at_once(client, tenant):
    await allow_origins(tenant, SHOP, "https://old-shop.example")
    assert (await preflight(client, tenant.publishable_key, "https://old-shop.example")).status_code == 204
    await allow_origins(tenant, SHOP)
    assert (await preflight(client, tenant.publishable_key, "https://old-shop.example")).status_code == 403
    assert no_cors(await call(client, tenant.publishable_key, "https://old-shop.example"))


async def test_same_origin_and_server_calls_are_untouched(client, tenant):
    response = await client.post("/graphql", json=TRACK, headers={"Authorization": f"Bearer {tenant.publishable_key}"})
    assert response.status_code == 200 and no_cors(response) and "vary" not in response.headers
    assert (await client.options("/graphql")).status_code == 405  # not a preflight: nothing to answer
