"""The one-time download of a customer data export: `GET /privacy/exports/<id>.json?merchant=...
&expires=...&signature=...`.

`customerDataExport(id)` (secret key) hands out the link while the export is READY; whoever
holds it can download the document once, until it expires (EXPORT_LINK_HOURS), so it can go to
a browser or a script without the API key (the links: `app/signed_links.py`). The download
deletes the document in the same transaction and is audited with the caller's IP.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.config import Settings
from app.merchants import audit
from app.privacy import export
from app.privacy.models import CustomerDataExport
from app.signed_links import SignedLinks, merchant_session

PATH = "/privacy/exports/{export_id}.json"
LINKS = SignedLinks(purpose=b"referral customer export links v1", path=PATH, id_param="export_id")


def signed_url(settings: Settings, item: CustomerDataExport, base_url: str) -> str:
    """The link to a READY export, valid until the export expires. `base_url` is the API's
    public address (PUBLIC_URL, else the address the caller reached us at)."""
    assert item.expires_at is not None
    return LINKS.url(
        settings,
        base_url=settings.public_url or base_url,
        merchant_id=item.merchant_id,
        object_id=item.id,
        expires_at=item.expires_at,
    )


def link_of(settings: Settings, item: CustomerDataExport, base_url: str, now: datetime) -> str | None:
    """The link while the export can be downloaded, else None."""
    if item.status != export.ExportStatus.READY or item.expires_at is None or item.expires_at <= now:
        return None
    return signed_url(settings, item, base_url)


async def download(request: Request) -> Response:
    target = LINKS.check(request, refused="this link is invalid or has expired: request a new export")
    if isinstance(target, Response):
        return target
    merchant_id, export_id = target.merchant_id, target.object_id
    async with merchant_session(request, merchant_id) as session:
        document = await export.take_document(session, merchant_id=merchant_id, export_id=export_id)
        if document is None:
            await session.rollback()
            return PlainTextResponse("this export was already downloaded, or has expired", status_code=410)
        ip = request.client.host if request.client else None
        await audit.record(
            session,
            merchant_id=merchant_id,
            actor=audit.SYSTEM,
            action="customer.export_downloaded",
            subject_id=export_id,
            details={"via": "signed link", "ip": ip},
        )
        await session.commit()
    return Response(
        document,
        media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="customer-export-{export_id}.json"', "Cache-Control": "no-store"},
    )


def routes() -> list[Route]:
    return [Route(PATH, download, methods=["GET"])]
