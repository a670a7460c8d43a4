"""Plain fields read inline (app.schema.execution) answer exactly as graphql-core's own
execution does: the same data, and the same errors at the same paths when a value is missing or
of the wrong kind, with the same null propagation, beside fields that have resolvers."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.schema.execution import PlainFieldsInline


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


@dataclass
class Row:  # what the resolvers hand over: an object whose attributes may be wrong
    name: Any
    count: Any = 1
    colour: Any = Colour.RED
    seen_at: Any = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    note: Any = None


@strawberry.type
class Item:
    name: str
    count: int | None
    colour: Colour
    seen_at: datetime
    note: str | None

    @strawberry.field
    def shout(self) -> str:
        return str(self.name).upper()


def _item(row: Row) -> Item:
    item = Item(name=row.name, count=row.count, colour=row.colour, seen_at=row.seen_at, note=row.note)
    if row.note == "gone":
        del item.note  # reading it raises AttributeError
    return item


ROWS: dict[str, list[Row]] = {
    "good": [Row("a"), Row("b", count=None, note="n"), Row("c", colour=Colour.BLUE)],
    "a missing non-null": [Row("a"), Row(None), Row("c")],
    "an int that is not one": [Row("a", count="seven"), Row("b")],
    "a colour that is not one": [Row("a", colour="GREEN")],
    "a date that is not one": [Row("a", seen_at="yesterday")],
    "an exception as a value": [Row("a", note=ValueError("boom"))],
    "an attribute that raises": [Row("a"), Row("b", note="gone")],
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, case: str) -> list[Item | None]:
        return [_item(row) for row in ROWS[case]]

    @strawberry.field
    def strict_items(self, case: str) -> list[Item]:
        return [_item(row) for row in ROWS[case]]


class Counting:
    """Counts the fields executed one by one (each builds a resolve info)."""

    built = 0

    def build_resolve_info(self, *args: Any) -> Any:
        type(self).built += 1
        return super().build_resolve_info(*args)  # type: ignore[misc]


class StandardCounted(Counting, StrawberryGraphQLCoreExecutionContext):
    built = 0


class InlineCounted(Counting, PlainFieldsInline):
    built = 0


QUERIES = [
    "query($c: String!) { items(case: $c) { name count colour seenAt note } }",
    "query($c: String!) { strictItems(case: $c) { name count colour seenAt note } }",
    "query($c: String!) { items(case: $c) { n: name n2: name colour ...F } } fragment F on Item { note count }",
    "query($c: String!) { items(case: $c) { __typename name shout count } }",  # plain beside resolved
    "query($c: String!) { strictItems(case: $c) { shout name } }",
    "query($c: String!) { items(case: $c) { name @include(if: false) count @skip(if: false) } }",
]


def _run(execution_context_class: type, query: str, case: str) -> Any:
    schema = strawberry.Schema(query=Query, execution_context_class=execution_context_class)
    result = schema.execute_sync(query, variable_values={"c": case})
    return result.data, [(error.message, error.path) for error in result.errors or []]


def test_every_answer_and_error_is_the_one_graphql_core_gives() -> None:
    for query in QUERIES:
        for case in ROWS:
            assert _run(PlainFieldsInline, query, case) == _run(StrawberryGraphQLCoreExecutionContext, query, case), (
                query,
                case,
            )


def test_the_errors_name_the_field_and_the_row() -> None:
    data, errors = _run(PlainFieldsInline, QUERIES[0], "a missing non-null")
    assert data == {
        "items": [
            {"name": "a", "count": 1, "colour": "RED", "seenAt": "2026-11-29T12:00:00+00:00", "note": None},
            None,
            {"name": "c", "count": 1, "colour": "RED", "seenAt": "2026-11-29T12:00:00+00:00", "note": None},
        ]
    }
    assert errors == [("Cannot return null for non-nullable field Item.name.", ["items", 1, "name"])]
    data, errors = _run(PlainFieldsInline, QUERIES[0], "an int that is not one")
    assert data["items"][0]["name"] == "a" and data["items"][0]["count"] is None  # a nullable field: only it is null
    assert errors == [("Int cannot represent non-integer value: 'seven'", ["items", 0, "count"])]
    data, errors = _run(PlainFieldsInline, QUERIES[1], "a missing non-null")
    assert data is None  # a non-null list of non-null items: the error takes the whole list
    assert errors == [("Cannot return null for non-nullable field Item.name.", ["strictItems", 1, "name"])]


def test_plain_fields_are_not_executed_one_by_one() -> None:
    StandardCounted.built = InlineCounted.built = 0
    assert _run(InlineCounted, QUERIES[0], "good") == _run(StandardCounted, QUERIES[0], "good")
    assert StandardCounted.built == 1 + 3 * 5  # the list, then five fields of three items
    assert InlineCounted.built == 1  # only the list's own resolver

    StandardCounted.built = InlineCounted.built = 0
    assert _run(InlineCounted, QUERIES[3], "good") == _run(StandardCounted, QUERIES[3], "good")
    assert StandardCounted.built == 1 + 3 * 4
    assert InlineCounted.built == 1 + 3 * 2  # __typename and shout, per item


# Resolvers called directly (call_resolvers_directly): every shape of resolver Strawberry takes
# without arguments answers as through Strawberry's own path, errors and permissions included.


class Closed(strawberry.BasePermission):
    message = "closed"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return bool(source.name == "open")


@strawberry.type
class Shapes:
    name: str

    @strawberry.field
    def with_self_and_info(self, info: strawberry.Info) -> str:
        return f"{self.name}:{info.field_name}:{info.path.key}:{info.context['tag']}"

    @strawberry.field
    async def asynchronous(self, info: strawberry.Info) -> str:
        return f"{self.name}:{info.python_name}"

    @strawberry.field
    def only_self(self) -> str:
        return self.name.upper()

    @strawberry.field
    @staticmethod
    def only_info(information: strawberry.Info) -> str:
        return str(information.return_type)

    @strawberry.field
    def raises(self) -> str | None:
        raise ValueError(f"no {self.name}")

    @strawberry.field
    def null_where_not(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def sibling(self, info: strawberry.Info) -> Shapes | None:
        return Shapes(name=self.name + "+") if self.name != "x++" else None

    @strawberry.field(permission_classes=[Closed])
    def guarded(self) -> str:
        return "inside"

    @strawberry.field
    def with_argument(self, times: int = 2) -> str:
        return self.name * times


@strawberry.type
class ShapesQuery:
    @strawberry.field
    def shapes(self) -> list[Shapes]:
        return [Shapes(name="open"), Shapes(name="x")]


SHAPE_QUERIES = [
    "{ shapes { name withSelfAndInfo asynchronous onlySelf onlyInfo } }",
    "{ shapes { a: withSelfAndInfo b: withSelfAndInfo sibling { name sibling { onlySelf sibling { name } } } } }",
    "{ shapes { name raises } }",
    "{ shapes { name nullWhereNot } }",
    "{ shapes { name guarded } }",
    "{ shapes { withArgument w3: withArgument(times: 3) ...F } } fragment F on Shapes { onlySelf }",
]


async def _run_shapes(query: str, *, directly: bool) -> Any:
    from app.schema.execution import call_resolvers_directly

    schema = strawberry.Schema(query=ShapesQuery, execution_context_class=PlainFieldsInline)
    if directly:
        call_resolvers_directly(schema)
    result = await schema.execute(query, context_value={"tag": "t"})
    return result.data, sorted((error.message, tuple(error.path or ())) for error in result.errors or [])


async def test_resolvers_called_directly_answer_as_through_strawberry() -> None:
    for query in SHAPE_QUERIES:
        assert await _run_shapes(query, directly=True) == await _run_shapes(query, directly=False), query
    data, errors = await _run_shapes(SHAPE_QUERIES[0], directly=True)
    assert data["shapes"][0] == {
        "name": "open",
        "withSelfAndInfo": "open:withSelfAndInfo:withSelfAndInfo:t",
        "asynchronous": "open:asynchronous",
        "onlySelf": "OPEN",
        "onlyInfo": "<class 'str'>",
    }
    data, errors = await _run_shapes(SHAPE_QUERIES[4], directly=True)
    assert data is None and errors == [("closed", ("shapes", 1, "guarded"))]  # the permission still runs


def test_only_resolvers_without_arguments_or_extensions_are_called_directly() -> None:
    from app.schema.execution import call_resolvers_directly

    schema = strawberry.Schema(query=ShapesQuery, execution_context_class=PlainFieldsInline)
    call_resolvers_directly(schema)
    fields = schema._schema.type_map["Shapes"].fields  # type: ignore[attr-defined]
    direct = sorted(name for name, field in fields.items() if field.resolve.__qualname__.startswith("_direct"))
    assert direct == ["asynchronous", "nullWhereNot", "onlyInfo", "onlySelf", "raises", "sibling", "withSelfAndInfo"]


def test_a_method_of_its_object_alone_is_read_inline_once_called_directly() -> None:
    """`Item.shout(self)` (no info, not async) answers like an attribute: called directly, it is
    read in the loop like one (`Customer.email` opening a sealed column is such a method)."""
    from app.schema.execution import call_resolvers_directly

    def run(execution_context_class: type, case: str) -> Any:
        schema = strawberry.Schema(query=Query, execution_context_class=execution_context_class)
        call_resolvers_directly(schema)
        result = schema.execute_sync(QUERIES[3], variable_values={"c": case})
        return result.data, [(error.message, error.path) for error in result.errors or []]

    StandardCounted.built = InlineCounted.built = 0
    assert run(InlineCounted, "good") == _run(StandardCounted, QUERIES[3], "good")
    assert InlineCounted.built == 1 + 3  # the list, and __typename per item: shout is read inline
    # Beside plain fields that fail; a method that raises or answers null where it may not is
    # compared in test_resolvers_called_directly_answer_as_through_strawberry (`raises`, `nullWhereNot`).
    for case in ROWS:
        assert run(PlainFieldsInline, case) == _run(StrawberryGraphQLCoreExecutionContext, QUERIES[3], case), case
