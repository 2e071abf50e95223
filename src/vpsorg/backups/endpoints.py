"""The backups API: a server's backups and snapshots, taking, deleting and restoring them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from vpsorg.accounts.models import MICROS
from vpsorg.api import PageNumber, PathId, PerPage, error_responses, paginated
from vpsorg.backups import repository, service
from vpsorg.backups.models import Backup
from vpsorg.backups.schemas import (
    BackupList,
    BackupOut,
    RestoreRequest,
    RestoreResult,
    SnapshotCreate,
    SnapshotCreated,
)
from vpsorg.deps import CurrentAccount, DbSession
from vpsorg.servers.deps import OwnedServer

router = APIRouter(prefix="/api/v1/servers", tags=["backups"])


async def _owned_backup(server: OwnedServer, session: DbSession, backup_id: PathId) -> Backup:
    return await service.get_backup(session, server, backup_id)


OwnedBackup = Annotated[Backup, Depends(_owned_backup)]


@router.get(
    "/{server_id}/backups/", response_model=BackupList, responses=error_responses(400, 401, 404)
)
async def list_backups(
    request: Request,
    server: OwnedServer,
    session: DbSession,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> BackupList:
    """The server's automatic backups and its snapshots, oldest first."""
    offset = (page - 1) * per_page
    total, backups = await repository.list_of_server(
        session, server.id, offset=offset, limit=per_page
    )
    results = [BackupOut.from_backup(b) for b in backups]
    return paginated(BackupList, request, page, per_page, total, results)


@router.post(
    "/{server_id}/snapshots/",
    status_code=status.HTTP_201_CREATED,
    response_model=SnapshotCreated,
    responses=error_responses(400, 401, 402, 404, 415),
)
async def create_snapshot(
    request: Request,
    body: SnapshotCreate,
    server: OwnedServer,
    account: CurrentAccount,
    session: DbSession,
) -> SnapshotCreated:
    """Copy the server's disk now, without stopping it. It is `creating` until the copy is
    done; a power action asked for meanwhile waits for it. Billed per GB-hour."""
    price = round(request.app.state.settings.snapshot_price_gb_hour * MICROS)
    backup, action = await service.take_snapshot(session, account, server, body, price)
    return SnapshotCreated.from_creation(backup, action)


@router.delete(
    "/{server_id}/backups/{backup_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def delete_backup(server: OwnedServer, backup: OwnedBackup, session: DbSession) -> Response:
    """Delete a backup or snapshot. It disappears (and stops costing) at once."""
    await service.delete_backup(session, server, backup)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{server_id}/restore/",
    response_model=RestoreResult,
    responses=error_responses(400, 401, 402, 404, 415),
)
async def restore_server(
    body: RestoreRequest, server: OwnedServer, account: CurrentAccount, session: DbSession
) -> RestoreResult:
    """Replace the server's disk with a backup's. A running server is stopped (`rebooting`)
    and started again; a stopped one stays stopped."""
    server, action = await service.request_restore(session, account, server, body)
    return RestoreResult.from_restore(server, action, service.RESTORE_MESSAGE)
