"""Whom a partner operation is for (app.partners.service.partner_caller): the merchant's own
credentials act for the customer they name; a publishable key only with the shop's signature.
The signed path is covered end to end in test_partners.py and test_reports.py."""

from __future__ import annotations

import uuid

import pytest

from app.config import Settings
from app.errors import DomainError, ErrorCode
from app.merchants.models import ApiKeyKind
from app.partners.service import PartnerCaller, partner_caller


async def whom(key_kind: ApiKeyKind | None, named: str | None) -> PartnerCaller:
    # No signature to check on these paths: nothing is read from the database.
    return await partner_caller(
        None,  # type: ignore[arg-type]
        merchant_id=uuid.uuid4(),
        key_kind=key_kind,
        signed=None,
        named=named,
        app_settings=Settings(),
    )


@pytest.mark.parametrize("key_kind", [ApiKeyKind.SECRET, None], ids=["secret key", "console session"])
async def test_the_merchants_own_credentials_act_for_the_customer_they_name(key_kind):
    assert await whom(key_kind, "ann") == PartnerCaller(external_id="ann", signed_in=False)

    nobody = await whom(key_kind, None)
    with pytest.raises(DomainError) as refused:
        nobody.required("whose statement?")
    assert (refused.value.field, refused.value.code, refused.value.message) == (
        "customerExternalId",
        ErrorCode.REQUIRED,
        "whose statement?",
    )


async def test_a_publishable_key_alone_is_never_a_partner_session():
    with pytest.raises(DomainError) as refused:
        await whom(ApiKeyKind.PUBLISHABLE, "ann")
    assert (refused.value.field, refused.value.code) == ("signature", ErrorCode.REQUIRED)
