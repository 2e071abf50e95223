"""``Client`` and ``AsyncClient``: a token, a base URL, and one attribute per resource."""

from __future__ import annotations

import os
from types import TracebackType

import httpx

from vpsorg_client._http import (
    DEFAULT_TIMEOUT,
    AsyncTransport,
    RetryPolicy,
    Settings,
    SyncTransport,
    normalize_base_url,
)
from vpsorg_client.resources.account import (
    AccountResource,
    AsyncAccountResource,
    AsyncEvents,
    Events,
)
from vpsorg_client.resources.actions import Actions, AsyncActions
from vpsorg_client.resources.backups import AsyncBackups, Backups
from vpsorg_client.resources.catalog import (
    AsyncLocations,
    AsyncOsImages,
    AsyncPlans,
    Locations,
    OsImages,
    Plans,
)
from vpsorg_client.resources.servers import AsyncServers, Servers
from vpsorg_client.resources.ssh_keys import AsyncSshKeys, SshKeys
from vpsorg_client.resources.tokens import AsyncTokens, Tokens


def settings_from(
    token: str | None, base_url: str | None, timeout: float, retry: RetryPolicy | None
) -> Settings:
    """The arguments, else ``VPS_TOKEN`` and ``VPS_URL`` from the environment."""
    token = token or os.environ.get("VPS_TOKEN")
    base_url = base_url or os.environ.get("VPS_URL")
    if not token:
        raise ValueError("no API token: pass token=... or set VPS_TOKEN")
    if not base_url:
        raise ValueError("no API URL: pass base_url=... or set VPS_URL")
    return Settings(
        token=token,
        base_url=normalize_base_url(base_url),
        timeout=timeout,
        retry=retry or RetryPolicy(),
    )


class Client:
    """The API, synchronously. ``with Client(token=..., base_url=...) as vps: ...``"""

    def __init__(
        self,
        token: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.transport = SyncTransport(settings_from(token, base_url, timeout, retry), transport)
        self.servers = Servers(self)
        self.actions = Actions(self)
        self.backups = Backups(self)
        self.ssh_keys = SshKeys(self)
        self.plans = Plans(self)
        self.os_images = OsImages(self)
        self.locations = Locations(self)
        self.account = AccountResource(self)
        self.events = Events(self)
        self.tokens = Tokens(self)

    @property
    def base_url(self) -> str:
        return self.transport.settings.base_url

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """The API for asyncio. ``async with AsyncClient(...) as vps: ...``"""

    def __init__(
        self,
        token: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.transport = AsyncTransport(settings_from(token, base_url, timeout, retry), transport)
        self.servers = AsyncServers(self)
        self.actions = AsyncActions(self)
        self.backups = AsyncBackups(self)
        self.ssh_keys = AsyncSshKeys(self)
        self.plans = AsyncPlans(self)
        self.os_images = AsyncOsImages(self)
        self.locations = AsyncLocations(self)
        self.account = AsyncAccountResource(self)
        self.events = AsyncEvents(self)
        self.tokens = AsyncTokens(self)

    @property
    def base_url(self) -> str:
        return self.transport.settings.base_url

    async def aclose(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
