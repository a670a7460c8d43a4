"""Building blocks for the widget tests, through the public API as a merchant would."""

from __future__ import annotations

import time
from typing import Any

from app.widget.identity import sign

SET_ORIGINS = """
mutation($origins: [String!]!) {
  setWidgetAllowedOrigins(origins: $origins) {
    settings { allowedOrigins secretConfigured } userErrors { field code message } }
}"""

ROTATE_SECRET = """
mutation($overlapHours: Int!) {
  rotateWidgetSecret(overlapHours: $overlapHours) {
    secret settings { secretConfigured secretLast4 secretCreatedAt previousSecretExpiresAt } userErrors { field code message } }
}"""

WIDGET_SESSION = """
mutation($customer: String!, $timestamp: BigInt!, $signature: String!, $programId: ID, $deviceId: String,
         $fingerprint: String) {
  widgetSession(customerExternalId: $customer, timestamp: $timestamp, signature: $signature, programId: $programId,
                deviceId: $deviceId, deviceFingerprint: $fingerprint) {
    session {
      code shareUrl successfulReferrals pendingReferrals expiresAt
      rewards { kind unit count earned pending }
      program { id name texts { locale title description shareMessage } colors { primary background text } }
    }
    userErrors { field code message }
  }
}"""

SET_PROGRAM_WIDGET = """
mutation($programId: ID!, $input: ProgramWidgetInput!) {
  setProgramWidget(programId: $programId, input: $input) {
    widget { id name texts { locale title description shareMessage } colors { primary background text } }
    userErrors { field code message }
  }
}"""


async def allow_origins(tenant, *origins: str) -> dict[str, Any]:
    data = await tenant.gql(SET_ORIGINS, {"origins": list(origins)})
    assert data["setWidgetAllowedOrigins"]["userErrors"] == []
    return data["setWidgetAllowedOrigins"]["settings"]


async def widget_secret(tenant, overlap_hours: int = 24) -> str:
    data = await tenant.gql(ROTATE_SECRET, {"overlapHours": overlap_hours})
    assert data["rotateWidgetSecret"]["userErrors"] == []
    return data["rotateWidgetSecret"]["secret"]


def signed(secret: str, customer: str, timestamp: int | None = None) -> dict[str, Any]:
    """What the shop's server hands the page for a signed-in customer."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {"customer": customer, "timestamp": timestamp, "signature": sign(secret, customer, timestamp)}


async def open_session(tenant, identity: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """widgetSession with the publishable key, as the browser calls it."""
    data = await tenant.gql(WIDGET_SESSION, {**identity, **extra}, key=tenant.publishable_key)
    return data["widgetSession"]
