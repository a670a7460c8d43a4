"""The HTTP server's own limits, which uvicorn's httptools protocol leaves out.

httptools has no header size limit and no deadline for receiving headers: a 10 MB header was
answered, and connections sending a byte now and then (or nothing) stayed open as long as the
client liked. `GuardedHttpToolsProtocol` refuses headers over MAX_HEADER_BYTES with 431 and
closes connections that have not sent a request's headers within HEADER_TIMEOUT_SECONDS (408).
The number of connections is capped by uvicorn's `limit_concurrency` (503 beyond it), and idle
keep-alive connections close after KEEPALIVE_TIMEOUT_SECONDS. Behind a reverse proxy, set the
proxy's own limits at least as strict (see the README).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()  # read in each worker process (the environment is inherited)
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout = settings.header_timeout_seconds
        self._header_bytes = 0
        self._awaiting_headers = True
        self._refused = False
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()  # a connection that never sends anything is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers and self._header_deadline is None:
            self._arm_header_deadline()  # the next request on a kept-alive connection
        super().data_received(data)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_headers = False
        self._header_bytes = 0
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._awaiting_headers = True
        super().on_response_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes and not self._refused:
            self._refuse(431, "Request Header Fields Too Large", "request headers too large")

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            if self._header_bytes or self.cycle is None:
                self._refuse(408, "Request Timeout", "request headers not received in time")
            else:  # idle between requests: the keep-alive timeout's job, close quietly
                self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self._disarm_header_deadline()
        body = message.encode("ascii")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason.encode("ascii"), len(body), body)
        )
        self.transport.close()
