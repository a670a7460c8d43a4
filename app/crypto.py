"""Secrets kept at rest, and secrets that rotate with an overlap.

Some secrets must be readable again (we sign webhooks with them, we verify customers' HMACs
with them), so they cannot be hashed like API keys. They are sealed with AES-GCM under a key
derived (HKDF-SHA256) from SECRET_KEY, one key per purpose, so a value sealed for one purpose
never opens as another and a database dump alone reveals none of them. Changing SECRET_KEY
makes sealed secrets unreadable: rotate them after changing it.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1:"  # of the stored format: "v1:" + base64(nonce + ciphertext)


@lru_cache(maxsize=16)
def _aead(secret_key: str, purpose: bytes) -> AESGCM:
    if not secret_key:
        raise RuntimeError("SECRET_KEY is not set: secrets cannot be encrypted")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return AESGCM(key)


def seal(plaintext: str, secret_key: str, purpose: bytes) -> str:
    nonce = os.urandom(12)
    sealed = _aead(secret_key, purpose).encrypt(nonce, plaintext.encode(), purpose)
    return _VERSION + base64.b64encode(nonce + sealed).decode()


def unseal(stored: str, secret_key: str, purpose: bytes) -> str:
    if not stored.startswith(_VERSION):
        raise ValueError("unknown sealed secret format")
    raw = base64.b64decode(stored[len(_VERSION):])
    try:
        return _aead(secret_key, purpose).decrypt(raw[:12], raw[12:], purpose).decode()
    except InvalidTag:
        raise ValueError(f"a {purpose.decode()} secret cannot be decrypted: was SECRET_KEY changed?") from None


class RotatingSecretHolder(Protocol):
    """A row with a current sealed secret and, during an overlap, the previous one."""

    secret_encrypted: str | None
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None


def rotate(holder: RotatingSecretHolder, new_secret: str, *, secret_key: str, purpose: bytes, overlap: timedelta, now: datetime) -> None:
    """Make `new_secret` current; the old one stays valid for `overlap` (none: it ends now),
    so the other side can switch without a moment where nothing matches."""
    if overlap > timedelta(0) and holder.secret_encrypted:
        holder.previous_secret_encrypted = holder.secret_encrypted
        holder.previous_secret_expires_at = now + overlap
    else:
        holder.previous_secret_encrypted = None
        holder.previous_secret_expires_at = None
    holder.secret_encrypted = seal(new_secret, secret_key, purpose)


def valid_secrets(holder: RotatingSecretHolder, *, secret_key: str, purpose: bytes, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    secrets = [unseal(holder.secret_encrypted, secret_key, purpose)] if holder.secret_encrypted else []
    expires = holder.previous_secret_expires_at
    if holder.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(unseal(holder.previous_secret_encrypted, secret_key, purpose))
    return secrets
