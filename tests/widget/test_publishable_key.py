"""Nothing personal is readable with the publishable key alone.

The publishable key sits in every page of the shop, so anyone has it. Walked like an attacker
would: every root operation of the schema is called with it, and every field reachable from
the few operations it may call is selected; no response may contain a customer's email, name,
external id, device, network or any other customer's numbers."""

from __future__ import annotations

import uuid
from typing import Any

import graphql

from app.schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.fraud import helpers as fraud
from tests.rewards.helpers import create_rule, credit_rule
from tests.scenarios import active_program, click
from tests.widget.helpers import open_session, signed, widget_secret

# What a browser holding only the publishable key may call (the widget's operations).
PUBLIC = {"trackClick", "referralCode", "widgetSession"}
# Referrer-facing operations: with the publishable key they need the widget's signed customer
# (tests/leads, tests/campaigns); probed below with a forged signature.
SIGNED_REFERRER = {"submitLead", "referrerLeads", "referrerCampaignLeaderboard", "promotionRulesStatus", "acceptPromotionRules"}
# A partner's own page (app/schema/partners.py): only with the signed customer id, like the widget.
PARTNER_SESSION = {"partnerReport", "partnerStatement", "applyAsPartner"}
# Answered for any valid key: no merchant data at all.
STATIC = {
    "webhookEventTypes": "the catalogue of event type names",
    # People's own credentials, whatever key comes with them: they answer from the password or
    # the one-time token, never from the key (tests/merchants/test_admins.py).
    "login": "an admin's email and password",
    "completeAdminSetup": "an admin's one-time setup token",
}
MAX_DEPTH = 4


def _schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(build_schema(make_settings()).as_str())


def _dummy(type_: Any) -> str:
    """A GraphQL literal of the given input type, valid but meaningless."""
    type_ = graphql.get_nullable_type(type_)
    if isinstance(type_, graphql.GraphQLList):
        return "[]"
    if isinstance(type_, graphql.GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, graphql.GraphQLInputObjectType):
        fields = [f"{name}: {_dummy(f.type)}" for name, f in type_.fields.items() if graphql.is_required_input_field(f)]
        return "{" + ", ".join(fields) + "}"
    return {
        "ID": f'"{uuid.uuid4()}"',
        "String": '"x"',
        "Int": "1",
        "BigInt": "1",
        "Boolean": "true",
        "Float": "1.0",
        "DateTime": '"2026-01-01T00:00:00Z"',
        "Date": '"2026-01-01"',
        "JSON": "{}",
    }.get(type_.name, '"x"')


def _arguments(field: graphql.GraphQLField, given: dict[str, str] | None = None) -> str:
    given = given or {}
    parts = [
        f"{name}: {given.get(name) or _dummy(arg.type)}"
        for name, arg in field.args.items()
        if graphql.is_required_argument(arg) or name in given
    ]
    return f"({', '.join(parts)})" if parts else ""


def _paths(type_: Any, depth: int = 1) -> list[str]:
    """One selection per field path of `type_` down to MAX_DEPTH: every field gets selected,
    each in a document of its own (fields needing arguments get dummy ones)."""
    type_ = graphql.get_named_type(type_)
    if not isinstance(type_, graphql.GraphQLObjectType):
        return [""]
    if depth >= MAX_DEPTH:
        return ["{ __typename }"]
    return [
        f"{{ {name}{_arguments(field)} {inner} }}".replace("  ", " ")
        for name, field in type_.fields.items()
        for inner in _paths(field.type, depth + 1)
    ]


def _operations(kind: str, name: str, field: graphql.GraphQLField, given: dict[str, str]) -> list[str]:
    return [f"{kind} {{ {name}{_arguments(field, given)} {path} }}" for path in _paths(field.type)]


def _probe(kind: str, name: str, field: graphql.GraphQLField) -> str:
    named = graphql.get_named_type(field.type)
    selection = "{ __typename }" if isinstance(named, graphql.GraphQLObjectType) else ""
    return f"{kind} {{ {name}{_arguments(field)} {selection} }}"


