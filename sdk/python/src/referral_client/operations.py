"""What each call sends and how its answer is read. The clients only move the bytes, so the
sync and async clients cannot drift apart."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from referral_client.errors import FieldError, user_error

T = TypeVar("T")


@dataclass(frozen=True)
class Request(Generic[T]):
    document: str
    variables: dict[str, Any]
    root: str  # the operation's field in `data`
    parse: Callable[[dict[str, Any]], T]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Reward:
    id: str
    recipient: str  # REFERRER or REFEREE
    kind: str  # CREDIT, POINTS, COMMISSION or DISCOUNT
    status: str
    amount: int  # minor units or points (basis points for a percentage)
    unit: str  # ISO 4217, POINTS or PERCENT
    customer_external_id: str
    coupon_code: str | None

    @classmethod
    def of(cls, data: dict[str, Any]) -> Reward:
        return cls(
            id=data["id"],
            recipient=data["recipient"],
            kind=data["kind"],
            status=data["status"],
            amount=data["amount"],
            unit=data["unit"],
            customer_external_id=data["customer"]["externalId"],
            coupon_code=(data.get("coupon") or {}).get("code"),
        )


@dataclass(frozen=True)
class RecordedAction:
    action_id: str
    attribution: str  # REFERRAL_CREATED, LINKED_TO_REFERRAL, UNKNOWN_CODE, ...
    referral_id: str | None
    referral_status: str | None
    replayed: bool  # True when this was a retry: nothing new was written
    rewards: list[Reward] = field(default_factory=list)


@dataclass(frozen=True)
class Customer:
    id: str
    external_id: str
    email: str | None
    name: str | None


@dataclass(frozen=True)
class ReferralCode:
    code: str
    share_url: str | None
    active: bool


# ---------------------------------------------------------------------------------------------
# Inputs


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    return {_camel(k): (_camel_keys(v) if isinstance(v, Mapping) else v) for k, v in values.items() if v is not None}


def _payload(parse: Callable[[dict[str, Any]], T]) -> Callable[[dict[str, Any]], T]:
    def read(payload: dict[str, Any]) -> T:
        errors = payload.get("userErrors") or []
        if errors:
            raise user_error([FieldError(e.get("field"), e["code"], e["message"]) for e in errors])
        return parse(payload)

    return read


RECORD_ACTION = """
mutation($input: RecordActionInput!) {
  recordAction(input: $input) {
    action { id attribution }
    referral { id status }
    rewards { id recipient kind status amount unit customer { externalId } coupon { code } }
    replayed
    userErrors { field code message }
  }
}"""


def record_action(
    *,
    type: str,
    customer_external_id: str,
    idempotency_key: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    order_id: str | None = None,
    occurred_at: datetime | None = None,
    program_id: str | None = None,
    referral_code: str | None = None,
    attribution_token: str | None = None,
    attribution: Mapping[str, Any] | None = None,
    customer_name: str | None = None,
    context: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Request[RecordedAction]:
    """A SIGNUP, PURCHASE, REFUND... of a customer. `amount` in minor units (cents).

    `idempotency_key`: a retry with the same key returns the first result. Give one derived
    from your own data ("order-1001") so that your retries are safe too; without one, the
    client makes a random key, used for its own retries of this call.

    `attribution`: what the widget's `Referral.getAttribution()` returned in the browser (the
    token or code, device id and fingerprint), passed through as it is."""
    ctx = _camel_keys(context or {})
    if attribution:
        attribution_token = attribution_token or attribution.get("attributionToken")
        if not attribution_token:
            referral_code = referral_code or attribution.get("code")
        ctx.setdefault("deviceId", attribution.get("deviceId"))
        ctx.setdefault("deviceFingerprint", attribution.get("deviceFingerprint"))
    values = {
        "type": type,
        "customerExternalId": customer_external_id,
        "idempotencyKey": idempotency_key or f"rc-{uuid.uuid4()}",
        "amount": amount,
        "currency": currency,
        "orderId": order_id,
        "occurredAt": occurred_at.isoformat() if occurred_at else None,
        "programId": program_id,
        "referralCode": referral_code,
        "attributionToken": attribution_token,
        "customerName": customer_name,
        "context": {k: v for k, v in ctx.items() if v is not None} or None,
        "metadata": dict(metadata) if metadata is not None else None,
    }

    def parse(payload: dict[str, Any]) -> RecordedAction:
        referral = payload.get("referral") or {}
        return RecordedAction(
            action_id=payload["action"]["id"],
            attribution=payload["action"]["attribution"],
            referral_id=referral.get("id"),
            referral_status=referral.get("status"),
            replayed=payload["replayed"],
            rewards=[Reward.of(r) for r in payload.get("rewards") or []],
        )

    input_ = {k: v for k, v in values.items() if v is not None}
    return Request(RECORD_ACTION, {"input": input_}, "recordAction", _payload(parse))


UPSERT_CUSTOMER = """
mutation($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) { customer { id externalId email name } userErrors { field code message } }
}"""


def upsert_customer(
    external_id: str, *, email: str | None = None, name: str | None = None, metadata: Mapping[str, Any] | None = None
) -> Request[Customer]:
    """Create the customer or update the given fields (None leaves a field as it is)."""
    values = {"externalId": external_id, "email": email, "name": name, "metadata": dict(metadata) if metadata else None}

    def parse(payload: dict[str, Any]) -> Customer:
        c = payload["customer"]
        return Customer(id=c["id"], external_id=c["externalId"], email=c["email"], name=c["name"])

    input_ = {k: v for k, v in values.items() if v is not None}
    return Request(UPSERT_CUSTOMER, {"input": input_}, "upsertCustomer", _payload(parse))


ISSUE_CODE = """
mutation($input: IssueReferralCodeInput!) {
  issueReferralCode(input: $input) { referralCode { code shareUrl active } userErrors { field code message } }
}"""


def issue_referral_code(*, program_id: str, customer_external_id: str, vanity: str | None = None) -> Request[ReferralCode]:
    """The customer's active code in the program; the same one on every call."""
    values = {"programId": program_id, "customerExternalId": customer_external_id, "vanity": vanity}

    def parse(payload: dict[str, Any]) -> ReferralCode:
        c = payload["referralCode"]
        return ReferralCode(code=c["code"], share_url=c["shareUrl"], active=c["active"])

    input_ = {k: v for k, v in values.items() if v is not None}
    return Request(ISSUE_CODE, {"input": input_}, "issueReferralCode", _payload(parse))
