"""The app's connection pool serves requests waiting for a connection in the order they asked,
and a request that gives up (timed out, cancelled) or fails while it waits or while it opens a
connection takes no connection away from the others and leaves none of them waiting for nothing.
The pools' timeouts are 30 s (PostgreSQL) and 60 s (SQLite): the `asyncio.timeout(10)`s below
catch waiters left asleep until then."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db import create_engine
from app.pool import ArrivalOrderPool


@pytest.fixture
async def one_connection(database_url: str):
    """An engine of the app's kind with a pool of one connection."""
    engine = create_engine(database_url, pool_size=1)
    yield engine
    await engine.dispose()


def asking(engine: AsyncEngine, served: list, hold: float = 0.0):
    async def ask(name: object) -> None:
        async with engine.connect() as connection:
            served.append(name)
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(hold)

    return ask


async def test_waiting_requests_get_the_connection_in_the_order_they_asked(one_connection):
    served: list = []
    ask = asking(one_connection, served)
    holder = await one_connection.connect()
    waiting = [asyncio.create_task(ask(name)) for name in ("first", "second", "third")]
    await asyncio.sleep(0.05)  # all three wait for the one connection

    await holder.close()
    # A request asking now, before "first" had a loop pass to take the connection it was
    # handed, waits behind the three (SQLAlchemy's own asyncio pool let it in first).
    await ask("late")
    await asyncio.gather(*waiting)

    assert served == ["first", "second", "third", "late"]


async def test_a_waiter_cancelled_as_it_is_handed_the_connection_passes_it_on(one_connection):
    served: list = []
    ask = asking(one_connection, served)
    holder = await one_connection.connect()
    waiting = {name: asyncio.create_task(ask(name)) for name in range(5)}
    await asyncio.sleep(0.05)

    waiting[2].cancel()  # a client that went away while waiting in the middle of the line
    await holder.close()  # handed to 0...
    waiting[0].cancel()  # ...which is cancelled before it could take it
    outcomes = await asyncio.gather(*waiting.values(), return_exceptions=True)

    assert served == [1, 3, 4]
    assert [type(o).__name__ for o in outcomes] == ["CancelledError", "NoneType", "CancelledError", "NoneType", "NoneType"]
    assert one_connection.pool.checkedout() == 0
    async with asyncio.timeout(1):  # the connection is back: the next request gets it at once
        await ask("after")
    assert served[-1] == "after"


async def test_a_request_cancelled_while_it_opens_the_only_connection_lets_the_next_open_it(one_connection):
    served: list = []
    ask = asking(one_connection, served)
    opening = asyncio.create_task(ask("opening"))
    await asyncio.sleep(0)  # it has started to open the pool's one connection...
    waiting = [asyncio.create_task(ask(name)) for name in ("next", "last")]
    await asyncio.sleep(0)  # ...and these two wait for it
    opening.cancel()

    async with asyncio.timeout(10):  # SQLAlchemy's pool left them asleep until its timeout
        await asyncio.gather(*waiting)
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert served == ["next", "last"]
    assert one_connection.pool.checkedout() == 0


async def test_a_wait_that_times_out_fails_alone_and_the_connection_serves_the_next(database_url):
    engine = create_async_engine(database_url, poolclass=ArrivalOrderPool, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        served: list = []
        ask = asking(engine, served)
        holder = await engine.connect()
        with pytest.raises(exc.TimeoutError):
            await ask("impatient")
        patient = asyncio.create_task(ask("patient"))
        await asyncio.sleep(0.05)
        await holder.close()
        await patient
        assert served == ["patient"]
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


async def test_many_requests_with_some_cancelled_are_all_served_and_nothing_leaks(database_url):
    engine = create_engine(database_url, pool_size=3)
    try:
        served: list = []
        ask = asking(engine, served, hold=0.002)
        rng = random.Random(12)
        tasks = []
        for name in range(60):
            tasks.append(asyncio.create_task(ask(name)))
            await asyncio.sleep(0)  # they ask one after the other
        cancelled = set(rng.sample(range(60), 15))
        for name in sorted(cancelled):
            tasks[name].cancel()
            await asyncio.sleep(rng.choice([0, 0, 0.001]))  # some while waiting, some as they are handed one
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)

        finished = [name for name, outcome in enumerate(outcomes) if outcome is None]
        assert all(isinstance(outcomes[name], asyncio.CancelledError) for name in set(range(60)) - set(finished))
        assert set(finished) >= set(range(60)) - cancelled
        # No order here: a request cancelled while it opens a connection, or while it uses one
        # (which is then closed), leaves the next waiter to open a new one, and that waiter
        # starts after later ones handed a pooled connection. The order is shown above.
        assert len(served) == len(set(served)) and set(served) >= set(finished)  # each served once
        assert engine.pool.checkedout() == 0
        assert engine.pool.checkedin() <= 3
    finally:
        await engine.dispose()
