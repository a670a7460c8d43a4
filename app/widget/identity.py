"""Signed customer identity: how a shop tells the widget who is signed in.

The shop's server signs `"{externalId}.{timestamp}"` (unix seconds) with its widget secret,
HMAC-SHA256, hex. The browser passes the three values on; we accept the signature for 24 hours.
Only the shop's server holds the secret, so a visitor cannot claim another customer's id, and
a signature made with another merchant's secret never matches this merchant's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.errors import DomainError, ErrorCode

SECRET_PREFIX = "wsec_"
PURPOSE = b"referral widget customer signing secrets v1"
VALIDITY = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)  # a shop server's clock may run this far ahead of ours
MAX_OVERLAP_HOURS = 7 * 24
_LAST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


@dataclass(frozen=True)
class SignedCustomer:
    external_id: str
    timestamp: int  # unix seconds, when the shop's server signed
    signature: str  # hex HMAC-SHA256

    @property
    def signed_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + VALIDITY


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, external_id: str, timestamp: int) -> str:
    message = f"{external_id}.{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(customer: SignedCustomer, valid_secrets: list[str], now: datetime) -> None:
    """Raise SIGNATURE_INVALID unless one of the secrets made the signature (compared in
    constant time), then SIGNATURE_EXPIRED if it is older than 24 hours or from the future."""
    given = customer.signature.strip().lower().encode()
    matched = False
    for secret in valid_secrets:
        expected = sign(secret, customer.external_id, customer.timestamp).encode()
        matched |= hmac.compare_digest(given, expected)
    if not matched:
        raise DomainError("signature", ErrorCode.SIGNATURE_INVALID, "the signature does not match this customer id and timestamp")
    if not 0 <= customer.timestamp <= _LAST_TIMESTAMP:
        raise DomainError("timestamp", ErrorCode.SIGNATURE_EXPIRED, "the timestamp is not a unix time in seconds")
    if customer.signed_at > now + CLOCK_SKEW:
        raise DomainError(
            "timestamp", ErrorCode.SIGNATURE_EXPIRED, "the timestamp is in the future: is the shop server's clock right?"
        )
    if customer.expires_at <= now:
        raise DomainError("timestamp", ErrorCode.SIGNATURE_EXPIRED, "the signature is more than 24 hours old: sign again")
