"""The demo shop before `referral demo` has written its keys: every page says to run it first."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("method, path", [("GET", "/demo/"), ("POST", "/demo/signup"), ("POST", "/demo/buy")])
async def test_the_demo_shop_without_its_keys_says_to_run_the_demo_first(client, tmp_path, monkeypatch, method, path):
    monkeypatch.chdir(tmp_path)  # no .referral-demo-keys here
    response = await client.request(method, path, data={"email": "jane@example.com"})
    assert response.status_code == 503
    assert "referral demo" in response.text
