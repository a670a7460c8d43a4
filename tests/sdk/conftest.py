"""A real HTTP server on 127.0.0.1 (a port of 8100-8149), for clients that talk over the network."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from app.main import create_app

PORTS = range(8100, 8150)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8100-8149")


@pytest.fixture
async def live_server(db, settings) -> AsyncIterator[str]:
    """The API served by uvicorn in this event loop: call it from threads or async clients."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=db), host="127.0.0.1", port=free_port(), log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    await task
