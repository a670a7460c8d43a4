"""Domain errors: what a caller did wrong, with the input field and a stable code.

Services raise `DomainError`; the GraphQL layer rolls the transaction back and returns the
error as a `userErrors` entry. Anything else that escapes is a bug and is masked.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    INVALID_URL = "INVALID_URL"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    CODE_INVALID = "CODE_INVALID"
    CODE_TAKEN = "CODE_TAKEN"
    CODE_NOT_FOUND = "CODE_NOT_FOUND"
    CODE_INACTIVE = "CODE_INACTIVE"
    CUSTOMER_HAS_CODE = "CUSTOMER_HAS_CODE"
    PROGRAM_NOT_ACTIVE = "PROGRAM_NOT_ACTIVE"
    SELF_REFERRAL = "SELF_REFERRAL"
    ALREADY_REFERRED = "ALREADY_REFERRED"
    EXISTING_CUSTOMER = "EXISTING_CUSTOMER"
    CLAIM_WINDOW_EXPIRED = "CLAIM_WINDOW_EXPIRED"
    LAST_SECRET_KEY = "LAST_SECRET_KEY"
    ALREADY_REVOKED = "ALREADY_REVOKED"
    # the widget: browser origins and signed customer identity
    INVALID_ORIGIN = "INVALID_ORIGIN"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_EXPIRED = "SIGNATURE_EXPIRED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    COUPON_NOT_FOUND = "COUPON_NOT_FOUND"
    COUPON_ALREADY_REDEEMED = "COUPON_ALREADY_REDEEMED"
    COUPON_EXPIRED = "COUPON_EXPIRED"
    COUPON_NOT_ACTIVE = "COUPON_NOT_ACTIVE"
    ORDER_BELOW_MINIMUM = "ORDER_BELOW_MINIMUM"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    REVIEW_ALREADY_RESOLVED = "REVIEW_ALREADY_RESOLVED"
    TOO_MANY = "TOO_MANY"
    # privacy: erased customers, exports
    CUSTOMER_ERASED = "CUSTOMER_ERASED"


class DomainError(Exception):
    def __init__(self, field: str | None, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class NotFound(DomainError):
    def __init__(self, field: str | None, what: str) -> None:
        super().__init__(field, ErrorCode.NOT_FOUND, f"{what} not found")
