"""Who a referrer-facing call is for: with the merchant's secret key (or an admin session)
the customer named by external id; from a browser (publishable key) only a customer the
shop's server signed for the widget (app.widget.identity), so a visitor cannot act or read
as another referrer."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import DomainError, ErrorCode
from app.referrals import customers
from app.referrals.models import Customer
from app.widget import identity
from app.widget import service as widget_service


async def referrer(
    session: AsyncSession,
    *,
    merchant_id: uuid.UUID,
    external_id: str,
    timestamp: int | None,
    signature: str | None,
    signed_only: bool,
    app_settings: Settings,
) -> Customer:
    external_id = customers.external_id(external_id)
    if signed_only or signature is not None:
        if timestamp is None or signature is None:
            raise DomainError(
                "signature", ErrorCode.REQUIRED, "a browser call needs the widget's signed customer (timestamp, signature)"
            )
        signed = identity.SignedCustomer(external_id=external_id, timestamp=timestamp, signature=signature[:128])
        secrets = await widget_service.signing_secrets(session, merchant_id=merchant_id, app_settings=app_settings)
        identity.verify(signed, secrets, utcnow())
    return await customers.require_customer(session, merchant_id=merchant_id, external_id=external_id, field="customerExternalId")
