"""Backup and snapshot rules. Services decide; they never commit (the caller owns the transaction).

A backup or snapshot is taken by an action that leaves the server's status alone, so a power
request made meanwhile is accepted and waits in the queue until the copy is done. A restore
stops a running server, replaces its disk and starts it again: it is ``rebooting`` meanwhile.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.actions import queue
from vpsorg.actions.models import Action, ActionCommand
from vpsorg.backups import repository
from vpsorg.backups.models import Backup, BackupKind, BackupStatus, volume_name
from vpsorg.backups.schemas import RestoreRequest, SnapshotCreate
from vpsorg.billing import service as billing
from vpsorg.clock import utcnow
from vpsorg.drivers.base import BackupInfo
from vpsorg.errors import AccountSuspended, InvalidParameters, InvalidState, NotFound
from vpsorg.servers import repository as servers
from vpsorg.servers.models import BUSY_STATUSES, Server, ServerStatus

BYTES_PER_GB = 1_000_000_000
RESTORE_MESSAGE = "Server is being restored"


async def get_backup(session: AsyncSession, server: Server, backup_id: int) -> Backup:
    backup = await repository.get_of_server(session, server.id, backup_id)
    if backup is None:
        raise NotFound(f"Backup {backup_id} not found.")
    return backup


async def take_snapshot(
    session: AsyncSession,
    account: Account,
    server: Server,
    data: SnapshotCreate,
    price_gb_hour_micros: int,
) -> tuple[Backup, Action]:
    """Accept a snapshot: a row ``creating`` and its action; the server's status stays."""
    account = await billing.settle_account(session, account.id)
    await session.refresh(server)
    _check_not_suspended(account, server)
    if server.status in (ServerStatus.PROVISIONING, ServerStatus.ERROR):
        raise InvalidState(f"Server is {server.status}; it has no disk to copy.")
    return await _take(session, server, BackupKind.SNAPSHOT, data.name, price_gb_hour_micros)


async def take_automatic_backup(session: AsyncSession, server: Server, now: datetime) -> Backup:
    backup, _action = await _take(session, server, BackupKind.BACKUP, f"auto-{now:%Y%m%d-%H%M}", 0)
    return backup


async def _take(
    session: AsyncSession, server: Server, kind: BackupKind, name: str, price: int
) -> tuple[Backup, Action]:
    now = utcnow()
    backup = Backup(
        server_id=server.id, account_id=server.account_id, kind=kind, name=name,
        status=BackupStatus.CREATING, price_gb_hour_micros=price, created_at=now,
    )  # fmt: skip
    session.add(backup)
    await session.flush()
    backup.volume = volume_name(server.id, backup.id, now)
    command = ActionCommand.SNAPSHOT if kind == BackupKind.SNAPSHOT else ActionCommand.BACKUP
    action = await queue.enqueue(
        session, server.id, server.account_id, command, backup_id=backup.id
    )
    await session.flush()
    return backup, action


async def delete_backup(session: AsyncSession, server: Server, backup: Backup) -> Action:
    """Hide the backup at once (its charges end) and queue the removal of its copy."""
    backup.deleted_at = utcnow()
    action = await queue.enqueue(
        session, server.id, server.account_id, ActionCommand.DELETE_BACKUP, backup_id=backup.id
    )
    await session.flush()
    return action


async def request_restore(
    session: AsyncSession, account: Account, server: Server, data: RestoreRequest
) -> tuple[Server, Action]:
    """Accept a restore: a running server becomes ``rebooting``; a stopped one stays."""
    account = await billing.settle_account(session, account.id)
    await session.refresh(server)
    _check_not_suspended(account, server)
    backup = await repository.get_of_server(session, server.id, data.backup_id)
    if backup is None:
        raise InvalidParameters.field("backup_id", f"Unknown backup {data.backup_id}.")
    if backup.status != BackupStatus.AVAILABLE:
        raise InvalidState(
            f"Backup {backup.id} is {backup.status}; only an available one restores."
        )
    if server.status in BUSY_STATUSES:
        raise InvalidState(f"Server is {server.status}; wait for the current action to finish.")
    if server.status not in (ServerStatus.ACTIVE, ServerStatus.STOPPED):
        raise InvalidState(f"Server is {server.status}; it can't be restored.")
    to_status = ServerStatus.REBOOTING if server.status == ServerStatus.ACTIVE else server.status
    if not await servers.transition(session, server.id, [server.status], to_status):
        raise InvalidState("Server status changed; try again.")
    action = await queue.enqueue(
        session, server.id, account.id, ActionCommand.RESTORE, backup_id=backup.id
    )
    await session.flush()
    await session.refresh(server)
    return server, action


def _check_not_suspended(account: Account, server: Server) -> None:
    if server.status == ServerStatus.SUSPENDED or account.suspended_at is not None:
        raise AccountSuspended(
            "The server is suspended because the account is out of credits; top up first."
        )


# -- the worker's side ------------------------------------------------------------------


async def record_taken(session: AsyncSession, backup_id: int, info: BackupInfo) -> None:
    """The copy exists: the backup is available, and a snapshot starts its first hour."""
    backup = await session.get(Backup, backup_id, populate_existing=True)
    assert backup is not None
    now = utcnow()
    backup.status = BackupStatus.AVAILABLE
    backup.size_gb = math.ceil(info.allocated_bytes / BYTES_PER_GB)
    backup.available_at = now
    if backup.deleted_at is None and backup.kind == BackupKind.SNAPSHOT:
        backup.next_charge_at = now
    await session.flush()


async def record_failed(session: AsyncSession, backup_id: int) -> None:
    backup = await session.get(Backup, backup_id, populate_existing=True)
    assert backup is not None
    backup.status = BackupStatus.ERROR
    await session.flush()
