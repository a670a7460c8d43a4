"""The rollup job: every few minutes, each merchant's rollups are brought up to date."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics import rollup
from app.worker.registry import job

logger = logging.getLogger("app.analytics")
ROLLUP_EVERY = timedelta(minutes=5)


@job("analytics.rollup", every=ROLLUP_EVERY, own_transactions=True)
async def roll_up_all(factory: async_sessionmaker[AsyncSession]) -> None:
    """One transaction per merchant, so one merchant's failure does not hold back the others;
    a merchant's state row is locked, so two workers never recount the same merchant at once."""
    async with factory() as session:
        merchant_ids = await rollup.merchant_ids(session)
    for merchant_id in merchant_ids:
        try:
            async with factory() as session:
                await rollup.roll_up(session, merchant_id=merchant_id)
                await session.commit()
        except Exception:
            logger.exception("analytics rollup failed", extra={"merchant_id": str(merchant_id)})
