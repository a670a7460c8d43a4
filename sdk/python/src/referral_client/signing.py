"""Signatures made and checked on the shop's own server, without calling the API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from referral_client.errors import WebhookVerificationError


@dataclass(frozen=True)
class SignedCustomer:
    """Hand these three to the page (Referral.mount or data-customer-id / data-timestamp /
    data-signature). Valid for 24 hours."""

    customer_id: str
    timestamp: int
    signature: str

    def as_data_attributes(self) -> dict[str, str]:
        return {"data-customer-id": self.customer_id, "data-timestamp": str(self.timestamp), "data-signature": self.signature}


def sign_customer(widget_secret: str, external_id: str, *, timestamp: int | None = None) -> SignedCustomer:
    """HMAC-SHA256 of "{external_id}.{timestamp}" with the widget secret ("wsec_..."), hex."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(widget_secret.encode(), f"{external_id}.{timestamp}".encode(), hashlib.sha256).hexdigest()
    return SignedCustomer(customer_id=external_id, timestamp=timestamp, signature=digest)


def verify_webhook(webhook_secret: str, headers: Mapping[str, str], body: str | bytes, *, tolerance: int = 300) -> dict[str, Any]:
    """Check a webhook the Standard Webhooks way and return its event (`type`, `timestamp`,
    `data`). `body` is the raw request body, before any parsing. Raises
    WebhookVerificationError for a bad signature, or a timestamp more than `tolerance` seconds
    away (a replay)."""
    lower = {key.lower(): value for key, value in headers.items()}
    try:
        msg_id, timestamp, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
        sent_at = int(timestamp)
    except (KeyError, ValueError):
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature headers are required") from None
    if abs(time.time() - sent_at) > tolerance:
        raise WebhookVerificationError("the webhook timestamp is too old or in the future")
    text = body.decode() if isinstance(body, bytes) else body
    try:
        key = base64.b64decode(webhook_secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise WebhookVerificationError("the webhook secret is not a whsec_ secret") from None
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.{text}".encode(), hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(text)
    raise WebhookVerificationError("no webhook signature matches")
