"""Payouts at scale on PostgreSQL: a scheduled run over N customers, and approving 500
payouts with a second factor.

    .venv/bin/python bench/payouts_bench.py [--customers 10000] [--approve 500] [--database postgresql|sqlite] [--keep]

A fresh database (migrated by alembic, dropped at the end) is seeded with one merchant, one
program paying commission, and `--customers` referrers, each with 1 to 3 AVAILABLE commission
rewards (USD, each with its referral, triggering purchase and GRANT ledger transaction, as a
grant books them) and a payout account (encrypted) that has cooled off. The seed uses bulk
INSERTs and is checked with `referral ledger verify`; it sets the scale, it is not measured.

Measured, in-process, as the worker and the API run them:

1. the scheduled run: `start_due_runs` then every chunk (`run_chunk`, 500 customers, each
   its own committed transaction, as one `payouts.run_chunk` job each);
2. `approvePayouts` of `--approve` of the run's payouts in one call through GraphQL (HTTP in
   process, a FINANCE session, a TOTP code), and the service call alone;
3. the `payouts.send` job that puts them in a Wise batch, and building that CSV file.

Finally `referral ledger verify` must find nothing wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pyotp
from schwifty import IBAN
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import crypto  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import create_engine, create_session_factory, new_id, utcnow  # noqa: E402
from app.main import create_app  # noqa: E402
from app.merchants import admins, audit, totp  # noqa: E402
from app.merchants import service as merchants  # noqa: E402
from app.merchants.models import AdminRole, ApiKeyKind  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from app.payouts import accounts, providers, reconcile, runs  # noqa: E402
from app.payouts.models import Frequency, Payout, PayoutAccount, PayoutSchedule  # noqa: E402
from app.referrals import programs  # noqa: E402
from app.referrals.models import Action, Customer, ProgramStatus, Referral, ReferralCode  # noqa: E402
from app.rewards import rules  # noqa: E402
from app.rewards.models import AccountType, LedgerAccount, LedgerEntry, LedgerTransaction, Recipient, Reward, RewardKind  # noqa: E402
from app.rewards.rules import RuleDefinition, RuleSpec  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SETTINGS = Settings(app_env="test", secret_key="bench-secret", argon2_time_cost=1, argon2_memory_kib=1024)


async def create_database(kind: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        path = Path(f"/tmp/payouts-bench-{uuid.uuid4().hex[:8]}.db")
        return f"sqlite+aiosqlite:///{path}", None
    name = f"payouts_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


async def drop_database(name: str | None) -> None:
    if name is None:
        return
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


async def seed(factory, customers: int) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The merchant, its program and `customers` referrers with commission and an account."""
    now = utcnow()
    async with factory() as session:
        merchant = await merchants.create_merchant(session, name="Bench Shop")
        secret = await merchants.create_api_key(session, merchant_id=merchant.id, kind=ApiKeyKind.SECRET)
        program = await programs.create_program(
            session, merchant_id=merchant.id, changes=programs.ProgramChanges(name="Affiliates", status=ProgramStatus.ACTIVE)
        )
        rule = await rules.create_rule(
            session,
            merchant_id=merchant.id,
            program_id=program.id,
            definition=RuleDefinition(
                name="10%",
                trigger="PURCHASE",
                recipient=Recipient.REFERRER,
                kind=RewardKind.COMMISSION,
                spec=RuleSpec(percent_bps=1000),
            ),
        )
        await session.commit()
    rng = random.Random(7)
    ring = crypto.keyring(SETTINGS)
    program_account = new_id()
    rows: dict[str, list[dict]] = {
        name: []
        for name in (
            "customers",
            "codes",
            "referrals",
            "actions",
            "rewards",
            "accounts",
            "transactions",
            "entries",
            "payout_accounts",
        )
    }
    rows["accounts"].append(
        dict(
            id=program_account,
            merchant_id=merchant.id,
            owner_type="PROGRAM",
            owner_id=program.id,
            kind="COMMISSION",
            account_type=AccountType.PROGRAM_REWARDS.value,
            unit="USD",
            balance=0,
        )
    )
    program_total = 0
    for n in range(customers):
        referrer, code_id = new_id(), new_id()
        rows["customers"].append(
            dict(id=referrer, merchant_id=merchant.id, external_id=f"aff-{n:06d}", created_at=now, updated_at=now)
        )
        rows["codes"].append(
            dict(
                id=code_id,
                merchant_id=merchant.id,
                program_id=program.id,
                customer_id=referrer,
                code=f"C{n:07d}",
                active=True,
                is_vanity=False,
                created_at=now,
            )
        )
        account_id, balance = new_id(), 0
        for k in range(rng.randint(1, 3)):
            referee, referral, action, reward, tx = new_id(), new_id(), new_id(), new_id(), new_id()
            amount = rng.randint(500, 5000)
            balance += amount
            rows["customers"].append(
                dict(id=referee, merchant_id=merchant.id, external_id=f"ref-{n:06d}-{k}", created_at=now, updated_at=now)
            )
            rows["referrals"].append(
                dict(
                    id=referral,
                    merchant_id=merchant.id,
                    program_id=program.id,
                    referrer_id=referrer,
                    referee_id=referee,
                    code_id=code_id,
                    source="CODE",
                    status="QUALIFIED",
                    created_at=now,
                    referred_at=now,
                    qualified_at=now,
                )
            )
            rows["actions"].append(
                dict(
                    id=action,
                    merchant_id=merchant.id,
                    customer_id=referee,
                    program_id=program.id,
                    referral_id=referral,
                    type="PURCHASE",
                    idempotency_key=f"o-{n}-{k}",
                    request_hash="x",
                    amount=amount * 10,
                    currency="USD",
                    order_id=f"o-{n}-{k}",
                    occurred_at=now,
                    created_at=now,
                    attribution_status="REFERRAL_CREATED",
                )
            )
            rows["rewards"].append(
                dict(
                    id=reward,
                    merchant_id=merchant.id,
                    program_id=program.id,
                    rule_id=rule.rule_id,
                    rule_version_id=rule.id,
                    referral_id=referral,
                    trigger_action_id=action,
                    recipient="REFERRER",
                    customer_id=referrer,
                    kind="COMMISSION",
                    amount=amount,
                    unit="USD",
                    remaining=amount,
                    reversed_amount=0,
                    status="AVAILABLE",
                    review_hold=False,
                    awaiting_coupon=False,
                    created_at=now,
                    available_at=now,
                )
            )
            rows["transactions"].append(
                dict(id=tx, merchant_id=merchant.id, kind="GRANT", reward_id=reward, customer_id=referrer, created_at=now)
            )
            rows["entries"] += [
                dict(
                    id=new_id(),
                    merchant_id=merchant.id,
                    transaction_id=tx,
                    account_id=program_account,
                    amount=-amount,
                    unit="USD",
                    created_at=now,
                ),
                dict(
                    id=new_id(),
                    merchant_id=merchant.id,
                    transaction_id=tx,
                    account_id=account_id,
                    amount=amount,
                    unit="USD",
                    created_at=now,
                ),
            ]
            program_total -= amount
        rows["accounts"].append(
            dict(
                id=account_id,
                merchant_id=merchant.id,
                owner_type="CUSTOMER",
                owner_id=referrer,
                kind="COMMISSION",
                account_type="AVAILABLE",
                unit="USD",
                balance=balance,
            )
        )
        payout_account = new_id()
        iban = IBAN.generate("DE", bank_code="37040044", account_code=str(1000000 + n))
        details = {"iban": iban.compact, "bic": None, "holderName": f"Affiliate {n}"}
        rows["payout_accounts"].append(
            dict(
                id=payout_account,
                merchant_id=merchant.id,
                customer_id=referrer,
                method="BANK_TRANSFER",
                details_encrypted=ring.encrypt(json.dumps(details), context=f"payout_account:{payout_account}"),
                masked=f"DE•• {iban.compact[-4:]}",
                fingerprint=accounts.fingerprint(SETTINGS, f"iban:{iban.compact}", referrer),
                cooling_off_until=now - timedelta(hours=1),
                created_at=now - timedelta(days=4),
            )
        )
    models = {
        "customers": Customer,
        "codes": ReferralCode,
        "referrals": Referral,
        "actions": Action,
        "rewards": Reward,
        "accounts": LedgerAccount,
        "transactions": LedgerTransaction,
        "entries": LedgerEntry,
        "payout_accounts": PayoutAccount,
    }
    async with factory() as session:
        for name in (
            "customers",
            "codes",
            "referrals",
            "actions",
            "rewards",
            "accounts",
            "transactions",
            "entries",
            "payout_accounts",
        ):
            for start in range(0, len(rows[name]), 5000):
                await session.execute(insert(models[name]), rows[name][start : start + 5000])
        session.add(
            PayoutSchedule(
                merchant_id=merchant.id,
                program_id=program.id,
                frequency=Frequency.MONTHLY.value,
                day=1,
                minimums={"USD": 1000},
                enabled=True,
                updated_at=now,
            )
        )
        await session.commit()
    return merchant.id, program.id, secret.plaintext


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--approve", type=int, default=500)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url, name = await create_database(args.database)
    engine = create_engine(url, pool_size=5)
    try:
        await upgrade(engine)
        factory = create_session_factory(engine)
        started = time.perf_counter()
        merchant_id, program_id, _ = await seed(factory, args.customers)
        print(f"seeded {args.customers} customers in {time.perf_counter() - started:.1f} s")
        async with factory() as session:
            assert await reconcile.verify(session, merchant_id=merchant_id) == [], "the seed is not a consistent ledger"

        # 1. the scheduled run
        started = time.perf_counter()
        async with factory() as session:
            [run] = await runs.start_due_runs(session)
            await session.commit()
        chunks, after = 0, None
        while True:
            async with factory() as session:
                after = await runs.run_chunk(session, run_id=run.id, after=after)
                await session.commit()
            chunks += 1
            if after is None:
                break
        elapsed = time.perf_counter() - started
        async with factory() as session:
            made = len((await session.scalars(select(Payout.id).where(Payout.run_id == run.id))).all())
        print(
            f"scheduled run: {made} payouts for {args.customers} customers in {elapsed:.2f} s "
            f"({chunks} chunks of {runs.CHUNK}; {elapsed / chunks * 1000:.0f} ms per chunk)"
        )

        # 2. approving N payouts: a FINANCE admin with a session and TOTP
        async with factory() as session:
            issued = await admins.create_admin(
                session, merchant_id=merchant_id, email="finance@bench.example", role=AdminRole.FINANCE, actor=audit.SYSTEM
            )
            await admins.complete_setup(session, settings=SETTINGS, token=issued.token, password="a long bench password 42")
            enrollment = await totp.start_enrollment(
                session, settings=SETTINGS, merchant_id=merchant_id, admin_id=issued.admin.id
            )
            await session.commit()
            await totp.confirm_enrollment(
                session,
                settings=SETTINGS,
                merchant_id=merchant_id,
                admin_id=issued.admin.id,
                code=pyotp.TOTP(enrollment.secret).at(utcnow() - timedelta(seconds=30)),
                proof=totp.Proof(),
                actor=audit.SYSTEM,
            )
            await session.commit()
            chosen = list(
                (
                    await session.scalars(
                        select(Payout)
                        .where(Payout.run_id == run.id, Payout.status == "PENDING_APPROVAL")
                        .order_by(Payout.id)
                        .limit(args.approve * 2)
                    )
                ).all()
            )
        http_batch, service_batch = chosen[: args.approve], chosen[args.approve : args.approve * 2]
        app = create_app(SETTINGS, engine=engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            login = (
                await client.post(
                    "/graphql",
                    json={
                        "query": """mutation { login(email: "finance@bench.example",
                password: "a long bench password 42") { token } }"""
                    },
                )
            ).json()["data"]["login"]["token"]
            query = """mutation($ids: [ID!]!, $totals: [CurrencyAmountInput!]!, $code: String!) {
                approvePayouts(ids: $ids, expectedTotals: $totals, totpCode: $code) { approvedCount userErrors { code message } } }"""
            variables = {
                "ids": [str(p.id) for p in http_batch],
                "code": pyotp.TOTP(enrollment.secret).now(),
                "totals": [{"currency": "USD", "amount": sum(p.amount for p in http_batch)}],
            }
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {login}"}
            )
            elapsed = time.perf_counter() - started
        body = response.json()
        assert body["data"]["approvePayouts"]["approvedCount"] == len(http_batch), body
        print(f"approvePayouts of {len(http_batch)} payouts through GraphQL: {elapsed * 1000:.0f} ms")

        if service_batch:
            from app.payouts import approvals

            started = time.perf_counter()
            async with factory() as session:
                result = await approvals.approve(
                    session,
                    settings=SETTINGS,
                    merchant_id=merchant_id,
                    admin_id=issued.admin.id,
                    payout_ids=[p.id for p in service_batch],
                    expected_totals={"USD": sum(p.amount for p in service_batch)},
                    proof=totp.Proof(totp_code=pyotp.TOTP(enrollment.secret).at(utcnow() + timedelta(seconds=30))),
                    actor=audit.Actor(admin_id=issued.admin.id),
                )
                await session.commit()
            elapsed = time.perf_counter() - started
            assert result.refused is None and len(result.approved) == len(service_batch), result.refused
            print(f"approve of {len(service_batch)} payouts, the service alone (one transaction): {elapsed * 1000:.0f} ms")

        # 3. sending: the batch file
        started = time.perf_counter()
        async with factory() as session:
            batches = await providers.send_approved(session, merchant_id=merchant_id)
            await session.commit()
        print(
            f"payouts.send: {sum(b.payout_count for b in batches)} payouts into {len(batches)} batch(es) in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )
        started = time.perf_counter()
        async with factory() as session:
            file = await providers.batch_file(session, settings=SETTINGS, merchant_id=merchant_id, batch_id=batches[0].id)
        print(
            f"Wise CSV of {batches[0].payout_count} rows (decrypting each account): "
            f"{(time.perf_counter() - started) * 1000:.0f} ms, {len(file.content)} bytes"
        )

        async with factory() as session:
            problems = await reconcile.verify(session, merchant_id=merchant_id)
        print("ledger verify:", "ok" if not problems else problems[:5])
        assert program_id
    finally:
        await engine.dispose()
        if not args.keep:
            await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
