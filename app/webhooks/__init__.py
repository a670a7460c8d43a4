"""Signed webhooks to the merchant's endpoints (Standard Webhooks): `emit` in the transaction
of the change, one delivery per subscribed endpoint, sent by the worker with retries."""

from app.webhooks.service import emit

__all__ = ["emit"]
