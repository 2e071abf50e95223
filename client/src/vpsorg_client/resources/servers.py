"""Servers: the nine endpoints of the servers API, and waiting for a status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from vpsorg_client._http import Request
from vpsorg_client.errors import WaitTimeout
from vpsorg_client.models import Action, Server, ServerCreation, ServerStatus
from vpsorg_client.resources import actions
from vpsorg_client.resources._base import (
    DEFAULT_PER_PAGE,
    AsyncResource,
    SyncResource,
    drop_none,
)

RECENT_ACTIONS = 10  # an in-flight action is among a server's latest few


def list_request(status: ServerStatus | str | None, location: str | None) -> Request:
    params = drop_none(status=str(status) if status else None, location=location)
    return Request("GET", "/servers/", params=params)


def create_request(
    name: str,
    plan_id: int,
    os_id: int,
    location: str,
    hostname: str | None,
    ssh_key_id: int | None,
    backups_enabled: bool,
) -> Request:
    body: dict[str, Any] = {
        "name": name,
        "plan_id": plan_id,
        "os_id": os_id,
        "location": location,
        "backups_enabled": backups_enabled,
    }
    body |= drop_none(hostname=hostname, ssh_key_id=ssh_key_id)
    return Request("POST", "/servers/", json=body)


def server_path(server_id: int) -> str:
    return f"/servers/{server_id}/"


def power_request(server_id: int, command: str) -> Request:
    return Request("POST", f"/servers/{server_id}/{command}/")


def parse(body: object) -> Server:
    return Server.model_validate(body)


def parse_creation(body: Any) -> ServerCreation:
    fields = dict(body)
    action = fields.pop("action")
    message = fields.pop("message")
    return ServerCreation(server=Server.model_validate(fields), action=action, message=message)


def parse_power(body: Any) -> Action:
    return Action.model_validate(body["action"])


def in_flight_action(recent: list[Action]) -> Action | None:
    return next((action for action in recent if not action.finished), None)


def not_reaching(server: Server, status: ServerStatus) -> WaitTimeout:
    return WaitTimeout(
        f"Server {server.id} is {server.status}, not {status}, and no action is running "
        "that could change it."
    )


class Servers(SyncResource):
    def list(
        self,
        *,
        status: ServerStatus | str | None = None,
        location: str | None = None,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> Iterator[Server]:
        """Every server of the account (all pages, fetched as you iterate)."""
        return self._pages(list_request(status, location), parse, per_page)

    def get(self, server_id: int) -> Server:
        return self._call(Request("GET", server_path(server_id)), parse)

    def create(
        self,
        *,
        name: str,
        plan_id: int,
        os_id: int,
        location: str,
        hostname: str | None = None,
        ssh_key_id: int | None = None,
        backups_enabled: bool = False,
    ) -> ServerCreation:
        """Start building a server; ``.action.wait()`` waits until it is active."""
        request = create_request(
            name, plan_id, os_id, location, hostname, ssh_key_id, backups_enabled
        )
        return self._call(request, parse_creation)

    def replace(self, server_id: int, *, name: str, hostname: str, backups_enabled: bool) -> Server:
        """PUT: set all three editable fields."""
        body = {"name": name, "hostname": hostname, "backups_enabled": backups_enabled}
        return self._call(Request("PUT", server_path(server_id), json=body), parse)

    def update(
        self,
        server_id: int,
        *,
        name: str | None = None,
        hostname: str | None = None,
        backups_enabled: bool | None = None,
    ) -> Server:
        """PATCH: change only the fields given."""
        body = drop_none(name=name, hostname=hostname, backups_enabled=backups_enabled)
        return self._call(Request("PATCH", server_path(server_id), json=body), parse)

    def delete(self, server_id: int) -> None:
        self._send(Request("DELETE", server_path(server_id)))

    def start(self, server_id: int) -> Action:
        return self._call(power_request(server_id, "start"), parse_power)

    def stop(self, server_id: int) -> Action:
        return self._call(power_request(server_id, "stop"), parse_power)

    def reboot(self, server_id: int) -> Action:
        return self._call(power_request(server_id, "reboot"), parse_power)

    def actions(self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE) -> Iterator[Action]:
        """The server's action history, newest first."""
        return self._client.actions.list_for_server(server_id, per_page=per_page)

    def wait_until(
        self, server_id: int, status: ServerStatus | str, *, timeout: float = 600.0
    ) -> Server:
        """Wait until the server has ``status``, on the long-poll of its running action."""
        wanted = ServerStatus(status)
        deadline = time.monotonic() + timeout
        while True:
            server = self.get(server_id)
            if server.status is wanted:
                return server
            recent = self._client.actions.recent_for_server(server_id, RECENT_ACTIONS)
            running = in_flight_action(recent)
            remaining = deadline - time.monotonic()
            if running is None:
                raise not_reaching(server, wanted)
            if remaining <= 0:
                raise actions.timed_out(running, timeout)
            self._client.actions.wait(running.id, timeout=remaining, raise_on_error=False)


class AsyncServers(AsyncResource):
    def list(
        self,
        *,
        status: ServerStatus | str | None = None,
        location: str | None = None,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> AsyncIterator[Server]:
        return self._pages(list_request(status, location), parse, per_page)

    async def get(self, server_id: int) -> Server:
        return await self._call(Request("GET", server_path(server_id)), parse)

    async def create(
        self,
        *,
        name: str,
        plan_id: int,
        os_id: int,
        location: str,
        hostname: str | None = None,
        ssh_key_id: int | None = None,
        backups_enabled: bool = False,
    ) -> ServerCreation:
        request = create_request(
            name, plan_id, os_id, location, hostname, ssh_key_id, backups_enabled
        )
        return await self._call(request, parse_creation)

    async def replace(
        self, server_id: int, *, name: str, hostname: str, backups_enabled: bool
    ) -> Server:
        body = {"name": name, "hostname": hostname, "backups_enabled": backups_enabled}
        return await self._call(Request("PUT", server_path(server_id), json=body), parse)

    async def update(
        self,
        server_id: int,
        *,
        name: str | None = None,
        hostname: str | None = None,
        backups_enabled: bool | None = None,
    ) -> Server:
        body = drop_none(name=name, hostname=hostname, backups_enabled=backups_enabled)
        return await self._call(Request("PATCH", server_path(server_id), json=body), parse)

    async def delete(self, server_id: int) -> None:
        await self._send(Request("DELETE", server_path(server_id)))

    async def start(self, server_id: int) -> Action:
        return await self._call(power_request(server_id, "start"), parse_power)

    async def stop(self, server_id: int) -> Action:
        return await self._call(power_request(server_id, "stop"), parse_power)

    async def reboot(self, server_id: int) -> Action:
        return await self._call(power_request(server_id, "reboot"), parse_power)

    def actions(self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE) -> AsyncIterator[Action]:
        return self._client.actions.list_for_server(server_id, per_page=per_page)

    async def wait_until(
        self, server_id: int, status: ServerStatus | str, *, timeout: float = 600.0
    ) -> Server:
        wanted = ServerStatus(status)
        deadline = time.monotonic() + timeout
        while True:
            server = await self.get(server_id)
            if server.status is wanted:
                return server
            recent = await self._client.actions.recent_for_server(server_id, RECENT_ACTIONS)
            running = in_flight_action(recent)
            remaining = deadline - time.monotonic()
            if running is None:
                raise not_reaching(server, wanted)
            if remaining <= 0:
                raise actions.timed_out(running, timeout)
            await self._client.actions.wait(running.id, timeout=remaining, raise_on_error=False)
