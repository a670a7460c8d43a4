"""The connection pool of the app's engines: requests waiting for a connection get one in the
order they asked.

SQLAlchemy's asyncio pool keeps returned connections in an `asyncio.Queue`. Returning one wakes
the first waiter but leaves the connection in the queue until that waiter runs, a loop pass
later; a request that asks in between takes it without waiting, and the waiter it was meant for
goes back to the end of the line. Under load (`wrk` at 32 connections on a pool of 10, 22
requests waiting) some requests were passed over again and again: the longest wait for a
connection was twice the 99th percentile's. Here a returned connection is handed to the first
waiter itself, and nobody takes a connection while anybody waits (measured: the longest wait
863-875 -> 414-466 ms, recordAction's p99 1.9-2.2 -> 1.5-1.9 times its p50; README,
"Connections in arrival order").

The same pool also wakes a waiter when a connection could not be opened (PostgreSQL refusing
one, a request cancelled while connecting). SQLAlchemy's left the room for it unused while every
waiter slept until its timeout: on SQLite's pool of one, a request cancelled while it opened the
connection stalled all others for 60 s and then failed them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Literal, TypeVar

from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")


class _Room:
    """Handed to a waiter instead of a connection: the pool has room to open one."""


ROOM = _Room()


class RoomToOpenOne(Exception):
    """What `HandOffQueue.get` raises for a waiter handed ROOM."""


class HandOffQueue(sqla_queue.QueueCommon[T], Generic[T]):
    """The pool's idle connections and, while there are none, its waiters in arrival order.
    An item put while someone waits goes straight to the longest waiter; items are only kept
    when nobody waits, so `get` never takes one from under a waiter."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._idle: deque[T] = deque()
        self._waiters: deque[asyncio.Future[T | _Room]] = deque()

    def empty(self) -> bool:
        return not self._idle

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._idle)

    def qsize(self) -> int:
        return len(self._idle)

    def has_waiters(self) -> bool:
        return any(not waiter.done() for waiter in self._waiters)

    def put_nowait(self, item: T) -> None:
        if self._hand_to_first_waiter(item):
            return
        if self.full():
            raise sqla_queue.Full()
        if self.use_lifo:
            self._idle.appendleft(item)
        else:
            self._idle.append(item)

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # never blocks: the pool never holds more connections than its size

    def make_room(self) -> None:
        """Tell the first waiter, if any, to open a connection: one closed or failed to open."""
        self._hand_to_first_waiter(ROOM)

    def get_nowait(self) -> T:
        if not self._idle:
            raise sqla_queue.Empty()
        return self._idle.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """An idle connection, else (blocking) the first one returned after the earlier waiters
        were served. Raises Empty at the timeout and RoomToOpenOne when handed ROOM."""
        if self._idle or not block:
            return self.get_nowait()
        try:
            handed = await_(self._wait(timeout))
        except TimeoutError as error:
            raise sqla_queue.Empty() from error
        if isinstance(handed, _Room):
            raise RoomToOpenOne()
        return handed

    async def _wait(self, patience: float | None) -> T | _Room:
        waiter: asyncio.Future[T | _Room] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(patience):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed something just as it gave up (its request cancelled, or the timeout
                # fell in the same loop pass): pass it on, or the pool would lose it.
                self._pass_on(waiter.result())
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    def _hand_to_first_waiter(self, item: T | _Room) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():  # gave up (timed out or cancelled)
                continue
            if _running_loop() is waiter.get_loop():
                waiter.set_result(item)
            else:  # from another thread (a garbage-collected session): hand it over on the waiter's loop
                waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter, item)
            return True
        return False

    def _hand_over(self, waiter: asyncio.Future[T | _Room], item: T | _Room) -> None:
        if waiter.done():
            self._pass_on(item)
        else:
            waiter.set_result(item)

    def _pass_on(self, item: T | _Room) -> None:
        if isinstance(item, _Room):
            self.make_room()
        else:
            self.put_nowait(item)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ArrivalOrderPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool with waiters served first come, first served: an idle
    connection, else room to open one, goes to a newcomer only while nobody waits."""

    _queue_class = HandOffQueue[ConnectionPoolEntry]
    _pool: HandOffQueue[ConnectionPoolEntry]

    def _do_get(self) -> ConnectionPoolEntry:
        first_in_line = False  # handed ROOM: this one opens the connection, whoever waits behind it
        while True:
            if not self._pool.empty():
                return self._pool.get_nowait()
            if (first_in_line or not self._pool.has_waiters()) and self._inc_overflow():
                try:
                    return self._create_connection()
                except BaseException:
                    self._dec_overflow()
                    raise
            try:
                return self._pool.get(True, self._timeout)
            except RoomToOpenOne:
                first_in_line = True
            except sqla_queue.Empty:
                raise exc.TimeoutError(
                    f"QueuePool limit of size {self.size()} overflow {self._max_overflow} reached, "
                    f"connection timed out, timeout {self._timeout:0.2f}",
                    code="3o7r",
                ) from None

    def _dec_overflow(self) -> Literal[True]:
        super()._dec_overflow()
        self._pool.make_room()
        return True
