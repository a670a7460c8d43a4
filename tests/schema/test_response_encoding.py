"""Responses are encoded by orjson; what it refuses (a lone surrogate, which no UTF-8 body can
carry) still leaves as valid JSON with the escape, never as a 500."""

from __future__ import annotations

import json

from app.config import Settings
from app.schema.schema import build_schema
from app.schema.view import GraphQLView


def view() -> GraphQLView:
    settings = Settings(database_url="sqlite+aiosqlite://", app_env="test")
    return GraphQLView(build_schema(settings), settings)


def test_a_response_is_compact_utf8_json():
    body = view().encode_json({"data": {"name": "مریم", "amount": 2**63 - 1}})

    assert body == '{"data":{"name":"مریم","amount":9223372036854775807}}'.encode()


def test_a_lone_surrogate_leaves_escaped():
    body = view().encode_json({"data": {"note": "a\ud800b"}})

    assert json.loads(body) == {"data": {"note": "a\ud800b"}}
    body.decode("utf-8")  # the body itself is valid UTF-8
