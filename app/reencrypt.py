"""`referral secrets reencrypt`: rewrite every stored secret under the first key of
ENCRYPTION_KEYS, so older keys can be dropped (see app.crypto). Safe to run again and while
the API serves: each row is rewritten in its own short transaction, locked meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crypto
from app.config import Settings
from app.merchants.models import Admin
from app.payouts.models import PayoutAccount
from app.webhooks import signing
from app.webhooks.models import WebhookEndpoint

Row = Admin | PayoutAccount | WebhookEndpoint  # the models with encrypted columns


@dataclass(frozen=True)
class Column:
    model: type[Row]
    name: str
    context: Callable[[Row], str]  # the associated data of a row's value (see app.crypto)


COLUMNS = (
    Column(Admin, "totp_secret_encrypted", lambda row: f"totp:{row.id}"),
    Column(Admin, "totp_pending_encrypted", lambda row: f"totp_pending:{row.id}"),
    Column(PayoutAccount, "details_encrypted", lambda row: f"payout_account:{row.id}"),
    Column(WebhookEndpoint, "secret_encrypted", lambda row: f"webhook_secret:{row.id}"),
    Column(WebhookEndpoint, "previous_secret_encrypted", lambda row: f"webhook_secret:{row.id}"),
)


def _plaintext(column: Column, row: Row, stored: str, settings: Settings) -> str:
    if column.model is WebhookEndpoint:  # may still be in the first (v1) format
        return signing.decrypt(stored, settings, row.id)
    return crypto.keyring(settings).decrypt(stored, context=column.context(row))


async def reencrypt_all(factory: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, int]:
    """Returns how many values each column had rewritten."""
    ring = crypto.keyring(settings)
    counts: dict[str, int] = {}
    for column in COLUMNS:
        attribute = getattr(column.model, column.name)
        key = f"{column.model.__tablename__}.{column.name}"
        counts[key] = 0
        async with factory() as session:
            ids = list((await session.scalars(select(column.model.id).where(attribute.is_not(None)))).all())
        for row_id in ids:
            async with factory() as session:
                row = await session.scalar(select(column.model).where(column.model.id == row_id).with_for_update())
                stored = getattr(row, column.name) if row is not None else None
                if not isinstance(row, Row) or stored is None or ring.is_current(stored):
                    continue
                setattr(row, column.name, ring.encrypt(_plaintext(column, row, stored, settings), context=column.context(row)))
                await session.commit()
                counts[key] += 1
    return counts
