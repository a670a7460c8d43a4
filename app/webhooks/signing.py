"""Signing secrets: made, encrypted at rest (`app.crypto`), and used to sign (Standard Webhooks).

A secret is "whsec_" + base64 of 24 random bytes; the HMAC key is those bytes. At rest it is
sealed under a key derived from SECRET_KEY, so a database dump alone does not let anyone forge
webhooks. Changing SECRET_KEY makes stored secrets unreadable: rotate every endpoint's secret
after changing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from app import crypto

PREFIX = "whsec_"
PURPOSE = b"referral webhook signing secrets v1"


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def encrypt(secret: str, secret_key: str) -> str:
    return crypto.seal(secret, secret_key, PURPOSE)


def decrypt(stored: str, secret_key: str) -> str:
    return crypto.unseal(stored, secret_key, PURPOSE)


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>`."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """Every current secret's signature, space-separated (several during a rotation)."""
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
