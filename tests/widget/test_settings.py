"""The merchant's widget settings over GraphQL: typed errors for bad origins, texts and
colours, nothing half-written, an audit trail, and none of it for a publishable key."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.db import create_session_factory
from app.widget.models import WidgetSettings
from tests.scenarios import active_program
from tests.widget.helpers import ROTATE_SECRET, SET_ORIGINS, SET_PROGRAM_WIDGET, allow_origins


async def test_origins_are_normalized_deduplicated_and_audited(tenant):
    settings = await allow_origins(tenant, "https://Shop.Example/", "https://shop.example", "https://*.shop.example")
    assert settings["allowedOrigins"] == ["https://shop.example", "https://*.shop.example"]
    read = await tenant.gql("{ widgetSettings { allowedOrigins secretConfigured } }")
    assert read["widgetSettings"] == {
        "allowedOrigins": ["https://shop.example", "https://*.shop.example"],
        "secretConfigured": False,
    }
    await allow_origins(tenant, "https://shop.example")
    log = await tenant.gql("{ auditLog(first: 10) { edges { node { action details } } } }")
    assert [e["node"] for e in log["auditLog"]["edges"]] == [
        {
            "action": "widget.origins_changed",
            "details": {"before": ["https://shop.example", "https://*.shop.example"], "after": ["https://shop.example"]},
        },
        {
            "action": "widget.origins_changed",
            "details": {"before": [], "after": ["https://shop.example", "https://*.shop.example"]},
        },
    ]


@pytest.mark.parametrize(
    "origins, field, code",
    [
        (["https://shop.example", "https://shop.example/checkout"], "origins[1]", "INVALID_ORIGIN"),
        (["*"], "origins[0]", "INVALID_ORIGIN"),
        (["https://*.com"], "origins[0]", "INVALID_ORIGIN"),
        ([""], "origins[0]", "REQUIRED"),
        ([f"https://shop{i}.example" for i in range(51)], "origins", "TOO_MANY"),
    ],
)
async def test_a_bad_origin_list_is_refused_whole(tenant, origins, field, code):
    await allow_origins(tenant, "https://kept.example")
    data = await tenant.gql(SET_ORIGINS, {"origins": origins})
    payload = data["setWidgetAllowedOrigins"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)] and payload["settings"] is None
    read = await tenant.gql("{ widgetSettings { allowedOrigins } }")
    assert read["widgetSettings"]["allowedOrigins"] == ["https://kept.example"]


@pytest.mark.parametrize("hours", [-1, 169])
async def test_an_overlap_beyond_a_week_is_refused(tenant, hours):
    data = await tenant.gql(ROTATE_SECRET, {"overlapHours": hours})
    payload = data["rotateWidgetSecret"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("overlapHours", "INVALID_INPUT")]
    assert payload["secret"] is None
    assert (await tenant.gql("{ widgetSettings { secretConfigured } }"))["widgetSettings"]["secretConfigured"] is False


@pytest.mark.parametrize(
    "widget, field, code",
    [
        ({"texts": [{"locale": "english", "title": "Hi"}]}, "texts[0].locale", "INVALID_INPUT"),
        ({"texts": [{"locale": "en"}, {"locale": "en"}]}, "texts[1].locale", "INVALID_INPUT"),
        ({"texts": [{"locale": "en", "title": "x" * 81}]}, "texts[0].title", "TOO_LONG"),
        ({"texts": [{"locale": "en", "shareMessage": "a\x00b"}]}, "texts[0].shareMessage", "INVALID_INPUT"),
        ({"colors": {"primary": "green"}}, "colors.primary", "INVALID_INPUT"),
        ({"colors": {"background": "#12345"}}, "colors.background", "INVALID_INPUT"),
        ({"texts": [{"locale": "a" + chr(97 + i % 26) + chr(97 + i // 26)} for i in range(31)]}, "texts", "TOO_MANY"),
    ],
)
async def test_bad_widget_texts_and_colours_get_typed_errors(tenant, widget, field, code):
    program = await active_program(tenant)
    data = await tenant.gql(SET_PROGRAM_WIDGET, {"programId": program["id"], "input": widget})
    payload = data["setProgramWidget"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)] and payload["widget"] is None


async def test_program_widget_texts_replace_the_previous_ones(tenant):
    program = await active_program(tenant)
    first = {"texts": [{"locale": "en", "title": "Old"}, {"locale": "fa", "title": "قدیمی"}], "colors": {"primary": "#123"}}
    assert (await tenant.gql(SET_PROGRAM_WIDGET, {"programId": program["id"], "input": first}))["setProgramWidget"][
        "userErrors"
    ] == []
    second = {"texts": [{"locale": "pt-BR", "title": "Indique", "description": "Ganhe R$10"}]}
    data = await tenant.gql(SET_PROGRAM_WIDGET, {"programId": program["id"], "input": second})
    expected = {
        "id": program["id"],
        "name": program["name"],
        "texts": [{"locale": "pt-BR", "title": "Indique", "description": "Ganhe R$10", "shareMessage": None}],
        "colors": {"primary": None, "background": None, "text": None},
    }
    assert data["setProgramWidget"]["widget"] == expected
    read = await tenant.gql(
        "query($id: ID!) { programWidget(programId: $id) { id name texts { locale title description shareMessage } "
        "colors { primary background text } } }",
        {"id": program["id"]},
    )
    assert read["programWidget"] == expected


async def test_a_publishable_key_cannot_read_or_change_widget_settings(tenant):
    program = await active_program(tenant)
    for document, variables in (
        ("{ widgetSettings { allowedOrigins } }", {}),
        (SET_ORIGINS, {"origins": ["https://evil.example"]}),
        (ROTATE_SECRET, {"overlapHours": 0}),
        (SET_PROGRAM_WIDGET, {"programId": program["id"], "input": {"texts": []}}),
        ("query($id: ID!) { programWidget(programId: $id) { id } }", {"id": program["id"]}),
    ):
        body = await tenant.raw(document, variables, key=tenant.publishable_key)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert (await tenant.gql("{ widgetSettings { allowedOrigins secretConfigured } }"))["widgetSettings"] == {
        "allowedOrigins": [],
        "secretConfigured": False,
    }


@pytest.mark.postgresql_only
async def test_concurrent_first_changes_make_one_settings_row_and_one_current_secret(tenant, backend):
    results = await asyncio.gather(
        *(tenant.gql(ROTATE_SECRET, {"overlapHours": 1}) for _ in range(5)),
        *(tenant.gql(SET_ORIGINS, {"origins": [f"https://shop{i}.example"]}) for i in range(5)),
    )
    assert all(not next(iter(r.values()))["userErrors"] for r in results), results
    async with create_session_factory(tenant.engine)() as session:
        assert await session.scalar(select(func.count()).select_from(WidgetSettings)) == 1
    secrets = [r["rotateWidgetSecret"]["secret"] for r in results if "rotateWidgetSecret" in r]
    current = (await tenant.gql("{ widgetSettings { secretLast4 } }"))["widgetSettings"]["secretLast4"]
    assert current in {secret[-4:] for secret in secrets}
