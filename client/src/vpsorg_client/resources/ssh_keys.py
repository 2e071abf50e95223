"""SSH keys to install on new servers."""

from __future__ import annotations

from vpsorg_client._http import Request
from vpsorg_client.models import SshKey
from vpsorg_client.resources._base import AsyncResource, SyncResource

LIST = Request("GET", "/ssh-keys/")


def key_path(key_id: int) -> str:
    return f"/ssh-keys/{key_id}/"


def create_request(name: str, public_key: str) -> Request:
    return Request("POST", "/ssh-keys/", json={"name": name, "public_key": public_key.strip()})


class SshKeys(SyncResource):
    def list(self) -> list[SshKey]:
        return self._items(LIST, SshKey.model_validate)

    def get(self, key_id: int) -> SshKey:
        return self._call(Request("GET", key_path(key_id)), SshKey.model_validate)

    def create(self, *, name: str, public_key: str) -> SshKey:
        return self._call(create_request(name, public_key), SshKey.model_validate)

    def delete(self, key_id: int) -> None:
        self._send(Request("DELETE", key_path(key_id)))


class AsyncSshKeys(AsyncResource):
    async def list(self) -> list[SshKey]:
        return await self._items(LIST, SshKey.model_validate)

    async def get(self, key_id: int) -> SshKey:
        return await self._call(Request("GET", key_path(key_id)), SshKey.model_validate)

    async def create(self, *, name: str, public_key: str) -> SshKey:
        return await self._call(create_request(name, public_key), SshKey.model_validate)

    async def delete(self, key_id: int) -> None:
        await self._send(Request("DELETE", key_path(key_id)))
