"""Personal data at rest: ciphertext in the database, readable through the application, under
keys that rotate; rows stored before migration 0009 are encrypted by it."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from sqlalchemy import select, text

from app import crypto, personal
from app.db import create_engine, create_session_factory, new_id
from app.fraud.models import CustomerIdentifier
from app.migrations import upgrade
from app.personal import Encrypted
from app.referrals.models import Action, Click, Customer, ReferralCode
from app.rewards.models import Coupon
from tests.conftest import POSTGRES_ADMIN_URL, _create_postgres_database, _drop_postgres_database, system_connection
from tests.conftest import test_settings as make_settings
from tests.privacy.helpers import JANE, build_world

SECRET = personal.get_settings().secret_key  # the lookup hash key stays; only encryption keys rotate


async def test_the_database_holds_only_ciphertext(db, tenant):
    await build_world(tenant)
    async with system_connection(db) as connection:
        raw = (
            await connection.execute(
                text(
                    "SELECT c.email, c.email_canonical, c.name, c.metadata, a.ip, a.device_id, a.user_agent "
                    "FROM customers c JOIN actions a ON a.customer_id = c.id WHERE a.idempotency_key = 'signup-jane'"
                )
            )
        ).one()
        identifiers = (await connection.execute(text("SELECT value, value_hash FROM customer_identifiers"))).all()
        clicks = (await connection.execute(text("SELECT ip, device_id, device_id_hash FROM clicks"))).all()
    assert all(value.startswith("v2:s0:") for value in raw)
    dump = " ".join(map(str, raw)) + str(identifiers) + str(clicks)
    for plain in (JANE["email"], "janedoe@gmail.com", JANE["name"], "gold", "198.51.100.23", "dev-jane-9f2a", "203.0.113.7"):
        assert plain not in dump
    assert all(len(value_hash) == 64 for _, value_hash in identifiers) and all(len(h) == 64 for *_, h in clicks)
    async with create_session_factory(db)() as session:
        customer = await session.scalar(select(Customer).where(Customer.external_id == JANE["externalId"]))
    assert (customer.email, customer.name, customer.metadata_) == (JANE["email"], JANE["name"], JANE["metadata"])


def test_an_encrypted_column_cannot_be_compared_with_a_value():
    with pytest.raises(TypeError):
        Customer.email == "jane@example.com"  # noqa: B015
    assert str(Customer.email.is_(None)) == "customers.email IS NULL"


def test_a_value_does_not_decrypt_in_another_column():
    sealed = Encrypted("customers.email").process_bind_param("jane@example.com", None)
    assert Encrypted("customers.email").process_result_value(sealed, None) == "jane@example.com"
    with pytest.raises(crypto.UnreadableSecret):
        Encrypted("customers.name").process_result_value(sealed, None)


def test_lookup_hashes_are_per_merchant_and_kind():
    a, b = uuid.uuid4(), uuid.uuid4()
    assert personal.lookup_hash(a, "DEVICE", "d-1") == personal.lookup_hash(a, "DEVICE", "d-1")
    assert (
        len(
            {
                personal.lookup_hash(a, "DEVICE", "d-1"),
                personal.lookup_hash(b, "DEVICE", "d-1"),
                personal.lookup_hash(a, "PAYMENT", "d-1"),
            }
        )
        == 3
    )


async def test_keys_rotate_and_reencrypt_rewrites_every_value(db, tenant, monkeypatch):
    await build_world(tenant)
    old = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    new = f"k2:{base64.b64encode(os.urandom(32)).decode()}"
    monkeypatch.setattr(personal, "get_settings", lambda: make_settings(secret_key=SECRET, encryption_keys=old))
    rewritten = await personal.reencrypt(create_session_factory(db))  # s0 (SECRET_KEY) -> k1
    assert rewritten["customers.email"] >= 1 and rewritten["actions.ip"] >= 1
    monkeypatch.setattr(personal, "get_settings", lambda: make_settings(secret_key=SECRET, encryption_keys=f"{new},{old}"))
    async with create_session_factory(db)() as session:  # k1 still reads
        assert await session.scalar(select(Customer.email).where(Customer.external_id == JANE["externalId"])) == JANE["email"]
    rewritten = await personal.reencrypt(create_session_factory(db), batch=2)  # k1 -> k2, two rows at a time
    assert sum(rewritten.values()) >= 10
    assert sum((await personal.reencrypt(create_session_factory(db))).values()) == 0  # nothing left to do
    monkeypatch.setattr(personal, "get_settings", lambda: make_settings(secret_key=SECRET, encryption_keys=new))
    async with create_session_factory(db)() as session:  # k1 is gone: everything reads under k2
        customer = await session.scalar(select(Customer).where(Customer.external_id == JANE["externalId"]))
        actions = (await session.scalars(select(Action))).all()
        identifiers = (await session.scalars(select(CustomerIdentifier))).all()
    assert customer.email == JANE["email"] and customer.metadata_ == JANE["metadata"]
    assert "198.51.100.23" in {a.ip for a in actions} and all(i.value for i in identifiers)
    async with system_connection(db) as connection:
        assert all(
            v.startswith("v2:k2:")
            for v in (await connection.execute(text("SELECT email FROM customers WHERE email IS NOT NULL"))).scalars()
        )


async def _fresh_database(backend: str, tmp_path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", None
    name = await _create_postgres_database()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


async def test_rows_stored_before_0009_are_encrypted_hashed_and_keyed_by_it(backend, tmp_path, owner_engine):
    url, name = await _fresh_database(backend, tmp_path)
    engine = create_engine(url, pool_size=2)
    try:
        await upgrade(engine, "0007")
        m, c, p, code, other, click, action, ident, coupon = (new_id() for _ in range(9))  # in creation order
        async with engine.begin() as connection:
            run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
            ids = {
                k: (v.hex if backend == "sqlite" else v)
                for k, v in dict(
                    m=m, c=c, p=p, code=code, other=other, click=click, action=action, ident=ident, coupon=coupon
                ).items()
            }
            await run("INSERT INTO merchants (id, name, created_at) VALUES (:m, 'Old', CURRENT_TIMESTAMP)", **ids)
            await run(
                "INSERT INTO customers (id, merchant_id, external_id, email, email_canonical, name, metadata, created_at, "
                "updated_at) VALUES (:c, :m, 'jane', 'Jane@x.com', 'jane@x.com', 'علی', '{\"tier\": \"gold\"}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                **ids,
            )
            await run(
                "INSERT INTO programs (id, merchant_id, name, status, attribution_window_days, claim_window_days, code_style, "
                "code_length, created_at, updated_at) VALUES (:p, :m, 'P', 'ACTIVE', 30, 14, 'RANDOM', 8, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                **ids,
            )
            for code_id, text_ in ((code, "JANE-10"), (other, "JANE10")):
                await run(
                    "INSERT INTO referral_codes (id, merchant_id, program_id, customer_id, code, is_vanity, active, created_at) "
                    "VALUES (:id, :m, :p, :c, :text, true, false, CURRENT_TIMESTAMP)",
                    **ids,
                    id=code_id.hex if backend == "sqlite" else code_id,
                    text=text_,
                )
            await run(
                "INSERT INTO clicks (id, merchant_id, program_id, code_id, attribution_token, device_id, ip, user_agent, "
                "created_at, expires_at) VALUES (:click, :m, :p, :code, 'at_x', 'dev-1', '192.0.2.1', 'UA', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                **ids,
            )
            await run(
                "INSERT INTO actions (id, merchant_id, customer_id, type, idempotency_key, request_hash, occurred_at, "
                "created_at, attribution_status, ip, email, shipping_address) VALUES (:action, :m, :c, 'SIGNUP', 'k', 'h', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'NONE', '192.0.2.1', 'Jane@x.com', '{\"city\": \"Tehran\"}')",
                **ids,
            )
            await run(
                "INSERT INTO customer_identifiers (id, merchant_id, customer_id, kind, value, first_seen_at, last_seen_at) "
                "VALUES (:ident, :m, :c, 'DEVICE', 'dev-1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                **ids,
            )
            await run(
                "INSERT INTO coupons (id, merchant_id, code, status, created_at) VALUES (:coupon, :m, 'SPRING-10', "
                "'POOLED', CURRENT_TIMESTAMP)",
                **ids,
            )
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            customer = await session.get_one(Customer, c)
            assert (customer.email, customer.name, customer.metadata_) == ("Jane@x.com", "علی", {"tier": "gold"})
            action_row = await session.get_one(Action, action)
            assert (action_row.ip, action_row.shipping_address) == ("192.0.2.1", {"city": "Tehran"})
            click_row = await session.get_one(Click, click)
            assert click_row.device_id_hash == personal.lookup_hash(m, "DEVICE", "dev-1") and click_row.ip == "192.0.2.1"
            ident_row = await session.get_one(CustomerIdentifier, ident)
            assert ident_row.value == "dev-1" and ident_row.value_hash == personal.lookup_hash(m, "DEVICE", "dev-1")
            keys = {r.code: r.lookup_key for r in (await session.scalars(select(ReferralCode))).all()}
            assert keys == {"JANE-10": "jane10", "JANE10": None}  # the older one keeps the key; the newer is found exactly
            assert (await session.get_one(Coupon, coupon)).lookup_key == "spring10"
        async with engine.connect() as connection:
            raw = (await connection.execute(text("SELECT email FROM customers"))).scalar()
        assert raw.startswith("v2:") and "Jane" not in raw
    finally:
        await engine.dispose()
        if name is not None:
            await _drop_postgres_database(name)
