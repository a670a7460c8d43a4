"""Browser access to the API (CORS), per merchant, for publishable-key calls only.

A response carries `Access-Control-Allow-Origin` only when the call's key is an active
publishable key and the key's merchant lists the page's origin (`setWidgetAllowedOrigins`).
A secret key never gets CORS headers (it must not be in a browser), nor does a call without a
key. No cookies are involved: `Access-Control-Allow-Credentials` is never sent.

A preflight (`OPTIONS`) has no Authorization header, so the widget names its publishable key in
the URL: it posts to `/graphql?pk=pk_...`, and the preflight is judged like the call that
follows: that key's merchant must list the origin. The publishable key is public by design (it
sits in the shop's HTML), so the URL reveals nothing new. Judging a preflight by "some merchant
lists this origin" instead would let any site probe which origins this deployment's merchants
use, and would answer for origins the key's own merchant never named.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.clientip import client_ip
from app.ratelimits import Budget, Refusal
from app.widget import origins, service

logger = logging.getLogger("app.widget")

API_PATHS = frozenset({"/graphql"})
ALLOWED_METHOD = "POST"
ALLOWED_HEADERS = "authorization, content-type"
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may reuse a preflight answer


class BrowserAccess:
    """ASGI middleware answering CORS for the API paths; everything else passes through. It
    reads the origins with the app's own session factory (`app.state.session_factory`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in API_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_origin = headers.get("origin")
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        origin = origins.normalize_origin(raw_origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, receive, send, headers, origin)
            return
        scheme, _, key = headers.get("authorization", "").partition(" ")
        allowed = scheme.lower() == "bearer" and await self._allows(scope, key.strip(), origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed:
                    extra.append((b"access-control-allow-origin", raw_origin.encode("latin-1")))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, headers: Headers, origin: str | None) -> None:
        key = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("pk") or [""])[0]
        method_ok = headers["access-control-request-method"].upper() == ALLOWED_METHOD
        response: Response
        refusal = await self._spend_budget(scope, headers)
        if refusal is not None:  # a preflight looks the key up: it spends the caller's budget too
            response = PlainTextResponse(refusal.message, status_code=429, headers=refusal.headers())
        elif method_ok and await self._allows(scope, key, origin):
            response = Response(
                status_code=204,
                headers={
                    "access-control-allow-origin": headers["origin"],
                    "access-control-allow-methods": ALLOWED_METHOD,
                    "access-control-allow-headers": ALLOWED_HEADERS,
                    "access-control-max-age": PREFLIGHT_MAX_AGE,
                    "vary": "Origin",
                },
            )
        else:
            response = PlainTextResponse(
                "origin not allowed for this publishable key (name it: /graphql?pk=pk_...)",
                status_code=403,
                headers={"vary": "Origin"},
            )
        await response(scope, receive, send)

    @staticmethod
    async def _spend_budget(scope: Scope, headers: Headers) -> Refusal | None:
        state = scope["app"].state
        limiter = getattr(state, "rate_limiter", None)
        if limiter is None:
            return None
        peer = scope["client"][0] if scope.get("client") else None
        ip = client_ip(peer, headers.get("x-forwarded-for", ""), state.settings.trusted_proxies) or "unknown"
        return await limiter.spend(Budget.ANONYMOUS_IP, ip)

    async def _allows(self, scope: Scope, key: str, origin: str | None) -> bool:
        if origin is None or not key.startswith("pk_"):
            return False
        try:
            async with scope["app"].state.session_factory() as session:
                patterns = await service.browser_origins(session, publishable_key=key)
        except Exception:
            logger.exception("could not read the allowed origins; answering without CORS headers")
            return False
        return patterns is not None and origins.allows(patterns, origin)
