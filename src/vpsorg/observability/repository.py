"""The query of the readiness check (migrate.schema_revisions reads the schema's revision;
the gauges' queries live with their domains)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
