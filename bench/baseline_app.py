"""The machine's limit for one write per request: a bare Starlette endpoint doing one INSERT
into the same PostgreSQL, served by uvicorn with the API's HTTP stack (uvloop, httptools, one
process), with asyncpg's pool of the API's size. `bench/suite.py` loads it next to the API.

    python bench/baseline_app.py --port 8100 --database postgresql://postgres@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import uuid
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def build(database: str, pool_size: int) -> Starlette:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: Starlette):
        state["pool"] = await asyncpg.create_pool(database, min_size=pool_size, max_size=pool_size * 2)
        async with state["pool"].acquire() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS bench_baseline (id uuid PRIMARY KEY, payload text, created_at timestamptz)"
            )
        yield
        await state["pool"].close()

    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        row_id = uuid.uuid4()
        async with state["pool"].acquire() as connection:
            await connection.execute(
                "INSERT INTO bench_baseline (id, payload, created_at) VALUES ($1, $2, now())", row_id, body.get("payload")
            )
        return JSONResponse({"data": {"id": str(row_id)}})

    return Starlette(routes=[Route("/insert", insert, methods=["POST"])], lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    uvicorn.run(
        build(args.database, args.pool_size),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )
