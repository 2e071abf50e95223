"""Server business rules. Services decide; they never commit (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.actions import queue
from vpsorg.actions.models import Action, ActionCommand
from vpsorg.auth.tokens import Caller
from vpsorg.backups import repository as backups
from vpsorg.billing import service as billing
from vpsorg.billing.repository import Standing
from vpsorg.catalog import repository as catalog
from vpsorg.catalog.models import OperatingSystem, Plan, SshKey
from vpsorg.catalog.schemas import LOCATION_CODE
from vpsorg.clock import utcnow
from vpsorg.db import insert_new
from vpsorg.errors import (
    AccountSuspended,
    InvalidParameters,
    InvalidState,
    LimitExceeded,
    NotFound,
)
from vpsorg.hosts import scheduler
from vpsorg.hosts.models import Host
from vpsorg.locations.ipam import assign_addresses, lock_pools
from vpsorg.locations.models import Location
from vpsorg.servers import repository
from vpsorg.servers.models import BUSY_STATUSES, VISIBLE_STATUSES, Server, ServerStatus
from vpsorg.servers.schemas import ServerCreate, ServerPatch, ServerReplace

CREATE_MESSAGE = "Server is being provisioned. This may take 2-5 minutes."


@dataclass(frozen=True)
class PowerCommand:
    command: ActionCommand
    from_status: ServerStatus
    to_status: ServerStatus
    message: str
    wrong_state: str


POWER_COMMANDS = {
    "start": PowerCommand(
        ActionCommand.START, ServerStatus.STOPPED, ServerStatus.STARTING,
        "Server is starting", "Server is already running.",
    ),
    "stop": PowerCommand(
        ActionCommand.STOP, ServerStatus.ACTIVE, ServerStatus.STOPPING,
        "Server is stopping", "Server is not running.",
    ),
    "reboot": PowerCommand(
        ActionCommand.REBOOT, ServerStatus.ACTIVE, ServerStatus.REBOOTING,
        "Server is rebooting", "Server is not running.",
    ),
}  # fmt: skip


async def get_server(session: AsyncSession, account: Account, server_id: int) -> Server:
    server = await repository.get_owned(session, account.id, server_id)
    if server is None:
        raise NotFound(f"Server {server_id} not found.")
    return server


def check_status_filter(status: str | None) -> None:
    if status is not None and status not in VISIBLE_STATUSES:
        allowed = ", ".join(VISIBLE_STATUSES)
        raise InvalidParameters(
            f"Unknown status '{status}'.", {"status": [f"Must be one of: {allowed}."]}
        )


async def check_location_filter(session: AsyncSession, location: str | None) -> None:
    if location is not None and await session.get(Location, location) is None:
        raise InvalidParameters(
            f"Unknown location '{location}'.", {"location": ["Unknown location."]}
        )


@dataclass(frozen=True)
class References:
    """The plan, OS, location and SSH key a create body names, looked up once per request.

    Resolved from the raw body before it is validated (``resolve_references``), so a 400
    names unknown references beside malformed fields; a valid body then uses these objects.
    ``errors`` names each reference that is unknown or unavailable.
    """

    plan: Plan | None
    os: OperatingSystem | None
    location: Location | None
    ssh_key: SshKey | None
    errors: dict[str, list[str]]
    location_has_hosts: bool = False

    def require(self, data: ServerCreate) -> tuple[Plan, OperatingSystem, Location]:
        """The three references, or InvalidParameters naming every unknown one.

        Each must be the one ``data`` names: what was looked up (with the SSH key's owner
        checked) is what the server gets, however the body spelled its ids.
        """
        if self.errors:
            names = ", ".join(f"'{name}'" for name in self.errors)
            raise InvalidParameters(f"Invalid parameters: {names}.", self.errors)
        assert self.plan is not None and self.os is not None and self.location is not None
        looked_up = (self.plan.id, self.os.id, self.location.code, _id_of(self.ssh_key))
        if looked_up != (data.plan_id, data.os_id, data.location, data.ssh_key_id):
            raise InvalidParameters("The references changed while the request was read.")
        return self.plan, self.os, self.location


def _id_of(key: SshKey | None) -> int | None:
    return key.id if key is not None else None


async def create_server(
    session: AsyncSession, account: Account, data: ServerCreate, references: References
) -> tuple[Server, Action]:
    """``create_server_locked`` for a caller that has not locked the account yet (the web
    panel): the references were read before any lock, the account's comes next."""
    references.require(data)
    now = utcnow()
    standing = await billing.lock_for_create(session, account.id, now)
    return await create_server_locked(session, standing, data, references, now)


