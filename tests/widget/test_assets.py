"""The widget is served from the committed bundle: a stable URL revalidated every 5 minutes, and
an immutable copy under its content hash with a Subresource Integrity hash to pin it."""

from __future__ import annotations

import base64
import hashlib

import pytest

from app.widget.assets import BUNDLE_DIR


@pytest.mark.parametrize("name", ["referral.js", "referral.mjs"])
async def test_the_current_bundle_is_served_from_the_committed_build(client, name):
    response = await client.get(f"/sdk/v1/{name}")
    assert response.status_code == 200
    assert response.content == (BUNDLE_DIR / name).read_bytes()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert response.headers["access-control-allow-origin"] == "*"  # a public file: modules and integrity need it
    assert response.headers["x-content-type-options"] == "nosniff"
    again = await client.get(f"/sdk/v1/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_hashed_copy_is_immutable_and_matches_its_integrity_hash(client):
    manifest = (await client.get("/sdk/v1/manifest.json")).json()
    assert set(manifest) == {"referral.js", "referral.mjs"}
    for name, entry in manifest.items():
        body = (BUNDLE_DIR / name).read_bytes()
        stem, _, ext = name.partition(".")
        assert entry["url"] == f"/sdk/v1/{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"
        response = await client.get(entry["url"])
        assert response.status_code == 200 and response.content == body
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert entry["integrity"] == "sha384-" + base64.b64encode(hashlib.sha384(response.content).digest()).decode()


@pytest.mark.parametrize(
    "path",
    [
        "/sdk/v1/referral.000000000000.js",
        "/sdk/v1/other.js",
        "/sdk/v1/..%2F..%2Fapp%2Fmain.py",
        "/sdk/v1/package.json",
        "/sdk/v2/referral.js",
    ],
)
async def test_anything_else_is_not_found(client, path):
    assert (await client.get(path)).status_code == 404
