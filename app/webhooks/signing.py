"""Signing secrets: made, encrypted at rest, and used to sign (Standard Webhooks).

A secret is "whsec_" + base64 of 24 random bytes; the HMAC key is those bytes. At rest it is
encrypted with AES-GCM under a key derived (HKDF-SHA256) from SECRET_KEY, so a database dump
alone does not let anyone forge webhooks. Changing SECRET_KEY makes stored secrets unreadable:
rotate every endpoint's secret after changing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "whsec_"
_VERSION = "v1:"  # of the stored format: "v1:" + base64(nonce + ciphertext)
_INFO = b"referral webhook signing secrets v1"


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


@lru_cache(maxsize=8)
def _aead(secret_key: str) -> AESGCM:
    if not secret_key:
        raise RuntimeError("SECRET_KEY is not set: webhook secrets cannot be encrypted")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return AESGCM(key)


def encrypt(secret: str, secret_key: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead(secret_key).encrypt(nonce, secret.encode(), _INFO)
    return _VERSION + base64.b64encode(nonce + sealed).decode()


def decrypt(stored: str, secret_key: str) -> str:
    if not stored.startswith(_VERSION):
        raise ValueError("unknown webhook secret format")
    raw = base64.b64decode(stored[len(_VERSION):])
    try:
        return _aead(secret_key).decrypt(raw[:12], raw[12:], _INFO).decode()
    except InvalidTag:
        raise ValueError("the webhook secret cannot be decrypted: was SECRET_KEY changed?") from None


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>`."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """Every current secret's signature, space-separated (several during a rotation)."""
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
