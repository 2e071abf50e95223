"""Imports every persistence model, so Base.metadata knows all tables."""

from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.actions.models import Action
from vpsorg.audit.models import AuditEvent
from vpsorg.auth.models import ApiToken
from vpsorg.backups.models import Backup
from vpsorg.billing.models import ServerCharge, SnapshotCharge
from vpsorg.catalog.models import OperatingSystem, Plan, SshKey
from vpsorg.hosts.models import Host
from vpsorg.idempotency.models import IdempotencyKey
from vpsorg.locations.models import AddressRange, Location, ReleasedAddress
from vpsorg.servers.models import Server
from vpsorg.users.models import PanelSession, PanelSubmission, User

__all__ = [
    "Account", "Action", "AddressRange", "ApiToken", "AuditEvent", "Backup", "CreditEntry",
    "Host", "IdempotencyKey", "Location", "OperatingSystem", "PanelSession", "PanelSubmission",
    "Plan", "ReleasedAddress", "Server", "ServerCharge", "SnapshotCharge", "SshKey", "User",
]  # fmt: skip
