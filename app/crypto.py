"""Secrets at rest: AES-256-GCM under keys with ids, so the keys can be rotated.

What is stored this way: admins' TOTP seeds, payout account details, webhook signing secrets,
widget (customer-signing) secrets, and customers' personal data (app/personal.py: emails and
names, actions' context, clicks' networks, fraud identifiers).
A stored value is `v2:<key id>:<base64(nonce || ciphertext)>`; its associated data names what
it is and which row it belongs to (`"totp:<admin id>"`), so a ciphertext copied into another
row or column does not decrypt.

Keys come from the environment:

- `ENCRYPTION_KEYS="k2:<base64 of 32 bytes>,k1:<...>"`: the first key encrypts, every listed
  key decrypts. Make a key with
  `python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"`.
- Without it, one key derived from SECRET_KEY (id `s0`) encrypts. The `s0` key always decrypts
  as long as SECRET_KEY is set, so switching to ENCRYPTION_KEYS loses nothing.

Rotation: put the new key first, keep the old ones, run `referral secrets reencrypt` (rewrites
every stored secret under the first key), then drop the old keys from the list.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings

VERSION = "v2"
DERIVED_KEY_ID = "s0"
_DERIVED_INFO = b"referral secrets at rest v2"


class UnreadableSecret(ValueError):
    """A stored secret whose key is not configured, or that was tampered with."""


def derive(secret_key: str, info: bytes, length: int = 32) -> bytes:
    """A key for one purpose, derived from SECRET_KEY (HKDF-SHA256)."""
    if not secret_key:
        raise RuntimeError("SECRET_KEY is not set")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret_key.encode())


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, 32-byte key); the first encrypts
    # Each key's cipher, made once: setting one up costs more than the AES-GCM of a short value,
    # and every personal column read or written goes through here.
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    @property
    def primary_id(self) -> str:
        return self.keys[0][0]

    def _aead(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        for candidate, key in self.keys:
            if candidate == key_id:
                cipher = self._ciphers[key_id] = AESGCM(key)
                return cipher
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
            raise UnreadableSecret("a stored secret cannot be decrypted (wrong key, or another row's value)") from None

    def is_current(self, stored: str) -> bool:
        """Encrypted under the key that encrypts now (no rotation pending for it)."""
        return stored.startswith(f"{VERSION}:{self.primary_id}:")

    @staticmethod
    @lru_cache(maxsize=256)  # a few key ids times the columns' contexts
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


def keyring(settings: Settings) -> Keyring:
    return _keyring(settings.secret_key, settings.encryption_keys)


class RotatingSecretHolder(Protocol):
    """A row with a current encrypted secret and, during an overlap, the previous one."""

    # read as optional (a widget may have none yet), written only with a secret (a webhook's is required)
    @property
    def secret_encrypted(self) -> str | None: ...
    @secret_encrypted.setter
    def secret_encrypted(self, value: str) -> None: ...

    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None


def rotate(
    holder: RotatingSecretHolder, new_secret: str, *, encrypt: Callable[[str], str], overlap: timedelta, now: datetime
) -> None:
    """Make `new_secret` current; the old one stays valid for `overlap` (none: it ends now),
    so the other side can switch without a moment where nothing matches."""
    if overlap > timedelta(0) and holder.secret_encrypted:
        holder.previous_secret_encrypted = holder.secret_encrypted
        holder.previous_secret_expires_at = now + overlap
    else:
        holder.previous_secret_encrypted = None
        holder.previous_secret_expires_at = None
    holder.secret_encrypted = encrypt(new_secret)


def valid_secrets(holder: RotatingSecretHolder, *, decrypt: Callable[[str], str], now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    secrets = [decrypt(holder.secret_encrypted)] if holder.secret_encrypted else []
    expires = holder.previous_secret_expires_at
    if holder.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(decrypt(holder.previous_secret_encrypted))
    return secrets
