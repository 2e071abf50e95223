"""The Python SDK of a vpsorg-hosted VPS API.

from vpsorg_client import Client

with Client(token="vps_...", base_url="https://api.example.com") as vps:
    created = vps.servers.create(name="web-1", plan_id=1, os_id=5, location="us-west")
    created.action.wait(timeout=300)  # raises ActionFailed if the build fails
    server = vps.servers.get(created.server.id)
"""

__version__ = "0.1.0"

from vpsorg_client._http import RetryPolicy
from vpsorg_client.client import AsyncClient, Client
from vpsorg_client.errors import (
    AccountSuspended,
    ActionFailed,
    ApiError,
    CapacityUnavailable,
    Conflict,
    ConnectionFailed,
    Forbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientCredits,
    InsufficientScope,
    InvalidParameters,
    InvalidState,
    LimitExceeded,
    NotAuthenticated,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServerError,
    VpsError,
    WaitTimeout,
)
from vpsorg_client.models import (
    Account,
    Action,
    ActionCommand,
    ActionStatus,
    Backup,
    BackupKind,
    BackupStatus,
    CreatedToken,
    CreditEntry,
    Event,
    Location,
    OperatingSystem,
    Plan,
    Server,
    ServerCreation,
    ServerStatus,
    SnapshotCreation,
    SshKey,
    Token,
    TokenScope,
)

__all__ = [
    "Account",
    "AccountSuspended",
    "Action",
    "ActionCommand",
    "ActionFailed",
    "ActionStatus",
    "ApiError",
    "AsyncClient",
    "Backup",
    "BackupKind",
    "BackupStatus",
    "CapacityUnavailable",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "CreatedToken",
    "CreditEntry",
    "Event",
    "Forbidden",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InsufficientScope",
    "InvalidParameters",
    "InvalidState",
    "LimitExceeded",
    "Location",
    "NotAuthenticated",
    "NotFound",
    "OperatingSystem",
    "PaymentRequired",
    "Plan",
    "RateLimited",
    "RetryPolicy",
    "Server",
    "ServerCreation",
    "ServerError",
    "ServerStatus",
    "SnapshotCreation",
    "SshKey",
    "Token",
    "TokenScope",
    "VpsError",
    "WaitTimeout",
]
