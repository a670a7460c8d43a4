"""A merchant's configuration that every referred purchase reads (reward rules, fraud policy,
webhook endpoints), kept in the API process between requests.

Correct without expiry: the entries are keyed by `merchants.config_version`, which a trigger
raises in the very transaction that changes any of it (migration 0012), and which the request
read together with its API key. An entry is therefore never older than the version the request
saw; a change committed meanwhile can only make it newer, as a fresh read would. The request's
own uncommitted changes must never be shared, so only write paths that change no configuration
(recording actions, claims) opt in with `trust_version`; everything else reads the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

_VERSION = "config_version"
MAX_ENTRIES = 10_000  # a few per program; a deployment with more programs re-reads some

_entries: dict[tuple[Hashable, ...], tuple[int, Any]] = {}


def trust_version(session: AsyncSession, merchant_id: uuid.UUID, version: int | None) -> None:
    """This transaction writes no configuration: reads of it may come from memory at `version`."""
    if version is not None:
        session.info[_VERSION] = (merchant_id, version)


async def read(session: AsyncSession, merchant_id: uuid.UUID, key: tuple[Hashable, ...], load: Callable[[], Awaitable[T]]) -> T:
    """`load()`'s value for `key` of `merchant_id`, from memory when it was read at the version
    this transaction trusts (or a later one)."""
    trusted = session.info.get(_VERSION)
    if trusted is None or trusted[0] != merchant_id:
        return await load()
    version = trusted[1]
    entry_key = (merchant_id, *key)
    entry = _entries.get(entry_key)
    if entry is not None and entry[0] >= version:
        return entry[1]
    value = await load()
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[entry_key] = (version, value)
    return value


def clear() -> None:
    _entries.clear()