async def test_every_other_operation_is_forbidden_with_the_publishable_key(tenant):
    schema = _schema()
    checked = 0
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        for name, field in root.fields.items():
            if name in PUBLIC or name in STATIC or name in SIGNED_REFERRER or name in PARTNER_SESSION:
                continue
            body = await tenant.raw(_probe(kind, name, field), key=tenant.publishable_key)
            assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["FORBIDDEN"], (name, body)
            checked += 1
    assert checked > 50


async def test_what_the_publishable_key_can_reach_holds_nothing_personal(tenant):
    program = await active_program(tenant)
    await create_rule(tenant, program["id"], **credit_rule())
    secret = await widget_secret(tenant)
    jane = await tenant.gql(
        'mutation { upsertCustomer(input: {externalId: "jane-4711", email: "jane.doe@mail.example", name: "Jane Doe"}) '
        "{ userErrors { code } } }"
    )
    assert jane["upsertCustomer"]["userErrors"] == []
    code = (await open_session(tenant, signed(secret, "jane-4711"), deviceId="dev-jane-77"))["session"]["code"]
    tracked = await click(tenant, code, device_id="dev-bob-88")
    await fraud.record(
        tenant,
        type="SIGNUP",
        customerExternalId="bob-0815",
        idempotencyKey="s-bob",
        attributionToken=tracked["attributionToken"],
        context={"email": "bob.roe@mail.example", "ip": "198.51.100.23", "paymentFingerprint": "card-99"},
        customerName="Bob Roe",
    )
    await fraud.purchase(tenant, "bob-0815", "order-1")
    personal = [
        "jane-4711",
        "jane.doe@mail.example",
        "Jane Doe",
        "dev-jane-77",
        "bob-0815",
        "bob.roe@mail.example",
        "Bob Roe",
        "198.51.100.23",
        "card-99",
        "dev-bob-88",
        tracked["attributionToken"],
    ]

    schema = _schema()
    mutation, query = schema.mutation_type.fields, schema.query_type.fields
    calls = {
        "referralCode": _operations("query", "referralCode", query["referralCode"], {"code": f'"{code}"'}),
        "trackClick": _operations(
            "mutation", "trackClick", mutation["trackClick"], {"input": f'{{code: "{code}", deviceId: "dev-stranger"}}'}
        ),
        "widgetSession, no signature": _operations(
            "mutation",
            "widgetSession",
            mutation["widgetSession"],
            {"customerExternalId": '"jane-4711"', "timestamp": "1", "signature": '""'},
        ),
        "widgetSession, a forged signature": _operations(
            "mutation",
            "widgetSession",
            mutation["widgetSession"],
            {"customerExternalId": '"jane-4711"', "timestamp": "1", "signature": f'"{"0" * 64}"'},
        ),
        **{
            f"{name}, a forged signature": _operations(
                "mutation" if name in mutation else "query",
                name,
                (mutation | query)[name],
                {
                    "customerExternalId": '"jane-4711"',
                    "timestamp": "1",
                    "signature": f'"{"0" * 64}"',
                    "programId": f'"{program["id"]}"',
                }
                if name != "submitLead"
                else {
                    "input": f'{{programId: "{program["id"]}", customerExternalId: "jane-4711", company: "x", timestamp: 1, '
                    f'signature: "{"0" * 64}"}}'
                },
            )
            for name in sorted(SIGNED_REFERRER)
        },
    }
    forged = f'{{customerExternalId: "jane-4711", timestamp: 1, signature: "{"0" * 64}"}}'
    for name in sorted(PARTNER_SESSION):
        root = query if name in query else mutation
        kind = "query" if name in query else "mutation"
        calls[f"{name}, no signature"] = _operations(kind, name, root[name], {"programId": f'"{program["id"]}"'})
        calls[f"{name}, a forged signature"] = _operations(
            kind, name, root[name], {"programId": f'"{program["id"]}"', "signature": forged}
        )
    for name, documents in calls.items():
        forbidden = set()
        for document in documents:
            response = await tenant.client.post(
                "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {tenant.publishable_key}"}
            )
            assert response.status_code == 200, (document, response.text)
            for value in personal:
                assert value not in response.text, (document, value, response.text)
            body = response.json()
            forbidden |= {e["path"][-1] for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"}
        assert len(documents) > 10 or name.split(",")[0] in SIGNED_REFERRER  # (these return small types)
        if name in ("referralCode", "trackClick"):
            assert "customer" in forbidden, name  # the referrer is refused, not merely empty
