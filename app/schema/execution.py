"""How the schema executes an operation: graphql-core's executor, with the plain columns of an
object (`id`, `status`, `externalId`...) read inline.

graphql-core executes every field on its own: a path, a resolve-info object, the resolver,
then the non-null, list and leaf completion steps, for each field of each object. A page of
50 referrals is some 450 fields, most of them attributes read off an object. A plain field
(no arguments, a scalar or enum type, no @defer, and strawberry's default resolver or a
method of the object alone: `Customer.email(self)`, which opens a sealed column) is read here
in the loop over the selection instead: the same resolver, the same `coerce_output_value`.
Every other field (a resolver taking `info`, an object, a list) goes through `execute_field`
as before, and so does a plain field whose value is missing where it may not be, or cannot
be coerced: graphql-core then reports the error exactly as it always did (a plain field only
reads its object, so reading one twice changes nothing; keep such methods so).

A resolver of our own that takes no arguments (`Referral.referrer(self, info)`) and has no
field extension (no permission class) is called directly (`call_resolvers_directly`): the
same function with the same `self` and `Info`, without Strawberry's generic path for it
(arguments converted, field extensions chained, five calls deep), which cost as much as the
resolver on a page's 100 `referrer`/`referee` fields.

`execute_fields` below is graphql-core's own loop (graphql/execution/executor.py) with that one
branch added. tests/schema/test_execution.py runs hostile values through both and compares
the answers and errors, so an upgrade that changes the loop shows there.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from graphql import (
    DocumentNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    Undefined,
    is_leaf_type,
    is_non_null_type,
    parse,
    specified_rules,
    validate,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types.field import StrawberryField

if TYPE_CHECKING:
    import strawberry

# How to read a plain field: its resolver, its type's coerce_output_value, whether non-null.
_Plain = tuple[Any, Any, bool]
# Per field of a selection: response name, graphql-core's field details, the plain reading or None.
_Plan = tuple[tuple[str, Any, _Plain | None], ...]
_NOT_READ = object()


class PlainFieldsInline(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Freed as it ends: graphql-core's helpers for resolvers hold two of the executor's bound
        # methods, and the executor holds the helpers. That cycle kept every request's executor,
        # context, session and results alive until the garbage collector's next pass over the
        # older generation, which then freed some 60 requests' objects in one 20-60 ms pause
        # with every request in flight stopped. Held weakly, the executor is freed by its last
        # reference like the rest (tests/test_long_running_process.py looks at what the collector finds).
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_held_weakly(self.gather_async_work), track=_held_weakly(self.track_async_work)
        )
        # id(grouped field set) -> (that set, its plan). graphql-core memoises the collected
        # subfields of a selection for the execution, so the 50 nodes of a page share one
        # grouped field set and one plan; the set is kept to check the id.
        self._plans: dict[int, tuple[Any, _Plan]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        known = self._plans.get(id(grouped_field_set))
        if known is None or known[0] is not grouped_field_set:
            known = (grouped_field_set, self._plan(parent_type, grouped_field_set))
            self._plans[id(grouped_field_set)] = known
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plain in known[1]:
                if plain is not None:
                    value = _read(plain, source_value)
                    if value is not _NOT_READ:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> _Plan:
        return tuple(
            (response_name, field_details_list, self._plain(parent_type, field_details_list))
            for response_name, field_details_list in grouped_field_set.items()
        )

    def _plain(self, parent_type: GraphQLObjectType, field_details_list: Any) -> _Plain | None:
        if any(details.defer_usage is not None for details in field_details_list):
            return None
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        if field_def is None or field_def.args or node.arguments:
            return None
        resolve = field_def.resolve
        if resolve is None:
            return None
        if not (getattr(resolve, "_is_default", False) or getattr(resolve, "_reads_its_object_only", False)):
            return None  # `_is_default`: strawberry's marker of its attribute reader
        middleware = self.middleware_manager
        if middleware is not None and middleware.get_field_resolver(resolve) is not resolve:
            return None  # an extension that wraps every field's resolution (none of ours does)
        non_null = is_non_null_type(field_def.type)
        leaf = field_def.type.of_type if non_null else field_def.type  # type: ignore[union-attr]
        if not is_leaf_type(leaf):
            return None
        return resolve, leaf.coerce_output_value, non_null


def _held_weakly(method: Any) -> Callable[..., Any]:
    weak = weakref.WeakMethod(method)

    def call(*args: Any, **kwargs: Any) -> Any:
        return cast(Any, weak())(*args, **kwargs)

    return call


def _read(plain: _Plain, source: Any) -> Any:
    """The field's answer, or _NOT_READ where graphql-core must report an error."""
    resolve, coerce, non_null = plain
    try:
        value = resolve(source, None)
        if value is None or value is Undefined:
            return _NOT_READ if non_null else None
        if isinstance(value, Exception):
            return _NOT_READ
        coerced = coerce(value)
    except Exception:
        return _NOT_READ
    return _NOT_READ if coerced is None or coerced is Undefined else coerced