async def create_server_locked(
    session: AsyncSession,
    standing: Standing,
    data: ServerCreate,
    references: References,
    now: datetime,
) -> tuple[Server, Action]:
    """Accept a new server: check the account, charge its first hour, queue its build, place
    it and give it addresses.

    ``standing`` is the account read under its row lock (credits, servers limit, the first
    hour's charge) at ``now``: every create of the account waits for it until the commit, so
    it is taken by the create's first statement at the latest (the API reads it with the
    caller and the references: ``resolve_creating``). The server is inserted, charged and
    queued under it; what every create in the location waits for comes last, two statements
    before the commit: the cursors of its address ranges (and, only when the location has
    hosts or addresses given back, its row lock). A refused create writes nothing.

    The rows are written with one statement each, not through the session's unit of work
    (``db.insert_new``): the server and action returned are not in the session.
    """
    plan, os, location = references.require(data)
    account, live, _due = await billing.settle_standing(session, standing, now)
    if data.ssh_key_id is not None:
        await _keep_ssh_key(session, account, data.ssh_key_id)
    _check_may_create(account, plan, data.backups_enabled, live)
    server = Server(
        account_id=account.id, name=data.name, hostname=data.hostname,
        status=ServerStatus.PROVISIONING, location_code=location.code, plan_id=plan.id,
        os_id=os.id, ssh_key_id=data.ssh_key_id, backups_enabled=data.backups_enabled,
        created_at=now, updated_at=now,
    )  # fmt: skip
    server.location, server.plan, server.os = location, plan, os
    first_hour = billing.start_first_hour(server)
    await insert_new(session, server)
    action = await queue.enqueue(session, server.id, account.id, ActionCommand.CREATE)
    await billing.book_first_hour(session, account, server, first_hour)
    if references.location_has_hosts:
        server.host = await _place(session, location, plan)
        server.host_id = server.host.id if server.host is not None else None
    await assign_addresses(session, server, location)
    return server, action


async def _place(session: AsyncSession, location: Location, plan: Plan) -> Host | None:
    """The new server's host in a location that has hosts (``References.location_has_hosts``;
    a host registered since then is not weighed, as if the create had come a moment before).
    Two creates must not both take the last room on one, so the placement is weighed again
    under the location's lock."""
    host = await scheduler.place(session, location, plan)
    if host is None:
        return None
    await lock_pools(session, location)
    return await scheduler.place(session, location, plan)


async def _keep_ssh_key(session: AsyncSession, account: Account, key_id: int) -> None:
    """Hold the named key until the server row that points at it is committed.

    It was looked up before any lock; a delete committed since then would otherwise make
    the insert fail its foreign key (a 500) on PostgreSQL.
    """
    if await catalog.lock_ssh_key(session, account.id, key_id) is None:
        raise InvalidParameters.field("ssh_key_id", f"Unknown SSH key {key_id}.")


def _check_may_create(account: Account, plan: Plan, backups_enabled: bool, live: int) -> None:
    """Refuse a suspended account, one at its servers limit (``live`` servers now), or one
    short of the first hour.

    Call with the account locked and settled: concurrent creates then count each other's
    servers and see each other's charges.
    """
    if account.suspended_at is not None:
        raise AccountSuspended("The account is suspended; top up credits to create servers.")
    if live >= account.servers_limit:
        raise LimitExceeded(
            f"The account's servers limit is {account.servers_limit}; "
            f"{live} servers exist. Delete one or ask for a higher limit."
        )
    billing.require_first_hour(account, plan, backups_enabled)


NO_REFERENCES = References(plan=None, os=None, location=None, ssh_key=None, errors={})
"""For a body that names nothing to look up (not JSON, not an object)."""


@dataclass(frozen=True)
class ReferenceIds:
    """What a (raw) create body names, where it is of the right type to look up."""

    plan_id: int | None
    os_id: int | None
    location: str | None
    ssh_key_id: int | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ReferenceIds:
        """Only fields of the right type are looked up, so this can run on a body that fails
        validation elsewhere and the 400 still names every bad field at once."""
        return cls(
            _id_or_none(body.get("plan_id")),
            _id_or_none(body.get("os_id")),
            _location_code_or_none(body.get("location")),
            _id_or_none(body.get("ssh_key_id")),
        )

    @property
    def none(self) -> bool:
        return self == NO_IDS

    def references(self, found: catalog.Found) -> References:
        """What was found, with an error for each id that names nothing available."""
        plan = found.plan if found.plan is not None and found.plan.available else None
        os = found.os if found.os is not None and found.os.available else None
        location = found.location
        location = location if location is not None and location.available else None
        errors: dict[str, list[str]] = {}
        if self.plan_id is not None and plan is None:
            errors["plan_id"] = [f"Unknown plan {self.plan_id}."]
        if self.os_id is not None and os is None:
            errors["os_id"] = [f"Unknown operating system {self.os_id}."]
        if self.location is not None and location is None:
            errors["location"] = [f"Unknown location '{self.location}'."]
        if self.ssh_key_id is not None and found.ssh_key is None:
            errors["ssh_key_id"] = [f"Unknown SSH key {self.ssh_key_id}."]
        return References(plan, os, location, found.ssh_key, errors, found.location_has_hosts)


