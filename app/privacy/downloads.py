"""The one-time download of a customer data export: `GET /privacy/exports/<id>.json?merchant=...
&expires=...&signature=...`.

`customerDataExport(id)` (secret key) hands out the link while the export is READY; whoever
holds it can download the document once, until it expires (EXPORT_LINK_HOURS), so it can go to
a browser or a script without the API key. The signature is an HMAC (key derived from
SECRET_KEY) over the merchant, the export and the expiry; the download deletes the document in
the same transaction and is audited with the caller's IP.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import crypto
from app.config import Settings
from app.db import bind_tenant
from app.merchants import audit
from app.privacy import export
from app.privacy.models import CustomerDataExport

PATH = "/privacy/exports/{export_id}.json"


@lru_cache(maxsize=8)
def _key(secret_key: str) -> bytes:
    return crypto.derive(secret_key, b"referral customer export links v1")


def _signature(settings: Settings, merchant_id: uuid.UUID, export_id: uuid.UUID, expires: int) -> str:
    return hmac.new(_key(settings.secret_key), f"{merchant_id}:{export_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(settings: Settings, item: CustomerDataExport, base_url: str) -> str:
    """The link to a READY export, valid until the export expires. `base_url` is the API's
    public address (PUBLIC_URL, else the address the caller reached us at)."""
    assert item.expires_at is not None
    expires = int(item.expires_at.timestamp())
    query = urlencode({"merchant": str(item.merchant_id), "expires": expires,
                       "signature": _signature(settings, item.merchant_id, item.id, expires)})
    return f"{(settings.public_url or base_url).rstrip('/')}{PATH.format(export_id=item.id)}?{query}"


def link_of(settings: Settings, item: CustomerDataExport, base_url: str, now: datetime) -> str | None:
    """The link while the export can be downloaded, else None."""
    if item.status != export.ExportStatus.READY.value or item.expires_at is None or item.expires_at <= now:
        return None
    return signed_url(settings, item, base_url)


def _valid(settings: Settings, merchant_id: uuid.UUID, export_id: uuid.UUID, expires: str, signature: str) -> bool:
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(_signature(settings, merchant_id, export_id, int(expires)), signature)


async def download(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    params = request.query_params
    try:
        export_id = uuid.UUID(request.path_params["export_id"])
        merchant_id = uuid.UUID(params.get("merchant", ""))
    except ValueError:
        return PlainTextResponse("not found", status_code=404)
    if not _valid(settings, merchant_id, export_id, params.get("expires", ""), params.get("signature", "")):
        return PlainTextResponse("this link is invalid or has expired: request a new export", status_code=403)
    async with request.app.state.session_factory() as session:
        bind_tenant(session, merchant_id)  # the signature names the merchant: its rows only
        document = await export.take_document(session, merchant_id=merchant_id, export_id=export_id)
        if document is None:
            await session.rollback()
            return PlainTextResponse("this export was already downloaded, or has expired", status_code=410)
        ip = request.client.host if request.client else None
        await audit.record(
            session, merchant_id=merchant_id, actor=audit.SYSTEM, action="customer.export_downloaded",
            subject_id=export_id, details={"via": "signed link", "ip": ip},
        )
        await session.commit()
    return Response(
        document, media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="customer-export-{export_id}.json"',
                 "Cache-Control": "no-store"},
    )


def routes() -> list[Route]:
    return [Route(PATH, download, methods=["GET"])]
