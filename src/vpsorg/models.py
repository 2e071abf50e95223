"""Imports every persistence model, so Base.metadata knows all tables."""

from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.actions.models import Action
from vpsorg.audit.models import AuditEvent
from vpsorg.auth.models import ApiToken
from vpsorg.billing.models import ServerCharge
from vpsorg.catalog.models import Location, OperatingSystem, Plan, SshKey
from vpsorg.hosts.models import Host
from vpsorg.idempotency.models import IdempotencyKey
from vpsorg.servers.models import Server

__all__ = [
    "Account", "Action", "ApiToken", "AuditEvent", "CreditEntry", "Host", "IdempotencyKey",
    "Location", "OperatingSystem", "Plan", "Server", "ServerCharge", "SshKey",
]  # fmt: skip
