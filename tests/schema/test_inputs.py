"""Input objects are built from plans made once per type (app/schema/inputs.py): every input
type of the schema must come out exactly as Strawberry's own conversion builds it, with every
field given and with only the required ones (the others then take their defaults), so an
upgrade of Strawberry that changes its conversion shows here."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    coerce_input_value,
)
from strawberry.types.arguments import convert_argument

from app.config import Settings
from app.schema.inputs import build_inputs_from_plans
from app.schema.schema import build_schema

SCHEMA = build_schema(Settings())
SAMPLES = {  # a JSON value per scalar, as a client sends it in the variables
    "String": "some text",
    "ID": "4f9e0b1c-1111-4222-8333-944455556666",
    "Int": 7,
    "Float": 2.5,
    "Boolean": True,
    "BigInt": 12345,
    "DateTime": "2026-11-29T12:00:00+00:00",
    "Date": "2026-11-29",
    "JSON": {"plan": ["a", 1]},
}


def _input_types() -> list[tuple[GraphQLInputObjectType, type]]:
    found = []
    for concrete in SCHEMA.schema_converter.type_map.values():
        definition = concrete.definition
        if getattr(definition, "is_input", False):
            found.append((concrete.implementation, definition.origin))
    return sorted(found, key=lambda pair: pair[0].name)


def _sample(type_: Any, *, every_field: bool) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type, every_field=every_field)
    if isinstance(type_, GraphQLList):
        return [_sample(type_.of_type, every_field=every_field)] * 2
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return SAMPLES[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    return {
        name: _sample(field.type, every_field=every_field)
        for name, field in type_.fields.items()
        if every_field or (isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined)
    }


def _built_both_ways(graphql_type: GraphQLInputObjectType, origin: type, value: Any) -> tuple[Any, Any]:
    coerced = coerce_input_value(value, graphql_type)
    registry, config = SCHEMA.schema_converter.scalar_registry, SCHEMA.config
    planned = convert_argument(coerced, origin, registry, config)
    definitions = [t.__strawberry_definition__ for _, t in _input_types()]
    plans = [definition.from_input for definition in definitions]
    try:
        for definition in definitions:
            definition.from_input = None
        strawberrys = convert_argument(coerced, origin, registry, config)
    finally:
        for definition, plan in zip(definitions, plans, strict=True):
            definition.from_input = plan
    return planned, strawberrys


def test_every_input_type_of_the_schema_is_built_from_a_plan():
    types = _input_types()
    assert len(types) >= 30
    without = [t.name for t, origin in types if origin.__strawberry_definition__.from_input is None]
    assert without == []
    build_inputs_from_plans(SCHEMA)  # a second schema built in the same process changes nothing
    assert all(origin.__strawberry_definition__.from_input is not None for _, origin in types)


@pytest.mark.parametrize("every_field", [True, False], ids=["every field", "required fields only"])
@pytest.mark.parametrize(("graphql_type", "origin"), _input_types(), ids=lambda v: getattr(v, "name", ""))
def test_an_input_comes_out_as_strawberry_builds_it(graphql_type, origin, every_field):
    planned, strawberrys = _built_both_ways(graphql_type, origin, _sample(graphql_type, every_field=every_field))
    assert type(planned) is origin
    assert planned == strawberrys


def test_a_nested_input_and_explicit_nulls():
    from app.schema.referrals import ActionContextInput, AddressInput, RecordActionInput

    graphql_type = SCHEMA.schema_converter.type_map["RecordActionInput"].implementation
    value = {
        "type": "PURCHASE",
        "customerExternalId": "c-1",
        "idempotencyKey": "order-1",
        "amount": None,
        "context": {"ip": "203.0.113.9", "shippingAddress": {"line1": "1 Main St", "country": "DE"}, "email": None},
    }
    planned, strawberrys = _built_both_ways(graphql_type, RecordActionInput, value)
    assert planned == strawberrys
    assert planned.amount is None and planned.currency is None
    assert isinstance(planned.context, ActionContextInput) and planned.context.ip == "203.0.113.9"
    assert planned.context.shipping_address == AddressInput(line1="1 Main St", country="DE")
