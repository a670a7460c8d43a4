"""Signed, expiring download links: `GET <path>?merchant=<id>&expires=<unix time>&signature=<hex>`.

Whoever holds such a link can download until it expires, without a session token or an API key,
so the link can go to a browser or a script. The signature is an HMAC-SHA256 over the merchant,
the object and the expiry, under a key derived from SECRET_KEY for one purpose: a link made for
one kind of download never opens another. The link names the merchant, so the download runs in
that merchant's scope (its rows only, also under PostgreSQL's row-level security).

Used by the payout batch files (`app/payouts/downloads.py`) and the customer data exports
(`app/privacy/downloads.py`); each keeps its own route, expiry and what the download does.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app import crypto
from app.config import Settings
from app.db import scope_to_merchant


@lru_cache(maxsize=16)
def _key(secret_key: str, purpose: bytes) -> bytes:
    return crypto.derive(secret_key, purpose)


@dataclass(frozen=True)
class LinkTarget:
    """What a checked link names: the merchant and the object to download."""

    merchant_id: uuid.UUID
    object_id: uuid.UUID


@dataclass(frozen=True)
class SignedLinks:
    """The links of one kind of download. `path` is the route, with `{<id_param>}` for the
    object's id; `purpose` labels the key (changing it invalidates every link out there)."""

    purpose: bytes
    path: str
    id_param: str

    def _signature(self, settings: Settings, merchant_id: uuid.UUID, object_id: uuid.UUID, expires: int) -> str:
        message = f"{merchant_id}:{object_id}:{expires}".encode()
        return hmac.new(_key(settings.secret_key, self.purpose), message, hashlib.sha256).hexdigest()

    def url(
        self, settings: Settings, *, base_url: str, merchant_id: uuid.UUID, object_id: uuid.UUID, expires_at: datetime
    ) -> str:
        """The link, valid until `expires_at` (to the second); `base_url` is the API's public address."""
        expires = int(expires_at.timestamp())
        query = urlencode(
            {
                "merchant": str(merchant_id),
                "expires": expires,
                "signature": self._signature(settings, merchant_id, object_id, expires),
            }
        )
        return f"{base_url.rstrip('/')}{self.path.format(**{self.id_param: object_id})}?{query}"

    def check(self, request: Request, *, refused: str) -> LinkTarget | Response:
        """The merchant and object of a valid, unexpired link; else the response to send: 404 for
        a malformed link, 403 (with `refused`, which says how to get a new link) for a wrong
        signature or an expired one."""
        params = request.query_params
        try:
            object_id = uuid.UUID(request.path_params[self.id_param])
            merchant_id = uuid.UUID(params.get("merchant", ""))
        except ValueError:
            return PlainTextResponse("not found", status_code=404)
        expires, signature = params.get("expires", ""), params.get("signature", "")
        if not expires.isdigit() or int(expires) < time.time():
            return PlainTextResponse(refused, status_code=403)
        if not hmac.compare_digest(self._signature(request.app.state.settings, merchant_id, object_id, int(expires)), signature):
            return PlainTextResponse(refused, status_code=403)
        return LinkTarget(merchant_id, object_id)


@asynccontextmanager
async def merchant_session(request: Request, merchant_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
    """A session of the API's pool scoped to the merchant a checked link names."""
    async with request.app.state.session_factory() as session:
        await scope_to_merchant(session, merchant_id)
        yield session
