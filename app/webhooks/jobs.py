"""The webhook jobs: one delivery attempt per job."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import get_settings
from app.webhooks import delivery
from app.worker.registry import job


@job("webhooks.deliver", max_attempts=5, own_transactions=True)
async def deliver(factory: async_sessionmaker[AsyncSession], delivery_id: str | None = None, attempt: str | None = None) -> None:
    """An HTTP failure does not raise (the retry is a new delayed job, see
    app.webhooks.delivery); an exception here is our own fault and dramatiq retries it.
    The HTTP request is made outside any transaction (it may take 10 s)."""
    if delivery_id is None:
        return
    await delivery.deliver(
        factory, uuid.UUID(delivery_id), attempt=int(attempt) if attempt is not None else None, settings=get_settings()
    )
