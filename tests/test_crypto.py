"""Secrets at rest: bound to their row, readable under every configured key, and rotated by
`referral secrets reencrypt` so an old key can be dropped."""

from __future__ import annotations

import base64
import dataclasses
import os
import uuid

import pytest
from sqlalchemy import select

from app import crypto
from app.db import create_session_factory
from app.payouts import accounts
from app.payouts.models import PayoutAccount
from app.reencrypt import reencrypt_all
from app.webhooks import service as webhooks
from app.webhooks import signing
from app.webhooks.models import WebhookEndpoint
from tests.conftest import test_settings as make_settings
from tests.payouts import helpers as h


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_value_decrypts_only_in_its_own_place_and_under_a_configured_key():
    settings = make_settings(encryption_keys=f"k1:{key()}")
    ring = crypto.keyring(settings)
    stored = ring.encrypt("JBSWY3DPEHPK3PXP", context="totp:1")
    assert stored.startswith("v2:k1:") and "JBSWY3DPEHPK3PXP" not in stored
    assert ring.decrypt(stored, context="totp:1") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(crypto.UnreadableSecret):
        ring.decrypt(stored, context="totp:2")  # copied into another admin's row
    with pytest.raises(crypto.UnreadableSecret):
        crypto.keyring(make_settings(encryption_keys=f"k1:{key()}")).decrypt(stored, context="totp:1")  # another k1
    with pytest.raises(crypto.UnreadableSecret):
        crypto.keyring(make_settings()).decrypt(stored, context="totp:1")  # k1 not configured
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(crypto.UnreadableSecret):
        ring.decrypt(tampered, context="totp:1")
    for bad in ("k1:short", f"s0:{key()}", "nocolon", f"k1:{key()},k1x"):
        with pytest.raises(ValueError):
            crypto.parse_keys(bad)


async def test_rotation_rewrites_every_secret_so_the_old_key_can_go(db, tenant):
    old, new = f"k1:{key()}", f"k2:{key()}"
    before = make_settings(encryption_keys=old)
    await tenant.gql("""mutation { upsertCustomer(input: {externalId: "jane"}) { customer { id } } }""")
    factory = create_session_factory(db)
    async with factory() as session:
        account = await accounts.set_account(
            session,
            settings=before,
            merchant_id=tenant.id,
            customer_external_id="jane",
            actor=accounts.audit.SYSTEM,
            data=accounts.AccountInput(method=accounts.PayoutMethod.PAYPAL, paypal_email="jane@example.com"),
        )
        endpoint = await webhooks.create_endpoint(
            session, merchant_id=tenant.id, settings=before, url="https://hooks.example/x", event_types=["payout.paid"]
        )
        legacy = await webhooks.create_endpoint(
            session, merchant_id=tenant.id, settings=before, url="https://hooks.example/y", event_types=["payout.paid"]
        )
        row = await session.get_one(WebhookEndpoint, legacy.endpoint.id)
        row.secret_encrypted = signing.encrypt_legacy(legacy.secret, before.secret_key)  # stored by the first release
        await session.commit()
    person = await h.make_admin(tenant)
    await tenant.gql(h.START_TOTP, key=person.token)  # a pending seed, under the SECRET_KEY-derived key

    rotated = make_settings(encryption_keys=f"{new},{old}")
    counts = await reencrypt_all(factory, rotated)
    assert counts == {
        "admins.totp_secret_encrypted": 0,
        "admins.totp_pending_encrypted": 1,
        "payout_accounts.details_encrypted": 1,
        "webhook_endpoints.secret_encrypted": 2,
        "webhook_endpoints.previous_secret_encrypted": 0,
    }
    assert (await reencrypt_all(factory, rotated))["payout_accounts.details_encrypted"] == 0  # nothing left to do

    only_new = dataclasses.replace(make_settings(encryption_keys=new), secret_key="a-new-secret-key")
    async with factory() as session:
        stored = await session.scalar(select(PayoutAccount).where(PayoutAccount.id == account.id))
        assert stored.details_encrypted.startswith("v2:k2:")
        assert accounts.details_of(only_new, stored) == {"email": "jane@example.com"}
        for issued in (endpoint, legacy):
            found = await session.get_one(WebhookEndpoint, issued.endpoint.id)
            assert signing.decrypt(found.secret_encrypted, only_new, found.id) == issued.secret
    assert uuid.UUID(person.id)
