"""Signed, expiring links to batch files: `GET /payouts/batches/<id>.csv?merchant=...&expires=...&signature=...`.

The `payoutBatch(id)` query (FINANCE or OWNER session) hands out the link; whoever holds it
can download the file until it expires (PAYOUT_DOWNLOAD_MINUTES, 15 by default), so it can
go to a browser or a script without a session token. Every download through a link is
counted on the batch and audited. The links themselves: `app/signed_links.py`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.config import Settings
from app.db import utcnow
from app.errors import NotFound
from app.merchants import audit
from app.payouts import providers
from app.payouts.models import PayoutBatch
from app.signed_links import SignedLinks, merchant_session

logger = logging.getLogger("app.payouts")
ROUTE = "/payouts/batches/{batch_id}.csv"
LINKS = SignedLinks(purpose=b"referral payout batch download links", path=ROUTE, id_param="batch_id")


def signed_url(settings: Settings, batch: PayoutBatch, now: datetime | None = None) -> tuple[str, datetime]:
    """The batch file's link and when it expires (PAYOUT_DOWNLOAD_MINUTES from now, to the second)."""
    expires_at = ((now or utcnow()) + timedelta(minutes=settings.payout_download_minutes)).replace(microsecond=0)
    url = LINKS.url(
        settings, base_url=settings.base_url, merchant_id=batch.merchant_id, object_id=batch.id, expires_at=expires_at
    )
    return url, expires_at


async def download(request: Request) -> Response:
    """The Starlette endpoint behind ROUTE."""
    settings: Settings = request.app.state.settings
    target = LINKS.check(request, refused="this link is invalid or has expired: ask for a new one (payoutBatch)")
    if isinstance(target, Response):
        return target
    merchant_id, batch_id = target.merchant_id, target.object_id
    async with merchant_session(request, merchant_id) as session:
        try:
            file = await providers.batch_file(session, settings=settings, merchant_id=merchant_id, batch_id=batch_id)
        except NotFound:
            return PlainTextResponse("not found", status_code=404)
        await session.execute(
            update(PayoutBatch)
            .where(PayoutBatch.id == batch_id)
            .values(download_count=PayoutBatch.download_count + 1, last_downloaded_at=utcnow())
        )
        ip = request.client.host if request.client else None
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=audit.Actor(ip=ip),
            action="payout_batch.downloaded",
            subject_id=batch_id,
            details={"via": "signed link", "ip": ip},
        )
        await session.commit()
    return Response(
        file.content,
        media_type=file.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"', "Cache-Control": "no-store"},
    )
