"""The ASGI application: /graphql, /healthz, request ids, JSON logs and a body size limit."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import demo
from app.config import Settings, get_settings
from app.db import TENANT, create_engine, create_session_factory
from app.logs import request_id_var
from app.migrations import row_level_security_gaps
from app.payouts import downloads as payout_downloads
from app.privacy import downloads as privacy_downloads
from app.ratelimits import RateLimiter
from app.schema import analytics_export
from app.schema.schema import build_schema
from app.schema.view import GRAPHIQL_ASSETS, GRAPHIQL_ASSETS_URL, GraphQLView
from app.widget import assets as widget_assets
from app.widget.cors import BrowserAccess

logger = logging.getLogger("app.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodyTooLarge(Exception):
    pass


class RequestMiddleware:
    """Gives every request an id (kept from a well-formed X-Request-ID), logs one line per
    request, and refuses bodies over the configured size with 413 before parsing them."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await PlainTextResponse("request body too large", status_code=413, headers={"x-request-id": request_id})(
                scope, receive, send
            )
            self._log(scope, 413, started)
            request_id_var.reset(token)
            return

        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Answer 413 now: Starlette's error middleware would turn the exception
                    # into a 500 before it reaches us. Whatever the app sends next is dropped.
                    if not response_started:
                        await PlainTextResponse("request body too large", status_code=413)(scope, receive, send_with_id)
                    refused = True
                    raise BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not response_started:
                await PlainTextResponse("request body too large", status_code=413)(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error")
            if not response_started:
                await JSONResponse({"errors": [{"message": "Unexpected error."}]}, status_code=500)(scope, receive, send_with_id)
        finally:
            self._log(scope, status, started)
            request_id_var.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        logger.info(
            "%s %s %s",
            scope["method"],
            scope["path"],
            status,
            extra={"status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
        )


class ImmutableFiles(StaticFiles):
    """Static files under versioned paths (`graphiql@3.8.3/...`): cached for a year."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


async def healthz(request: Request) -> JSONResponse:
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        logger.exception("health check failed")
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


CONSOLE_ASSETS = Path(__file__).resolve().parent / "static" / "console"  # built from console/ (committed)


def freeze_what_start_built() -> None:
    """Move everything built so far (modules, the schema, SQLAlchemy's mappers and caches, a
    few hundred thousand objects) out of the cyclic garbage collector's sight: it is never
    garbage, yet every full collection walked all of it, and requests that hold many objects
    at once (a page of 50 referrals) set off full collections often. Measured in-process: a
    referrals page 7.7 -> 6.4 ms of CPU on average, its full collections 1.5 -> 0.2 ms."""
    gc.collect()
    gc.freeze()


# Python's default starts a young collection every 700 new container objects. One purchase
# makes thousands and lives for ~100 ms under load, so at that pace the collector ran ~85
# times a second, moved the objects of the requests in flight into older generations, and a
# full collection of those took 20-90 ms with the event loop stopped. Every 10,000: about half
# the collector's time, at most one full collection in a 10 s run, the longest pause 30-46 ms
# (a middle collection). Larger thresholds (50,000, 100,000) made the pauses longer (30-120 ms)
# without saving more. Measured under wrk: README, "The collector's pace".
YOUNG_COLLECTION_EVERY = 10_000


@contextmanager
def collector_paced_for_requests() -> Iterator[None]:
    """The collector's thresholds for a serving process, the ones before restored after."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> Any:
    settings = settings or get_settings()
    owns_engine = engine is None
    engine = engine or create_engine(settings.database_url, settings.database_pool_size)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.is_production:
            try:
                gaps = await row_level_security_gaps(engine)
            except Exception:
                logger.warning("could not check row-level security at start", exc_info=True)
                gaps = []
            for gap in gaps:
                logger.error("row-level security does not hold: %s (connect as a role made with `referral db grant`)", gap)
        worker = None
        if settings.embedded_worker:
            from app.worker.broker import start_embedded_worker

            worker = start_embedded_worker(settings)
        freeze_what_start_built()
        with collector_paced_for_requests():
            yield
        if worker is not None:
            from app.worker.broker import stop_embedded_worker

            await asyncio.to_thread(stop_embedded_worker, worker)  # waits for jobs in progress
        from app.worker.broker import close_loop_clients

        await close_loop_clients()
        if owns_engine:
            await engine.dispose()

    graphql = GraphQLView(build_schema(settings), settings)
    routes: list[BaseRoute] = [
        Route("/graphql", graphql),  # the view answers every method (405 with a GraphQL error body)
        Route("/healthz", healthz, methods=["GET"]),
        Route(payout_downloads.ROUTE, payout_downloads.download, methods=["GET"]),
        *widget_assets.routes(),
        *privacy_downloads.routes(),
        *analytics_export.routes(),
        *demo.routes(settings),
    ]
    routes.append(Mount("/console", app=StaticFiles(directory=CONSOLE_ASSETS, html=True), name="console"))
    if not settings.is_production:
        routes.append(Mount(GRAPHIQL_ASSETS_URL, app=ImmutableFiles(directory=GRAPHIQL_ASSETS)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BrowserAccess)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine, scope=TENANT)
    app.state.rate_limiter = RateLimiter(settings) if settings.rate_limits_enabled else None
    return RequestMiddleware(app, settings.max_body_bytes)
