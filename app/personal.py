"""Personal data at rest: encrypted column types and keyed lookup hashes.

Columns that hold a customer's personal data but are never searched in SQL (emails, names, an
action's IP and browser, shipping addresses) are `Encrypted`: AES-GCM under the rotating keys
of `app.crypto.Keyring`, bound to the column (a value copied into another column does not
decrypt). Code reads and writes plain values; the database only ever sees ciphertext.

Where something must be found by value (a device id seen before, a blocklisted card), the row
also keeps `lookup_hash(merchant, kind, value)`: HMAC-SHA256 under a key derived from
SECRET_KEY and the merchant, so equal values match inside one merchant and nowhere else, and
nothing readable is stored. Unlike the encryption keys, the hash key cannot rotate: erased
customers' values are gone, so their hashes could never be recomputed (keep SECRET_KEY).

Every process that reads the database must use the same keys: they come from the process's
settings (`get_settings()`: SECRET_KEY, ENCRYPTION_KEYS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import Text
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator

from app import crypto
from app.config import get_settings

HASH_PREFIX = "hash:"  # a value replaced by its keyed hash (blocklist entries of erased customers)


def keyring() -> crypto.Keyring:
    return crypto.keyring(get_settings())


@lru_cache(maxsize=4)
def _hash_key(secret_key: str) -> bytes:
    return crypto.derive(secret_key, b"referral lookup hashes v1")


def lookup_hash(merchant_id: uuid.UUID | str, kind: str, value: str) -> str:
    """The keyed hash a value is found by: 64 hex characters, equal only for the same merchant,
    kind (DEVICE, PAYMENT, IP, EMAIL, ...) and value."""
    message = f"{merchant_id}|{kind}|{value}".encode()
    return hmac.new(_hash_key(get_settings().secret_key), message, hashlib.sha256).hexdigest()


def hashed_value(merchant_id: uuid.UUID | str, kind: str, value: str) -> str:
    """A stored value replaced by its keyed hash, marked as such (`hash:...`)."""
    return HASH_PREFIX + lookup_hash(merchant_id, kind, value)


class _NoComparison(TypeDecorator.Comparator):
    """Ciphertexts differ for equal values: comparing them in SQL is always a bug."""

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        if op not in (operators.is_, operators.is_not) and any(not isinstance(o, ClauseElement) for o in other):
            raise TypeError("an encrypted column cannot be compared with a value in SQL: compare its keyed hash")
        return super().operate(op, *other, **kwargs)


class Encrypted(TypeDecorator):
    """A text column stored encrypted; `context` names it ("customers.email")."""

    impl = Text
    cache_ok = True
    comparator_factory = _NoComparison

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().encrypt(value, context=self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().decrypt(value, context=self.context)


class EncryptedJSON(Encrypted):
    """A JSON value stored encrypted."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else super().process_bind_param(json.dumps(value, ensure_ascii=False), dialect)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        plain = super().process_result_value(value, dialect)
        return None if plain is None else json.loads(plain)


async def reencrypt(factory: Any, *, batch: int = 500) -> dict[str, int]:
    """Rewrite every encrypted column value not under the first key of ENCRYPTION_KEYS (after a
    rotation), in short transactions: safe to run again and while the API serves. Returns how
    many values each "table.column" had rewritten."""
    from sqlalchemy import String, select, type_coerce, update

    from app.db import Base

    ring, counts = keyring(), {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, Encrypted):
                continue
            raw = type_coerce(column, String)  # the stored text, not decrypted
            counts[f"{table.name}.{column.name}"] = done = 0
            after = None
            while True:
                async with factory() as session:
                    query = select(table.c.id, raw).where(column.is_not(None)).order_by(table.c.id).limit(batch)
                    rows = (await session.execute(query if after is None else query.where(table.c.id > after))).all()
                    stale = [(row_id, stored) for row_id, stored in rows if not ring.is_current(stored)]
                    for row_id, stored in stale:
                        fresh = ring.encrypt(ring.decrypt(stored, context=column.type.context), context=column.type.context)
                        await session.execute(
                            update(table)
                            .where(table.c.id == row_id, raw == stored)
                            .values({column.name: type_coerce(fresh, String)})
                        )
                    await session.commit()
                done += len(stale)
                if len(rows) < batch:
                    break
                after = rows[-1][0]
            counts[f"{table.name}.{column.name}"] = done
    return counts


_UNOPENED = object()


class Sealed:
    """An encrypted column's value as stored, decrypted only when something reads it (`open`).

    Records read for display (`db.merchant_records`) hold their encrypted columns so: a page of
    50 referrals with referrer and referee reads 100 customers, and a query that asks for the
    referrer's email only opens 50 of their 400 personal values. Fewer plaintexts in memory,
    and each decryption saved is a few microseconds."""

    __slots__ = ("_stored", "_type", "_plain")

    def __init__(self, stored: str, column_type: Encrypted) -> None:
        self._stored = stored
        self._type = column_type
        self._plain: Any = _UNOPENED

    def open(self) -> Any:
        """The plain value; decrypted once (a referrer shown on ten nodes of a page is one record)."""
        if self._plain is _UNOPENED:
            self._plain = self._type.process_result_value(self._stored, None)
        return self._plain

    def __repr__(self) -> str:
        return f"Sealed({self._type.context})"  # never the value, not even encrypted


def opened(value: Any) -> Any:
    """`value` in plain: a Sealed value opened, anything else as it is."""
    return value.open() if type(value) is Sealed else value


class ReadSealed(TypeDecorator):
    """Reads an `Encrypted` column as `Sealed` values (`type_coerce(column, ReadSealed(column.type))`,
    as `db.record_columns` does); never written."""

    impl = Text
    cache_ok = True

    def __init__(self, encrypted: Encrypted) -> None:
        super().__init__()
        self.encrypted = encrypted

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        raise TypeError("a sealed reading of a column is not written")

    def process_result_value(self, value: str | None, dialect: Any) -> Sealed | None:
        return None if value is None else Sealed(value, self.encrypted)
