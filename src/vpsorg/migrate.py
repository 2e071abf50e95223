"""Schema migrations (Alembic), callable from the CLI, the server and the tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


@lru_cache
def head_revisions() -> frozenset[str]:
    """The revisions a database fully migrated by this version of vpsorg is at."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def schema_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at: empty when it was never migrated."""
    heads = await connection.run_sync(
        lambda sync: MigrationContext.configure(sync).get_current_heads()
    )
    return frozenset(heads)
