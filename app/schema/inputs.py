"""Input objects built from a plan made once per type, not worked out again per request.

Strawberry turns an input value (`RecordActionInput`...) into its class field by field: for
each field it converts the name to camelCase, resolves the field's annotation and asks whether
the type is a scalar, on every request. That was a fifth of the GraphQL layer's CPU of a
`recordAction`. Strawberry lets a type build its own value (`from_input`, the hook its pydantic
integration uses); `build_inputs_from_plans` gives every input type of the schema one that
knows, per field, the GraphQL name, the Python name and whether the value is taken as it is (a
scalar or an enum, which graphql-core has already coerced) or converted by Strawberry
(`InputContext.convert`: nested inputs, lists of inputs, IDs of relay). What the class
receives is what Strawberry would pass it: explicit values, None for a field the client left
out that has no default, nothing for one that has (the class's default then applies).

A type with a `Maybe` field keeps Strawberry's own conversion: its nulls are checked while
the document is validated, which a type with `from_input` skips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryObjectDefinition, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

# How a field's given value becomes the Python value: None, taken as it is; else a function
# of (value, the input's context, the field's GraphQL name).
_Convert = Callable[[Any, InputContext, str], Any] | None


class _FromPlan:
    """The `from_input` of one input type."""

    def __init__(self) -> None:
        self.fields: tuple[tuple[str, str, _Convert], ...] = ()  # GraphQL name, Python name, conversion
        self.left_out: dict[str, None] = {}  # fields without a default: None when left out

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        kwargs: dict[str, Any] = dict(self.left_out)
        for graphql_name, python_name, convert in self.fields:
            if graphql_name in value:
                given = value[graphql_name]
                kwargs[python_name] = given if convert is None or given is None else convert(given, context, graphql_name)
        return cls(**kwargs)


def build_inputs_from_plans(schema: strawberry.Schema) -> None:
    """Give each input type of `schema` a `from_input` made from its plan (see the module)."""
    registry = schema.schema_converter.scalar_registry
    name_of = schema.config.name_converter.from_field
    plans: dict[type, _FromPlan] = {}
    definitions: list[StrawberryObjectDefinition] = []
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if (
            isinstance(definition, StrawberryObjectDefinition)
            and definition.is_input
            and definition.from_input is None
            and not any(
                isinstance(field.resolve_type(type_definition=definition), StrawberryMaybe) for field in definition.fields
            )
        ):
            plans[definition.origin] = _FromPlan()
            definitions.append(definition)
    for definition in definitions:  # plans of nested inputs are known (empty yet) when a field needs one
        plan = plans[definition.origin]
        fields: list[tuple[str, str, _Convert]] = []
        left_out: dict[str, None] = {}
        for field in definition.fields:
            field_type = field.resolve_type(type_definition=definition)
            inner = field_type.of_type if isinstance(field_type, StrawberryOptional) else field_type
            fields.append((name_of(field), field.python_name, _conversion(inner, field_type, registry, plans)))
            if field.default_value is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                left_out[field.python_name] = None
        plan.fields, plan.left_out = tuple(fields), left_out
    for definition in definitions:
        definition.from_input = plans[definition.origin]


def _conversion(inner: Any, field_type: Any, registry: Mapping[object, Any], plans: dict[type, _FromPlan]) -> _Convert:
    leaf = is_scalar(inner, registry) or isinstance(inner, StrawberryEnumDefinition) or has_enum_definition(inner)
    if leaf and inner is not GlobalID and not isinstance(inner, StrawberryList):
        return None  # graphql-core's coerced value is the Python value; Strawberry returns it unchanged
    nested = plans.get(inner) if isinstance(inner, type) else None
    if nested is not None:  # an input of ours: its plan, with the path Strawberry would give it

        def build_nested(value: Any, context: InputContext, name: str) -> Any:
            return nested(inner, value, dataclasses.replace(context, path=(*context.path, name)))

        return build_nested
    return lambda value, context, name: context.convert(value, field_type, name)  # lists, relay IDs...
