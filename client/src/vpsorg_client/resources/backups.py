"""Backups and snapshots of a server: list them, take a snapshot, delete one, restore one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from vpsorg_client._http import Request
from vpsorg_client.models import Action, Backup, SnapshotCreation
from vpsorg_client.resources._base import DEFAULT_PER_PAGE, AsyncResource, SyncResource


def list_request(server_id: int) -> Request:
    return Request("GET", f"/servers/{server_id}/backups/")


def snapshot_request(server_id: int, name: str) -> Request:
    return Request("POST", f"/servers/{server_id}/snapshots/", json={"name": name})


def delete_request(server_id: int, backup_id: int) -> Request:
    return Request("DELETE", f"/servers/{server_id}/backups/{backup_id}/")


def restore_request(server_id: int, backup_id: int) -> Request:
    return Request("POST", f"/servers/{server_id}/restore/", json={"backup_id": backup_id})


def parse(body: object) -> Backup:
    return Backup.model_validate(body)


def parse_creation(body: object) -> SnapshotCreation:
    return SnapshotCreation.model_validate(body)


def parse_restore(body: Any) -> Action:
    return Action.model_validate(body["action"])


class Backups(SyncResource):
    def list(self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE) -> Iterator[Backup]:
        """The server's backups and snapshots, oldest first (all pages, fetched as you iterate)."""
        return self._pages(list_request(server_id), parse, per_page)

    def create_snapshot(self, server_id: int, *, name: str) -> SnapshotCreation:
        """Start a snapshot; ``.action.wait()`` waits until the backup is ``available``."""
        return self._call(snapshot_request(server_id, name), parse_creation)

    def delete(self, server_id: int, backup_id: int) -> None:
        """Delete a backup or snapshot (it is gone at once)."""
        self._send(delete_request(server_id, backup_id))

    def restore(self, server_id: int, backup_id: int) -> Action:
        """Replace the server's disk with the backup's; ``.wait()`` on the action returned."""
        return self._call(restore_request(server_id, backup_id), parse_restore)


class AsyncBackups(AsyncResource):
    def list(self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE) -> AsyncIterator[Backup]:
        return self._pages(list_request(server_id), parse, per_page)

    async def create_snapshot(self, server_id: int, *, name: str) -> SnapshotCreation:
        return await self._call(snapshot_request(server_id, name), parse_creation)

    async def delete(self, server_id: int, backup_id: int) -> None:
        await self._send(delete_request(server_id, backup_id))

    async def restore(self, server_id: int, backup_id: int) -> Action:
        return await self._call(restore_request(server_id, backup_id), parse_restore)
