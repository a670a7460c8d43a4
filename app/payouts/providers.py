"""Executing approved payouts: which provider pays each one, and their files.

- PayPal accounts go into a **PayPal Payouts** batch file (Payouts Web upload: no header;
  recipient, amount, currency, customer id, note, wallet; one currency and at most 5,000
  rows per file).
- Bank transfers go into a **Wise batch** file ("send to bank accounts" template: name,
  recipientEmail, paymentReference, receiverType, amountCurrency, amount, sourceCurrency,
  targetCurrency, IBAN; at most 1,000 rows per batch). `amountCurrency` is `target`: the
  customer receives the exact amount, the fees are the merchant's.
- Store credit, custom methods, and every method when the merchant chose so, go to the
  **merchant's webhook**: `payout.approved` tells the merchant's system to pay, which then
  calls `markPayoutPaid` (or `markPayoutFailed`).

`send_approved` runs as the `payouts.send` job (queued by the approval, in its transaction):
it moves APPROVED payouts to PROCESSING, groups the file-based ones into batches and
announces every one with `payout.approved`. Files are built when downloaded, from the
encrypted accounts, and never stored.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import money
from app.config import Settings
from app.db import new_id, utcnow
from app.errors import NotFound
from app.pagination import Page, paginate
from app.payouts import accounts, service
from app.payouts.models import Payout, PayoutAccount, PayoutBatch, PayoutMethod, PayoutSettings, PayoutStatus, Provider
from app.webhooks import events

Row = list[str]


def _cell(value: str | None) -> str:
    """Free text in a file finance opens in a spreadsheet: never a formula."""
    text = (value or "").replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


@dataclass(frozen=True)
class FileProvider:
    """A provider paid through a batch file the merchant uploads: which accounts it pays, how
    many rows one file may hold, and the file's header and rows. A new file provider is a
    `Provider` member and one entry in FILE_PROVIDERS."""

    method: PayoutMethod  # the accounts it pays (unless the merchant executes every payout)
    max_rows: int
    file_kind: str  # the file name's first part
    header: Row | None
    row: Callable[[Payout, dict[str, str], str], Row]  # (payout, account details, amount as a decimal string)


FILE_PROVIDERS = {
    # PayPal Payouts Web upload: no header; recipient, amount, currency, customer id, note, wallet.
    Provider.PAYPAL_PAYOUTS_CSV: FileProvider(
        method=PayoutMethod.PAYPAL,
        max_rows=5000,
        file_kind="paypal-payouts",
        header=None,
        row=lambda payout, details, amount: [
            details["email"],
            amount,
            payout.currency,
            payout.reference,
            _cell(f"Referral payout {payout.reference}"),
            "PAYPAL",
        ],
    ),
    # Wise "send to bank accounts": the customer receives the exact amount (`target`), fees are the merchant's.
    Provider.WISE_BATCH_CSV: FileProvider(
        method=PayoutMethod.BANK_TRANSFER,
        max_rows=1000,
        file_kind="wise-batch",
        header=[
            "name",
            "recipientEmail",
            "paymentReference",
            "receiverType",
            "amountCurrency",
            "amount",
            "sourceCurrency",
            "targetCurrency",
            "IBAN",
        ],
        row=lambda payout, details, amount: [
            _cell(details["holderName"]),
            "",
            payout.reference,
            "PERSON",
            "target",
            amount,
            payout.currency,
            payout.currency,
            details["iban"],
        ],
    ),
}
_BY_METHOD = {entry.method: provider for provider, entry in FILE_PROVIDERS.items()}
MAX_SENT = 20_000  # payouts one job run moves to their providers


def provider_for(account: PayoutAccount, settings: PayoutSettings) -> Provider:
    """The file provider of the account's method; the merchant's webhook for the methods no file
    pays (store credit, custom) and for every method when the merchant executes payouts."""
    if settings.merchant_executes_all:
        return Provider.MERCHANT_WEBHOOK
    return _BY_METHOD.get(PayoutMethod(account.method), Provider.MERCHANT_WEBHOOK)


async def send_approved(session: AsyncSession, *, merchant_id: uuid.UUID) -> list[PayoutBatch]:
    """Hand the merchant's APPROVED payouts to their providers (see the module doc). Payouts
    another run has locked are left to it."""
    query = (
        select(Payout)
        .where(Payout.merchant_id == merchant_id, Payout.status == PayoutStatus.APPROVED)
        .order_by(Payout.id)
        .limit(MAX_SENT)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    payouts = list((await session.scalars(query.execution_options(populate_existing=True))).all())
    if not payouts:
        return []
    settings = await accounts.payout_settings(session, merchant_id=merchant_id)
    destinations = {
        a.id: a
        for a in (
            await session.scalars(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in payouts})))
        ).all()
    }
    now = utcnow()
    grouped: dict[tuple[Provider, str], list[Payout]] = defaultdict(list)
    for payout in payouts:
        provider = provider_for(destinations[payout.payout_account_id], settings)
        payout.provider = provider.value
        payout.status = PayoutStatus.PROCESSING
        payout.sent_at = payout.updated_at = now
        if provider is not Provider.MERCHANT_WEBHOOK:
            grouped[(provider, payout.currency)].append(payout)
    batches, members_of = [], {}
    for (provider, currency), members in sorted(grouped.items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
        max_rows = FILE_PROVIDERS[provider].max_rows
        for start in range(0, len(members), max_rows):
            chunk = members[start : start + max_rows]
            batch = PayoutBatch(
                id=new_id(),
                merchant_id=merchant_id,
                provider=provider.value,
                currency=currency,
                payout_count=len(chunk),
                total=sum(p.amount for p in chunk),
                created_at=now,
                download_count=0,
            )
            batches.append(batch)
            members_of[batch.id] = chunk
    session.add_all(batches)
    await session.flush()  # the batches before the payouts that name them (no relationship orders them)
    for batch in batches:
        for payout in members_of[batch.id]:
            payout.batch_id = batch.id
    await session.flush()
    await service.announce(session, events.PAYOUT_APPROVED, payouts)
    return batches


async def get_batch(session: AsyncSession, *, merchant_id: uuid.UUID, batch_id: uuid.UUID) -> PayoutBatch:
    batch = await session.scalar(select(PayoutBatch).where(PayoutBatch.id == batch_id, PayoutBatch.merchant_id == merchant_id))
    if batch is None:
        raise NotFound("id", "payout batch")
    return batch


async def list_batches(
    session: AsyncSession, *, merchant_id: uuid.UUID, first: int | None, after: str | None
) -> Page[PayoutBatch]:
    return await paginate(
        session, select(PayoutBatch).where(PayoutBatch.merchant_id == merchant_id), PayoutBatch.id, first=first, after=after
    )


@dataclass(frozen=True)
class BatchFile:
    filename: str
    content: str
    media_type: str = "text/csv"


async def batch_file(session: AsyncSession, *, settings: Settings, merchant_id: uuid.UUID, batch_id: uuid.UUID) -> BatchFile:
    """The provider's file for a batch, decrypted now (the only place payout details are)."""
    batch = await get_batch(session, merchant_id=merchant_id, batch_id=batch_id)
    payouts = list(
        (
            await session.scalars(
                select(Payout).where(Payout.batch_id == batch.id, Payout.merchant_id == merchant_id).order_by(Payout.id)
            )
        ).all()
    )
    destinations = {
        a.id: a
        for a in (
            await session.scalars(select(PayoutAccount).where(PayoutAccount.id.in_({p.payout_account_id for p in payouts})))
        ).all()
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    entry = FILE_PROVIDERS[Provider(batch.provider)]
    if entry.header is not None:
        writer.writerow(entry.header)
    for payout in payouts:
        details = accounts.details_of(settings, destinations[payout.payout_account_id])
        writer.writerow(entry.row(payout, details, money.decimal_string(payout.amount, payout.currency)))
    return BatchFile(
        filename=f"{entry.file_kind}-{batch.currency}-{batch.created_at:%Y%m%d}-{str(batch.id)[-8:]}.csv",
        content=buffer.getvalue(),
    )
