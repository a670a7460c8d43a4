"""Alembic environment: the only way the schema is created, in production and in tests.

Called with `config.attributes["connection"]` (a sync connection, from `app.migrations`)
it migrates on that connection; otherwise it connects to DATABASE_URL itself.
"""

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from app.config import get_settings
from app.db import Base, create_engine
from app.models import load_all_models

load_all_models()
target_metadata = Base.metadata


def run_on_connection(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = context.config.attributes.get("database_url") or get_settings().database_url
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(run_on_connection)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `referral migrate`")

connection = context.config.attributes.get("connection")
if connection is not None:
    run_on_connection(connection)
else:
    asyncio.run(run_online())
