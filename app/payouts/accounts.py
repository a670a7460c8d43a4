"""Payout accounts: where a customer is paid, set by the merchant's server.

Details are encrypted at rest (app.crypto, bound to the account row) and only ever shown
masked; batch files decrypt them on download. A new or changed destination starts a
cooling-off period (the merchant's setting, 72 hours by default) during which payouts to it
cannot be approved, and is announced (`payout_account.changed`): a stolen API key that
redirects an affiliate's money is noticed before anything leaves. The destination's keyed
fingerprint is recorded for the fraud engine (`shared_payout_account`) and payout holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto, money, validation
from app.config import Settings
from app.db import new_id, utcnow
from app.errors import DomainError, ErrorCode
from app.fraud import identifiers
from app.merchants import audit
from app.payouts.models import DEFAULT_COOLING_OFF_HOURS, PayoutAccount, PayoutMethod, PayoutSettings
from app.referrals import customers
from app.referrals.emails import canonical_email
from app.referrals.models import Customer
from app.tenancy import scoped
from app.webhooks import events
from app.webhooks.service import emit

_CUSTOM_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_CUSTOM_DETAILS_BYTES = 2048


@dataclass(frozen=True)
class AccountInput:
    method: PayoutMethod
    paypal_email: str | None = None
    iban: str | None = None
    holder_name: str | None = None
    custom_type: str | None = None
    custom_details: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class Destination:
    details: dict[str, Any]  # what a provider needs; encrypted at rest
    masked: str  # what people see
    identity: str  # what makes two destinations the same (fingerprinted, never stored)


def _mask(value: str, keep: int = 4) -> str:
    return "•" * 4 + value[-keep:] if len(value) > keep else "•" * 4


def destination(data: AccountInput) -> Destination:
    """Validate the details of one method."""
    method = data.method
    if method is PayoutMethod.PAYPAL:
        email = validation.email(data.paypal_email, "paypalEmail")
        if email is None:
            raise DomainError("paypalEmail", ErrorCode.REQUIRED, "a PayPal account's email is required")
        local, _, domain = email.lower().rpartition("@")
        return Destination({"email": email}, f"{local[:1]}•••@{domain}", f"paypal:{canonical_email(email)}")
    if method is PayoutMethod.BANK_TRANSFER:
        raw = validation.required_text(data.iban, "iban", 64)
        try:
            iban = IBAN(raw)
        except SchwiftyException as error:
            raise DomainError("iban", ErrorCode.INVALID_IBAN, f"not a valid IBAN: {error}") from None
        holder = validation.required_text(data.holder_name, "holderName", 140)
        masked = f"{iban.compact[:4]} {_mask(iban.compact)} ({holder})"
        return Destination(
            {"iban": iban.compact, "bic": str(iban.bic) if iban.bic else None, "holderName": holder},
            masked,
            f"iban:{iban.compact}",
        )
    if method is PayoutMethod.STORE_CREDIT:
        return Destination({}, "store credit", "")  # the customer's own store account: never shared
    kind = validation.required_text(data.custom_type, "customType", 64)
    if not _CUSTOM_TYPE.match(kind):
        raise DomainError("customType", ErrorCode.INVALID_INPUT, "customType is letters, digits, '.', '_' or '-'")
    details = validation.json_object(data.custom_details, "customDetails") or {}
    encoded = json.dumps(details, sort_keys=True, separators=(",", ":"))
    if len(encoded.encode()) > MAX_CUSTOM_DETAILS_BYTES:
        raise DomainError("customDetails", ErrorCode.TOO_LONG, f"customDetails is larger than {MAX_CUSTOM_DETAILS_BYTES} bytes")
    target = str(details.get("destination") or encoded)
    return Destination({"type": kind, **details}, f"{kind} {_mask(target)}", f"custom:{kind}:{target.strip().lower()}")


@lru_cache(maxsize=8)
def _fingerprint_key(secret_key: str) -> bytes:
    return crypto.derive(secret_key, b"referral payout destination fingerprints")


def fingerprint(settings: Settings, identity: str, customer_id: uuid.UUID) -> str:
    """A keyed hash: equal for the same destination, useless to someone with a dump and a
    list of IBANs. Store credit is the customer's own, so it never matches another's."""
    value = identity or f"store_credit:{customer_id}"
    return hmac.new(_fingerprint_key(settings.secret_key), value.encode(), hashlib.sha256).hexdigest()


def _context(account_id: uuid.UUID) -> str:
    return f"payout_account:{account_id}"


def sealed_details(settings: Settings, account_id: uuid.UUID, details: dict[str, Any]) -> str:
    """Details as stored: encrypted, bound to their account row."""
    return crypto.keyring(settings).encrypt(json.dumps(details), context=_context(account_id))


def details_of(settings: Settings, account: PayoutAccount) -> dict[str, Any]:
    """The decrypted details (batch files only; never over the API)."""
    return json.loads(crypto.keyring(settings).decrypt(account.details_encrypted, context=_context(account.id)))


async def payout_settings(session: AsyncSession, *, merchant_id: uuid.UUID) -> PayoutSettings:
    """The merchant's settings, or the defaults (not stored)."""
    found = await session.get(PayoutSettings, merchant_id)
    return found or PayoutSettings(
        merchant_id=merchant_id,
        cooling_off_hours=DEFAULT_COOLING_OFF_HOURS,
        dual_approval_minimums={},
        merchant_executes_all=False,
    )


