"""A small typed client for a shop's Python backend talking to the Referral API.

from referral_client import ReferralClient

client = ReferralClient("https://api.example", "sk_...", widget_secret="wsec_...", webhook_secret="whsec_...")
client.record_action(type="PURCHASE", customer_external_id="bob", idempotency_key="order-1001",
                     order_id="1001", amount=4999, currency="USD")
"""

from referral_client.client import AsyncReferralClient, ReferralClient
from referral_client.errors import (
    APIError,
    FieldError,
    IdempotencyConflict,
    NotFound,
    ReferralError,
    TransportError,
    UserError,
    WebhookVerificationError,
)
from referral_client.operations import Customer, RecordedAction, ReferralCode, Reward
from referral_client.signing import SignedCustomer, sign_customer, verify_webhook

__all__ = [
    "APIError",
    "AsyncReferralClient",
    "Customer",
    "FieldError",
    "IdempotencyConflict",
    "NotFound",
    "RecordedAction",
    "ReferralClient",
    "ReferralCode",
    "ReferralError",
    "Reward",
    "SignedCustomer",
    "TransportError",
    "UserError",
    "WebhookVerificationError",
    "sign_customer",
    "verify_webhook",
]
