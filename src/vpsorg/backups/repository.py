"""Backup queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.backups.models import Backup, BackupKind
from vpsorg.servers.models import Server, ServerStatus

SCHEDULED_STATUSES = (ServerStatus.ACTIVE, ServerStatus.STOPPED)
"""Servers whose automatic backups are taken (a busy one is caught next time it is due)."""


async def get_of_server(session: AsyncSession, server_id: int, backup_id: int) -> Backup | None:
    """The server's backup, unless deleted. Another server's backup is simply absent."""
    return await session.scalar(
        select(Backup).where(
            Backup.id == backup_id, Backup.server_id == server_id, Backup.deleted_at.is_(None)
        )
    )


async def list_of_server(
    session: AsyncSession, server_id: int, *, offset: int, limit: int
) -> tuple[int, Sequence[Backup]]:
    conditions = (Backup.server_id == server_id, Backup.deleted_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Backup).where(*conditions))
    rows = await session.scalars(
        select(Backup).where(*conditions).order_by(Backup.id).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()


async def volumes_of_server(session: AsyncSession, server_id: int) -> list[str]:
    """Every copy the server ever had on its host, deleted ones too (deleting is repeatable)."""
    rows = await session.scalars(
        select(Backup.volume).where(Backup.server_id == server_id).order_by(Backup.id)
    )
    return list(rows.all())


async def delete_of_server(session: AsyncSession, server_id: int, now: datetime) -> None:
    """Hide the server's backups and end their charges (hours started before stay paid)."""
    await session.execute(
        update(Backup)
        .where(Backup.server_id == server_id, Backup.deleted_at.is_(None))
        .values(deleted_at=now)
        .execution_options(synchronize_session=False)
    )


async def automatic_of(session: AsyncSession, server_id: int) -> Sequence[Backup]:
    """The server's automatic backups not deleted, newest first."""
    rows = await session.scalars(
        select(Backup)
        .where(
            Backup.server_id == server_id,
            Backup.kind == BackupKind.BACKUP,
            Backup.deleted_at.is_(None),
        )
        .order_by(Backup.created_at.desc(), Backup.id.desc())
    )
    return rows.all()


async def servers_with_backups(
    session: AsyncSession, after_id: int, limit: int
) -> Sequence[tuple[int, datetime | None, datetime | None]]:
    """(server id, when it was provisioned, its last automatic backup's creation) of servers
    with backups enabled, not deleted, in an account not suspended, by id after ``after_id``."""
    last = (
        select(func.max(Backup.created_at))
        .where(Backup.server_id == Server.id, Backup.kind == BackupKind.BACKUP)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Server.id, Server.provisioned_at, last)
        .join(Account, Account.id == Server.account_id)
        .where(
            Server.id > after_id,
            Server.backups_enabled.is_(True),
            Server.deleted_at.is_(None),
            Server.provisioned_at.is_not(None),
            Server.status.in_(SCHEDULED_STATUSES),
            Account.suspended_at.is_(None),
        )
        .order_by(Server.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in rows.all()]


async def servers_to_prune(
    session: AsyncSession, *, retention: int, disabled_before: datetime
) -> Sequence[int]:
    """Servers with more than ``retention`` automatic backups, or with backups turned off
    before ``disabled_before`` and automatic backups left."""
    live_automatic = (Backup.kind == BackupKind.BACKUP, Backup.deleted_at.is_(None))
    too_many = (
        select(Backup.server_id)
        .join(Server, Server.id == Backup.server_id)
        .where(*live_automatic, Server.deleted_at.is_(None))
        .group_by(Backup.server_id)
        .having(func.count() > retention)
    )
    expired = (
        select(Backup.server_id)
        .join(Server, Server.id == Backup.server_id)
        .where(
            *live_automatic,
            Server.deleted_at.is_(None),
            Server.backups_enabled.is_(False),
            Server.backups_disabled_at < disabled_before,
        )
        .distinct()
    )
    rows = await session.scalars(too_many.union(expired))
    return sorted(rows.all())


async def lock_server(session: AsyncSession, server_id: int) -> Server | None:
    return await session.scalar(
        select(Server)
        .where(Server.id == server_id)
        .with_for_update(of=Server)
        .execution_options(populate_existing=True)
    )