async def current_account(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_id: uuid.UUID, lock: bool = False
) -> PayoutAccount | None:
    query = scoped(
        select(PayoutAccount).where(PayoutAccount.customer_id == customer_id, PayoutAccount.superseded_at.is_(None)),
        merchant_id,
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def account_of(
    session: AsyncSession, *, merchant_id: uuid.UUID, customer_external_id: str
) -> tuple[Customer, PayoutAccount | None]:
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    return customer, await current_account(session, merchant_id=merchant_id, customer_id=customer.id)


async def set_account(
    session: AsyncSession,
    *,
    settings: Settings,
    merchant_id: uuid.UUID,
    customer_external_id: str,
    data: AccountInput,
    actor: audit.Actor,
    now: datetime | None = None,
) -> PayoutAccount:
    """Set where the customer is paid. The same destination again changes nothing (and starts
    no new cooling-off); another one supersedes the old account."""
    now = now or utcnow()
    target = destination(data)
    customer = await customers.require_customer(
        session, merchant_id=merchant_id, external_id=customers.external_id(customer_external_id), field="customerExternalId"
    )
    await session.execute(
        scoped(select(Customer.id).where(Customer.id == customer.id), merchant_id).with_for_update()
    )  # one at a time
    current = await current_account(session, merchant_id=merchant_id, customer_id=customer.id, lock=True)
    print_ = fingerprint(settings, target.identity, customer.id)
    if current is not None and current.fingerprint == print_ and current.method == data.method.value:
        if details_of(settings, current) == target.details:
            return current
        cooling_off_until = current.cooling_off_until  # same destination, new spelling of the name
    else:
        hours = (await payout_settings(session, merchant_id=merchant_id)).cooling_off_hours
        cooling_off_until = now + timedelta(hours=hours)
    if current is not None:
        current.superseded_at = now
        await session.flush()
    account_id = new_id()
    account = PayoutAccount(
        id=account_id,
        merchant_id=merchant_id,
        customer_id=customer.id,
        method=data.method.value,
        custom_type=target.details.get("type") if data.method is PayoutMethod.CUSTOM else None,
        details_encrypted=sealed_details(settings, account_id, target.details),
        masked=target.masked,
        fingerprint=print_,
        cooling_off_until=cooling_off_until,
        created_by_key_id=actor.key_id,
        created_by_admin_id=actor.admin_id,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    await identifiers.record_payout_destination(
        session, merchant_id=merchant_id, customer_id=customer.id, fingerprint=print_, at=now
    )
    previous = {"method": current.method, "masked": current.masked} if current is not None else None
    await audit.record(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action=events.PAYOUT_ACCOUNT_CHANGED,
        subject_id=customer.id,
        details={
            "account_id": str(account.id),
            "method": account.method,
            "masked": account.masked,
            "previous": previous,
            "cooling_off_until": cooling_off_until.isoformat() if cooling_off_until else None,
        },
    )
    await emit(
        session,
        merchant_id,
        events.PAYOUT_ACCOUNT_CHANGED,
        {
            "customerId": str(customer.id),
            "customerExternalId": customer.external_id,
            "accountId": str(account.id),
            "method": account.method,
            "customType": account.custom_type,
            "masked": account.masked,
            "coolingOffUntil": cooling_off_until.isoformat() if cooling_off_until else None,
            "previous": previous,
        },
    )
    return account


def cooling_off(account: PayoutAccount, now: datetime) -> bool:
    return account.cooling_off_until is not None and account.cooling_off_until > now


async def set_payout_settings(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    cooling_off_hours: int | None = None,
    dual_approval_minimums: dict[str, int] | None = None,
    merchant_executes_all: bool | None = None,
    actor: audit.Actor,
) -> PayoutSettings:
    """Change what is given; the rest stays. Audited (these are the merchant's money controls)."""
    validation.int_range(cooling_off_hours, "coolingOffHours", 0, 24 * 90)
    minimums = None
    if dual_approval_minimums is not None:
        minimums = {}
        for currency, amount in dual_approval_minimums.items():
            code = money.currency(currency, "dualApprovalMinimums")
            if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= money.MAX_AMOUNT:
                raise DomainError(
                    "dualApprovalMinimums", ErrorCode.INVALID_AMOUNT, "a minimum is a positive whole number of minor units"
                )
            minimums[code] = amount
    row = await session.scalar(select(PayoutSettings).where(PayoutSettings.merchant_id == merchant_id).with_for_update())
    if row is None:
        row = PayoutSettings(
            merchant_id=merchant_id,
            cooling_off_hours=DEFAULT_COOLING_OFF_HOURS,
            dual_approval_minimums={},
            merchant_executes_all=False,
        )
        session.add(row)
    before = {
        "cooling_off_hours": row.cooling_off_hours,
        "dual_approval_minimums": dict(row.dual_approval_minimums or {}),
        "merchant_executes_all": row.merchant_executes_all,
    }
    if cooling_off_hours is not None:
        row.cooling_off_hours = cooling_off_hours
    if minimums is not None:
        row.dual_approval_minimums = minimums
    if merchant_executes_all is not None:
        row.merchant_executes_all = merchant_executes_all
    row.updated_at = utcnow()
    await session.flush()
    after = {
        "cooling_off_hours": row.cooling_off_hours,
        "dual_approval_minimums": dict(row.dual_approval_minimums or {}),
        "merchant_executes_all": row.merchant_executes_all,
    }
    await audit.record(
        session, merchant_id=merchant_id, actor=actor, action="payout_settings.changed", details={"from": before, "to": after}
    )
    return row
