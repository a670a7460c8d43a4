"""Signing secrets: made, encrypted at rest, and used to sign (Standard Webhooks).

A secret is "whsec_" + base64 of 24 random bytes; the HMAC key is those bytes. At rest it is
encrypted with the rotatable keys of `app.crypto` (bound to its endpoint), so a database dump
alone does not let anyone forge webhooks. Secrets stored before that (`v1:`, AES-GCM under a
key derived from SECRET_KEY) are still read, and `referral secrets reencrypt` rewrites them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app import crypto
from app.config import Settings

PREFIX = "whsec_"
_LEGACY = "v1:"  # the first stored format: "v1:" + base64(nonce + ciphertext), key derived from SECRET_KEY
_INFO = b"referral webhook signing secrets v1"


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def _context(endpoint_id: uuid.UUID) -> str:
    return f"webhook_secret:{endpoint_id}"


def encrypt(secret: str, settings: Settings, endpoint_id: uuid.UUID) -> str:
    return crypto.keyring(settings).encrypt(secret, context=_context(endpoint_id))


def decrypt(stored: str, settings: Settings, endpoint_id: uuid.UUID) -> str:
    if stored.startswith(_LEGACY):
        return _decrypt_legacy(stored, settings.secret_key)
    return crypto.keyring(settings).decrypt(stored, context=_context(endpoint_id))


@lru_cache(maxsize=8)
def _legacy_aead(secret_key: str) -> AESGCM:
    return AESGCM(crypto.derive(secret_key, _INFO))


def _decrypt_legacy(stored: str, secret_key: str) -> str:
    raw = base64.b64decode(stored[len(_LEGACY) :])
    try:
        return _legacy_aead(secret_key).decrypt(raw[:12], raw[12:], _INFO).decode()
    except InvalidTag:
        raise crypto.UnreadableSecret("the webhook secret cannot be decrypted: was SECRET_KEY changed?") from None


def encrypt_legacy(secret: str, secret_key: str) -> str:
    """The format of the first release (for tests of the upgrade path)."""
    nonce = os.urandom(12)
    return _LEGACY + base64.b64encode(nonce + _legacy_aead(secret_key).encrypt(nonce, secret.encode(), _INFO)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>`."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """Every current secret's signature, space-separated (several during a rotation)."""
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
