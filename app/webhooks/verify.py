"""How a receiver verifies a webhook (this exact code is quoted in the README)."""

import base64
import hashlib
import hmac
import time


def verify(secret: str, headers: dict, body: str | bytes, tolerance: int = 300) -> bool:
    """True when `body` was signed with `secret` less than `tolerance` seconds ago.
    `headers` maps lower-case header names to values; `body` is the raw request body."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): maybe a replay
    if isinstance(body, bytes):
        body = body.decode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False
