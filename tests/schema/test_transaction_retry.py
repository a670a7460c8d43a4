"""A mutation that loses a deadlock (or a serialisation conflict) to a concurrent transaction
is run again from the start; other database errors are not."""

import pytest
from sqlalchemy.exc import DBAPIError

from app.referrals import programs
from tests import graphql_ops as ops


class DatabaseSaid(Exception):
    def __init__(self, sqlstate):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def failing_first(times: int, sqlstate: str | None, calls: list):
    real = programs.create_program

    async def create_program(session, **kwargs):
        calls.append(1)
        program = await real(session, **kwargs)  # really writes, so the retry must roll it back
        if len(calls) <= times:
            raise DBAPIError("INSERT ...", None, DatabaseSaid(sqlstate))
        return program

    return create_program


async def program_names(tenant) -> list[str]:
    data = await tenant.gql("{ programs { edges { node { name } } } }")
    return [e["node"]["name"] for e in data["programs"]["edges"]]


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"], ids=["deadlock", "serialization-failure"])
async def test_a_mutation_that_lost_a_deadlock_runs_again_and_writes_once(tenant, monkeypatch, sqlstate):
    calls = []
    monkeypatch.setattr(programs, "create_program", failing_first(1, sqlstate, calls))

    data = await tenant.gql(ops.CREATE_PROGRAM, {"input": {"name": "Give 10"}})

    assert data["createProgram"]["userErrors"] == []
    assert len(calls) == 2
    assert await program_names(tenant) == ["Give 10"]


async def test_a_mutation_that_keeps_losing_gives_up_after_three_attempts_and_writes_nothing(tenant, monkeypatch):
    calls = []
    monkeypatch.setattr(programs, "create_program", failing_first(10, "40P01", calls))

    body = await tenant.raw(ops.CREATE_PROGRAM, {"input": {"name": "Give 10"}})

    assert body["errors"][0]["message"] == "Unexpected error."
    assert len(calls) == 3
    assert await program_names(tenant) == []


async def test_other_database_errors_are_not_retried(tenant, monkeypatch):
    calls = []
    monkeypatch.setattr(programs, "create_program", failing_first(1, "23505", calls))

    body = await tenant.raw(ops.CREATE_PROGRAM, {"input": {"name": "Give 10"}})

    assert body["errors"][0]["message"] == "Unexpected error."
    assert len(calls) == 1
    assert await program_names(tenant) == []
