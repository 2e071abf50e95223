"""Request and response bodies of the backups API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from vpsorg.actions.models import Action
from vpsorg.actions.schemas import ActionOut
from vpsorg.backups.models import Backup, BackupKind, BackupStatus
from vpsorg.schemas import MAX_ID, Page, RequestBody, UtcDatetime
from vpsorg.servers.models import Server, ServerStatus
from vpsorg.servers.schemas import ServerRef

BackupName = Annotated[str, Field(min_length=1, max_length=63, examples=["before-upgrade"])]


class SnapshotCreate(RequestBody):
    name: BackupName


class RestoreRequest(RequestBody):
    backup_id: Annotated[int, Field(ge=1, le=MAX_ID, description="A backup or snapshot")]


class BackupOut(BaseModel):
    id: int
    kind: BackupKind = Field(description="`backup`: automatic; `snapshot`: taken on demand")
    name: str
    status: BackupStatus
    size_gb: int = Field(description="What the copy takes on disk, rounded up to whole GB")
    created_at: UtcDatetime

    @classmethod
    def from_backup(cls, backup: Backup) -> BackupOut:
        return cls(
            id=backup.id, kind=BackupKind(backup.kind), name=backup.name,
            status=BackupStatus(backup.status), size_gb=backup.size_gb,
            created_at=backup.created_at,
        )  # fmt: skip


class BackupList(Page):
    results: list[BackupOut]


class SnapshotCreated(BaseModel):
    backup: BackupOut
    action: ActionOut

    @classmethod
    def from_creation(cls, backup: Backup, action: Action) -> SnapshotCreated:
        return cls(backup=BackupOut.from_backup(backup), action=ActionOut.from_action(action))


class RestoreResult(BaseModel):
    status: Literal["success"] = "success"
    message: str
    server: ServerRef
    action: ActionOut

    @classmethod
    def from_restore(cls, server: Server, action: Action, message: str) -> RestoreResult:
        return cls(
            message=message,
            server=ServerRef(id=server.id, name=server.name, status=ServerStatus(server.status)),
            action=ActionOut.from_action(action),
        )
