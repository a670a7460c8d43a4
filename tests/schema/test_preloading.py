"""A list resolver preloads what its nodes refer to (`preload`), and a node's relation field then
answers at once, without a coroutine or a task (`loaded_or_later`); a relation nobody preloaded
is still batched and awaited, and a failed load still fails the field."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from strawberry.dataloader import DataLoader

from app.schema.context import loaded_or_later
from tests.schema.test_query_count import REFERRALS_WITH_RELATIONS, fifty_referrals  # noqa: F401 (a fixture)


def _loader(batches: list[list[int]]) -> DataLoader[int, str]:
    async def load(keys: list[int]) -> list[str | Exception]:
        batches.append(keys)
        return [ValueError("no such row") if key < 0 else f"row {key}" for key in keys]

    return DataLoader(load)


async def test_a_loaded_key_answers_at_once_and_an_unloaded_one_later_in_one_batch():
    batches: list[list[int]] = []
    loader = _loader(batches)
    later = [loaded_or_later(loader, key, str.upper) for key in (1, 2)]
    assert all(inspect.isawaitable(answer) for answer in later)
    assert await asyncio.gather(*later) == ["ROW 1", "ROW 2"]  # graphql-core gathers a list's fields
    assert batches == [[1, 2]]  # batched together, as before
    assert loaded_or_later(loader, 1, str.upper) == "ROW 1"  # loaded now: a value, not an awaitable
    assert batches == [[1, 2]]


async def test_a_failed_load_still_fails_the_field():
    loader = _loader([])
    with pytest.raises(ValueError, match="no such row"):
        await loader.load(-1)
    with pytest.raises(ValueError, match="no such row"):
        await loaded_or_later(loader, -1, str.upper)  # type: ignore[misc]


async def test_a_page_with_its_relations_answers_as_before(tenant, fifty_referrals):  # noqa: F811
    data = await tenant.gql(REFERRALS_WITH_RELATIONS, {"first": 50})
    nodes = [edge["node"] for edge in data["referrals"]["edges"]]
    assert [node["referee"]["externalId"] for node in nodes] == list(reversed(fifty_referrals))
    assert {node["referrer"]["externalId"] for node in nodes} == {f"referrer-{r}" for r in range(5)}
    assert all(node["referrer"]["email"] is None and node["program"]["name"] and node["code"]["code"] for node in nodes)