def call_resolvers_directly(schema: strawberry.Schema) -> None:
    """Give each field of `schema` whose resolver can be called directly (see the module) a
    graphql-core resolver that calls it so. Strawberry's fields with arguments, field
    extensions, exception handlers or a `root`/`parent` parameter keep Strawberry's own."""
    info_class = schema.config.info_class
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field_def in graphql_type.fields.values():
            field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if isinstance(field, StrawberryField) and _callable_directly(schema, field):
                field_def.resolve = _direct(field, info_class)


def _callable_directly(schema: strawberry.Schema, field: StrawberryField) -> bool:
    resolver = field.base_resolver
    if resolver is None or field.extensions or field.arguments or field.is_subscription:
        return False
    if not callable(resolver.wrapped_func):
        return False  # Strawberry raises its own error for it
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return False
    return not schema.schema_converter._get_field_exception_handlers(field)


def _direct(field: StrawberryField, info_class: type[Any]) -> Callable[..., Any]:
    """graphql-core's resolver for `field`: `self` the source, `info` Strawberry's Info,
    passed as Strawberry passes them (by the resolver's own parameter names)."""
    resolver = field.base_resolver
    assert resolver is not None
    function = cast(Callable[..., Any], resolver.wrapped_func)
    takes_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    def resolve(source: Any, info: GraphQLResolveInfo) -> Any:
        kwargs = {info_name: info_class(_raw_info=info, _field=field)} if info_name is not None else {}
        return function(source, **kwargs) if takes_self else function(**kwargs)

    # A method of its object alone (`Customer.email(self)`: no info, not async) answers like an
    # attribute, so a leaf field of it is read inline (`PlainFieldsInline._plain`).
    resolve._reads_its_object_only = takes_self and info_name is None and not resolver.is_async  # type: ignore[attr-defined]
    return resolve


class ValidDocuments:
    """Documents that parse and validate, by their text, parsed and validated once per process
    (at most `size`, least recently used out first). What Strawberry's ParserCache and
    ValidationCache extensions keep, without the five extensions built per request to reach it
    (`GraphQLView.answer_directly`). The rules are Strawberry's: graphql-core's, ours (depth,
    aliases, one second factor, no introspection in production), then its own two."""

    def __init__(self, schema: strawberry.Schema, rules: Sequence[Any], *, max_tokens: int, size: int = 512) -> None:
        self._schema = schema._schema
        self._rules = (*specified_rules, *rules, MaybeNullValidationRule, OneOfInputValidationRule)
        self._max_tokens = max_tokens
        self._size = size
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, text: str) -> DocumentNode | None:
        """The document, or None when it does not parse or validate: Strawberry's path then
        answers with the errors, as it always did."""
        document = self._documents.get(text)
        if document is not None:
            self._documents.move_to_end(text)
            return document
        try:
            document = parse(text, max_tokens=self._max_tokens)
            if validate(self._schema, document, self._rules):
                return None
        except Exception:  # a syntax error, too many tokens, nesting past the recursion limit
            return None
        self._documents[text] = document
        if len(self._documents) > self._size:
            self._documents.popitem(last=False)
        return document