NO_IDS = ReferenceIds(None, None, None, None)


async def resolve_references(
    session: AsyncSession, account: Account, body: Mapping[str, Any]
) -> References:
    """Look up the plan, OS, location and SSH key a (raw) create body names, in one query."""
    ids = ReferenceIds.of(body)
    if ids.none:
        return NO_REFERENCES
    found = await catalog.find_references(
        session,
        account.id,
        plan_id=ids.plan_id,
        os_id=ids.os_id,
        location=ids.location,
        ssh_key_id=ids.ssh_key_id,
    )
    return ids.references(found)


@dataclass(frozen=True)
class Creating:
    """What an API create reads first, in one statement (``resolve_creating``)."""

    caller: Caller
    standing: Standing
    """The caller's account, read under its row lock at ``now``."""
    references: References
    now: datetime


async def resolve_creating(
    session: AsyncSession, token_hash: str, body: Mapping[str, Any]
) -> Creating | None:
    """The caller of a live token, its account under its row lock with its standing, and the
    references the (raw) body names, in one statement; None when the token is not live.

    The account's lock is taken by the create's first statement instead of its third: the
    references were read before any lock, and a create holds it until its commit anyway.
    """
    ids = ReferenceIds.of(body)
    now = utcnow()
    found = await repository.find_creating(
        session,
        token_hash,
        now,
        plan_id=ids.plan_id,
        os_id=ids.os_id,
        location=ids.location,
        ssh_key_id=ids.ssh_key_id,
    )
    if found is None:
        return None
    caller, standing, references = found
    return Creating(caller, standing, ids.references(references), now)


def _location_code_or_none(value: object) -> str | None:
    """A well-formed location code to look up; anything else (NUL included, which PostgreSQL
    refuses in a query) is left to validation to name."""
    if isinstance(value, str) and len(value) <= 32 and LOCATION_CODE.fullmatch(value):
        return value
    return None


def _id_or_none(value: object) -> int | None:
    """An id as validation reads it: JSON Schema's integer includes 1.0 (schemas.RequestBody)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if _is_id(value) else None


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


async def update_server(
    session: AsyncSession, server: Server, data: ServerReplace | ServerPatch
) -> Server:
    changes = data.model_dump(exclude_unset=True)
    if changes.get("backups_enabled", server.backups_enabled) != server.backups_enabled:
        await billing.before_backups_change(session, server)
    if server.backups_enabled and changes.get("backups_enabled") is False:
        server.backups_disabled_at = utcnow()
    for field, value in changes.items():
        setattr(server, field, value)
    if changes:
        server.updated_at = utcnow()
    await session.flush()
    return server


async def request_power(
    session: AsyncSession, account: Account, server: Server, name: str
) -> tuple[Server, Action]:
    """Accept start/stop/reboot: set the transitional status and queue the action.

    The account is settled first: if a late meter has not yet charged the hour that ran the
    credits out, that happens now, and the account is refused as suspended as it would be
    with an on-time meter.
    """
    power = POWER_COMMANDS[name]
    account = await billing.settle_account(session, account.id)
    await session.refresh(server)
    _check_actionable(account, server, power)
    won = await repository.transition(session, server.id, [power.from_status], power.to_status)
    if not won:
        await session.refresh(server)
        _check_actionable(account, server, power)
        raise InvalidState(f"Server status changed to '{server.status}'; try again.")
    action = await queue.enqueue(session, server.id, account.id, power.command)
    await session.flush()
    await session.refresh(server)
    return server, action


def _check_actionable(account: Account, server: Server, power: PowerCommand) -> None:
    if server.status == ServerStatus.SUSPENDED or account.suspended_at is not None:
        raise AccountSuspended(
            "The server is suspended because the account is out of credits; top up first."
        )
    if server.status in BUSY_STATUSES:
        raise InvalidState(f"Server is {server.status}; wait for the current action to finish.")
    if server.status == ServerStatus.ERROR:
        raise InvalidState("Server is in error state; it can only be deleted.")
    if server.status != power.from_status:
        raise InvalidState(f"{power.wrong_state} Current status: {server.status}.")


async def delete_server(session: AsyncSession, account: Account, server: Server) -> Action:
    """Hide the server and its backups at once and queue the destruction of its machine
    (its backups with it)."""
    won = await repository.transition(
        session, server.id, VISIBLE_STATUSES, ServerStatus.DELETING, deleted_at=utcnow()
    )
    if not won:
        raise NotFound(f"Server {server.id} not found.")
    await backups.delete_of_server(session, server.id, utcnow())
    action = await queue.enqueue(session, server.id, account.id, ActionCommand.DELETE)
    await session.flush()
    return action
