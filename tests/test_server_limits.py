"""`referral serve` as a process: header size limit, a deadline for headers (slow or silent
clients), and a cap on connections. Raw sockets, because HTTP clients refuse to misbehave."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.servers import referral_command, running_server

REQUEST = (
    b'POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 26\r\n\r\n{"query":"{ __typename }"}'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    database = tmp_path_factory.mktemp("serve") / "referral.db"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "APP_ENV": "test",
        "SECRET_KEY": "x",
        "MAX_HEADER_BYTES": "8192",
        "HEADER_TIMEOUT_SECONDS": "1",
        "MAX_CONNECTIONS": "6",
    }
    subprocess.run([referral_command(), "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
    with running_server(**env) as port:
        yield port


def exchange(port: int, data: bytes, *, timeout: float = 5) -> bytes:
    """Send `data` (as far as the server takes it), then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):  # the server answered and closed before taking it all
            s.sendall(data)
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := s.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def test_a_normal_request_is_answered(server):
    assert exchange(server, REQUEST.replace(b"Host: x", b"Host: x\r\nConnection: close")).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("size", [100 * 1024, 10 * 1024 * 1024], ids=["100kB", "10MB"])
def test_headers_over_the_limit_are_refused_with_431(server, size):
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * size + b"\r\n\r\n"

    assert exchange(server, request).startswith(b"HTTP/1.1 431")


def test_many_headers_adding_up_over_the_limit_are_refused(server):
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))

    assert exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n").startswith(b"HTTP/1.1 431")


def test_headers_trickling_in_are_cut_off_at_the_deadline(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        try:
            for _ in range(40):  # a header byte every 0.2 s: would take 8 s
                s.sendall(b"X")
                time.sleep(0.2)
        except OSError:
            pass
        answer = read_all(s)

    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4


def test_a_connection_that_sends_nothing_is_closed(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        answer = read_all(s)

    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4


def test_connections_beyond_the_cap_get_503_until_others_close(server):
    idle = [socket.create_connection(("127.0.0.1", server), timeout=5) for _ in range(6)]
    try:
        assert exchange(server, REQUEST).startswith(b"HTTP/1.1 503")
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    assert exchange(server, REQUEST.replace(b"Host: x", b"Host: x\r\nConnection: close")).startswith(b"HTTP/1.1 200")
