"""`referral serve` as a separate process, for tests that need a real HTTP server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def referral_command() -> str:
    return str(Path(sys.executable).with_name("referral"))


class ServerLog:
    """What the server printed (its JSON log lines), for a test's failure message."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (open as long as the server runs)

    def tail(self, characters: int = 4000) -> str:
        self.file.flush()
        self.file.seek(0)
        return self.file.read()[-characters:]


@contextmanager
def running_server(log: ServerLog | None = None, **env: str) -> Iterator[int]:
    """Serve on a free port with `env` added to the environment; yields the port once it answers."""
    port = free_port()
    environment = {**os.environ, "LOG_LEVEL": "WARNING", **env}
    log = log or ServerLog()
    process = subprocess.Popen(
        [referral_command(), "serve", "--port", str(port)],
        env=environment,
        stdout=log.file,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"referral serve did not start: {log.tail(2000)}") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)
