"""Secrets kept at rest, and secrets that rotate with an overlap.

Some secrets must be readable again (we sign webhooks with them, we verify customers' HMACs
with them), so they cannot be hashed like API keys. They are sealed with AES-GCM under a key
derived (HKDF-SHA256) from SECRET_KEY, one key per purpose, so a value sealed for one purpose
never opens as another and a database dump alone reveals none of them. Changing SECRET_KEY
makes sealed secrets unreadable: rotate them after changing it.

Personal data at rest (customers' emails and names, actions' context, clicks' networks) uses
a `Keyring` instead: keys with ids, so the keys themselves rotate. A stored value is
`v2:<key id>:<base64(nonce || ciphertext)>`; ENCRYPTION_KEYS="k2:<base64 32 bytes>,k1:..."
lists them (the first encrypts, all decrypt) and without it one key derived from SECRET_KEY
(id `s0`) is used and always still decrypts. Rotation: put the new key first, run
`referral privacy reencrypt`, then drop the old key. (The same API as the payouts branch's
keyring, so the two merge into one.)
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
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


# --- keys with ids, for data whose keys rotate -------------------------------------------------

VERSION = "v2"
DERIVED_KEY_ID = "s0"
_DERIVED_INFO = b"referral secrets at rest v2"


class UnreadableSecret(ValueError):
    """A stored value whose key is not configured, or that was tampered with."""


def derive(secret_key: str, info: bytes, length: int = 32) -> bytes:
    """A key for one purpose, derived from SECRET_KEY (HKDF-SHA256)."""
    if not secret_key:
        raise RuntimeError("SECRET_KEY is not set")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret_key.encode())


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, 32-byte key); the first encrypts

    @property
    def primary_id(self) -> str:
        return self.keys[0][0]

    def _aead(self, key_id: str) -> AESGCM:
        for candidate, key in self.keys:
            if candidate == key_id:
                return AESGCM(key)
        raise UnreadableSecret(f"no encryption key {key_id!r} is configured (ENCRYPTION_KEYS)")

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead(self.primary_id).encrypt(nonce, plaintext.encode(), self._aad(self.primary_id, context))
        return f"{VERSION}:{self.primary_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, *, context: str) -> str:
        version, _, rest = stored.partition(":")
        key_id, _, payload = rest.partition(":")
        if version != VERSION or not key_id or not payload:
            raise UnreadableSecret("not a stored secret")
        try:
            raw = base64.b64decode(payload, validate=True)
            return self._aead(key_id).decrypt(raw[:12], raw[12:], self._aad(key_id, context)).decode()
        except (InvalidTag, binascii.Error, ValueError) as error:
            if isinstance(error, UnreadableSecret):
                raise
            raise UnreadableSecret("a stored secret cannot be decrypted (wrong key, or another column's value)") from None

    def is_current(self, stored: str) -> bool:
        """Encrypted under the key that encrypts now (no rotation pending for it)."""
        return stored.startswith(f"{VERSION}:{self.primary_id}:")

    @staticmethod
    def _aad(key_id: str, context: str) -> bytes:
        return f"{VERSION}|{key_id}|{context}".encode()


def parse_keys(raw: str) -> list[tuple[str, bytes]]:
    keys = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id or ":" in key_id or key_id == DERIVED_KEY_ID:
            raise ValueError(f"ENCRYPTION_KEYS entries are id:base64key (and {DERIVED_KEY_ID!r} is reserved)")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"ENCRYPTION_KEYS: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"ENCRYPTION_KEYS: key {key_id!r} must be 32 bytes")
        keys.append((key_id, key))
    return keys


@lru_cache(maxsize=8)
def _keyring(secret_key: str, encryption_keys: str) -> Keyring:
    keys = parse_keys(encryption_keys)
    if secret_key:
        keys.append((DERIVED_KEY_ID, derive(secret_key, _DERIVED_INFO)))
    if not keys:
        raise RuntimeError("set ENCRYPTION_KEYS or SECRET_KEY: secrets cannot be encrypted")
    return Keyring(tuple(keys))


def keyring(settings) -> Keyring:
    """The keyring of `settings` (app.config.Settings)."""
    return _keyring(settings.secret_key, settings.encryption_keys)
