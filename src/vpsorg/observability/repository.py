"""The queries of the readiness check (the gauges' queries live with their domains)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))


async def schema_revisions(session: AsyncSession) -> frozenset[str]:
    """The Alembic revisions the database is at (raises when it was never migrated)."""
    rows = await session.scalars(text("SELECT version_num FROM alembic_version"))
    return frozenset(rows.all())
