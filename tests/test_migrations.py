"""The schema comes only from the migrations: they must describe exactly the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db import Base


async def test_migrations_match_the_models(db):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with db.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []
