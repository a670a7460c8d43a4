"""Applying alembic migrations from code (the CLI and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alembic import command

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return config


async def grant_app_role(engine: AsyncEngine, role: str) -> None:
    """Let `role` (the API's and workers' login, not the tables' owner) use the tables, today's
    and the ones later migrations create. Row-level security then applies to it."""
    if engine.dialect.name != "postgresql":
        raise ValueError("roles exist on PostgreSQL only")
    quoted = '"' + role.replace('"', '""') + '"'
    async with engine.begin() as connection:
        for statement in (
            f"GRANT USAGE ON SCHEMA public TO {quoted}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
            f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {quoted}",
        ):
            await connection.exec_driver_sql(statement)


async def row_level_security_gaps(engine: AsyncEngine) -> list[str]:
    """What lets the current login past row-level security: being a superuser, BYPASSRLS, or
    owning tables (an owner passes unless FORCE is set; migration 0006 sets it, later tables
    must too). Empty when the wall stands."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.connect() as connection:
        role = (
            await connection.exec_driver_sql("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        unguarded = (
            (
                await connection.exec_driver_sql(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'merchant_id' "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity) "
                    "ORDER BY c.relname"
                )
            )
            .scalars()
            .all()
        )
    gaps = []
    if role.rolsuper:
        gaps.append(f"{role.rolname} is a superuser")
    if role.rolbypassrls:
        gaps.append(f"{role.rolname} has BYPASSRLS")
    gaps.extend(f"table {name} has no forced row-level security" for name in unguarded)
    return gaps


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    config = alembic_config()

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # a migration may copy a table others point at (SQLite's way to change a column)
            await _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")  # only outside a transaction
        try:
            async with connection.begin():
                await connection.run_sync(run)
                if sqlite and (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first() is not None:
                    raise RuntimeError("the migration left rows pointing at missing rows; nothing was changed")
        finally:
            if sqlite:
                await _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


async def _sqlite_pragma(connection: AsyncConnection, statement: str) -> None:
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None  # an open connection's driver connection
    await raw.driver_connection.execute(statement)
