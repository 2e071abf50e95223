"""What the API returns, as typed objects: datetimes are aware ``datetime``s, closed sets
are ``StrEnum``s. Fields the API adds later are kept (``extra="allow"``) and printed by
``to_dict``, so an older SDK shows a newer API's objects whole.

``Action`` and ``Server`` remember the client that fetched them, for ``action.wait()`` and
``server.wait_until(...)`` (``wait_async``/``wait_until_async`` on an ``AsyncClient``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from vpsorg_client.client import AsyncClient, Client


class ServerStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STARTING = "starting"
    REBOOTING = "rebooting"
    SUSPENDED = "suspended"
    ERROR = "error"
    DELETING = "deleting"
    DELETED = "deleted"


class ActionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


class ActionCommand(StrEnum):
    CREATE = "create"
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    DELETE = "delete"
    SUSPEND = "suspend"
    BACKUP = "backup"
    SNAPSHOT = "snapshot"
    RESTORE = "restore"
    DELETE_BACKUP = "delete_backup"


class BackupKind(StrEnum):
    BACKUP = "backup"  # automatic, on the server's schedule
    SNAPSHOT = "snapshot"  # taken on demand


class BackupStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    ERROR = "error"


class TokenScope(StrEnum):
    READ = "read"
    WRITE = "write"


class Actor(StrEnum):
    TOKEN = "token"
    OPERATOR = "operator"
    USER = "user"
    ANONYMOUS = "anonymous"


class Outcome(StrEnum):
    SUCCESS = "success"
    REFUSED = "refused"
    ERROR = "error"
    REPLAYED = "replayed"


FINISHED = frozenset({ActionStatus.SUCCESS, ActionStatus.ERROR})


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_dict(self) -> dict[str, Any]:
        """The object as the API sent it (JSON types, only the fields it had)."""
        return self.model_dump(mode="json", exclude_unset=True)


class BoundModel(ApiModel):
    """A model that remembers its client, for the waits."""

    _client: Client | AsyncClient | None = PrivateAttr(default=None)

    def bind(self, client: Client | AsyncClient) -> None:
        self._client = client

    def _sync_client(self) -> Client:
        from vpsorg_client.client import Client

        if not isinstance(self._client, Client):
            raise TypeError("not fetched by a Client: use the *_async method with an AsyncClient")
        return self._client

    def _async_client(self) -> AsyncClient:
        from vpsorg_client.client import AsyncClient

        if not isinstance(self._client, AsyncClient):
            raise TypeError("not fetched by an AsyncClient: use the method without _async")
        return self._client


class ActionError(ApiModel):
    code: str
    message: str


ActionCallback = Callable[["Action"], None]


class Action(BoundModel):
    id: int
    command: ActionCommand
    status: ActionStatus
    progress: int
    server_id: int
    started_at: datetime
    finished_at: datetime | None = None
    error: ActionError | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def wait(self, timeout: float = 600.0, on_update: ActionCallback | None = None) -> Action:
        """Long-poll until the action finishes; raise ``ActionFailed`` if it ends in error."""
        return self._sync_client().actions.wait(self.id, timeout=timeout, on_update=on_update)

    async def wait_async(
        self, timeout: float = 600.0, on_update: ActionCallback | None = None
    ) -> Action:
        return await self._async_client().actions.wait(
            self.id, timeout=timeout, on_update=on_update
        )


class PlanRef(ApiModel):
    id: int
    name: str
    vcpus: int
    memory: int
    storage: int
    bandwidth: int | None = None


class OsRef(ApiModel):
    id: int
    name: str


class ResourceUsage(ApiModel):
    cpu_percent: float
    memory_used: int
    disk_used: int
    bandwidth_used: int


class Server(BoundModel):
    """A server as listed (summary) or fetched (the detail fields are then set too)."""

    id: int
    name: str
    hostname: str | None = None
    status: ServerStatus
    ip_address: str | None = None
    location: str
    plan: PlanRef
    os: OsRef
    created_at: datetime
    updated_at: datetime
    ipv6_address: str | None = None
    backups_enabled: bool | None = None
    resource_usage: ResourceUsage | None = None

    def wait_until(self, status: ServerStatus | str, timeout: float = 600.0) -> Server:
        """Wait (on its actions' long-poll) until the server has ``status``."""
        return self._sync_client().servers.wait_until(self.id, status, timeout=timeout)

    async def wait_until_async(self, status: ServerStatus | str, timeout: float = 600.0) -> Server:
        return await self._async_client().servers.wait_until(self.id, status, timeout=timeout)


class ServerCreation(ApiModel):
    """What a create returns: the new server, the action building it, and a message."""

    server: Server
    action: Action
    message: str

    def to_dict(self) -> dict[str, Any]:
        """As the API sent it: the server's fields with ``message`` and ``action``."""
        return {**self.server.to_dict(), "message": self.message, "action": self.action.to_dict()}


class Backup(ApiModel):
    """A server's automatic backup or on-demand snapshot (``kind``)."""

    id: int
    kind: BackupKind
    name: str
    status: BackupStatus
    size_gb: int
    created_at: datetime


class SnapshotCreation(ApiModel):
    """What a snapshot create returns: the backup (``creating``) and the action taking it."""

    backup: Backup
    action: Action

    def to_dict(self) -> dict[str, Any]:
        return {"backup": self.backup.to_dict(), "action": self.action.to_dict()}


class Plan(ApiModel):
    id: int
    name: str
    vcpus: int
    memory: int
    storage: int
    bandwidth: int
    price_hourly: float
    price_monthly: float
    available: bool


class OperatingSystem(ApiModel):
    id: int
    name: str
    slug: str
    available: bool


class Location(ApiModel):
    code: str
    name: str
    available: bool


class SshKey(ApiModel):
    id: int
    name: str
    public_key: str
    fingerprint: str
    created_at: datetime


class Account(ApiModel):
    id: int
    name: str
    balance: float
    hourly_burn_rate: float
    servers_limit: int
    servers_used: int
    suspended: bool
    suspended_reason: str | None = None
    created_at: datetime


class CreditEntry(ApiModel):
    id: int
    kind: str
    amount: float
    balance_after: float
    memo: str
    created_at: datetime


class Event(ApiModel):
    """One audit event: a change (or a refused attempt) made on the account."""

    id: int
    created_at: datetime
    actor: Actor
    token_id: int | None = None
    client_address: str
    request_id: str
    method: str
    path: str
    resource: str | None = None
    action_id: int | None = None
    user_id: int | None = None
    status: int | None = None
    outcome: Outcome
    error_code: str | None = None


class Token(ApiModel):
    id: int
    name: str
    scope: TokenScope
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


class CreatedToken(Token):
    """A new token: ``token`` is its secret, shown this once."""

    token: str
