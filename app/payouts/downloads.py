"""Signed, expiring links to batch files: `GET /payouts/batches/<id>.csv?expires=...&signature=...`.

The `payoutBatch(id)` query (FINANCE or OWNER session) hands out the link; whoever holds it
can download the file until it expires (PAYOUT_DOWNLOAD_MINUTES, 15 by default), so it can
go to a browser or a script without a session token. Every download through a link is
counted on the batch and audited. The signature is an HMAC (key derived from SECRET_KEY)
over the merchant, the batch and the expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlencode

from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app import crypto
from app.config import Settings
from app.db import scope_to_merchant, utcnow
from app.errors import NotFound
from app.merchants import audit
from app.payouts import providers
from app.payouts.models import PayoutBatch

logger = logging.getLogger("app.payouts")
ROUTE = "/payouts/batches/{batch_id}.csv"


@lru_cache(maxsize=8)
def _key(secret_key: str) -> bytes:
    return crypto.derive(secret_key, b"referral payout batch download links")


def _signature(settings: Settings, merchant_id: uuid.UUID, batch_id: uuid.UUID, expires: int) -> str:
    message = f"{merchant_id}:{batch_id}:{expires}".encode()
    return hmac.new(_key(settings.secret_key), message, hashlib.sha256).hexdigest()


def signed_url(settings: Settings, batch: PayoutBatch, now: datetime | None = None) -> tuple[str, datetime]:
    expires_at = (now or utcnow()) + timedelta(minutes=settings.payout_download_minutes)
    expires = int(expires_at.timestamp())
    query = urlencode({"merchant": str(batch.merchant_id), "expires": expires,
                       "signature": _signature(settings, batch.merchant_id, batch.id, expires)})
    return f"{settings.base_url}{ROUTE.format(batch_id=batch.id)}?{query}", datetime.fromtimestamp(expires, UTC)


def _valid(settings: Settings, merchant_id: uuid.UUID, batch_id: uuid.UUID, expires: str, signature: str) -> bool:
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(_signature(settings, merchant_id, batch_id, int(expires)), signature)


async def download(request: Request) -> Response:
    """The Starlette endpoint behind ROUTE."""
    settings: Settings = request.app.state.settings
    params = request.query_params
    try:
        batch_id = uuid.UUID(request.path_params["batch_id"])
        merchant_id = uuid.UUID(params.get("merchant", ""))
    except ValueError:
        return PlainTextResponse("not found", status_code=404)
    if not _valid(settings, merchant_id, batch_id, params.get("expires", ""), params.get("signature", "")):
        return PlainTextResponse("this link is invalid or has expired: ask for a new one (payoutBatch)", status_code=403)
    async with request.app.state.session_factory() as session:
        await scope_to_merchant(session, merchant_id)  # the signed link names the merchant
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
        await audit.record(session, merchant_id=merchant_id, actor=audit.Actor(ip=ip), action="payout_batch.downloaded",
                           subject_id=batch_id, details={"via": "signed link", "ip": ip})
        await session.commit()
    return Response(
        file.content, media_type=file.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"', "Cache-Control": "no-store"},
    )
