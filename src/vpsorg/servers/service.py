"""Server business rules. Services decide; they never commit (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.accounts.service import hourly_cost_micros, lock_account
from vpsorg.actions import queue
from vpsorg.actions.models import Action, ActionCommand
from vpsorg.catalog import repository as catalog
from vpsorg.catalog.models import Location, OperatingSystem, Plan
from vpsorg.clock import utcnow
from vpsorg.errors import (
    AccountSuspended,
    InsufficientCredits,
    InvalidParameters,
    InvalidState,
    LimitExceeded,
    NotFound,
)
from vpsorg.hosts import scheduler
from vpsorg.servers import repository
from vpsorg.servers.ipam import assign_addresses, lock_pools
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


async def create_server(
    session: AsyncSession, account: Account, data: ServerCreate
) -> tuple[Server, Action]:
    plan, os, location = await _resolve_references(session, account, data)
    account = await lock_account(session, account.id)
    await lock_pools(session, location)
    if account.suspended_at is not None:
        raise AccountSuspended("The account is suspended; top up credits to create servers.")
    live = await repository.count_live(session, account.id)
    if live >= account.servers_limit:
        raise LimitExceeded(
            f"The account's servers limit is {account.servers_limit}; "
            f"{live} servers exist. Delete one or ask for a higher limit."
        )
    needed = hourly_cost_micros(plan, data.backups_enabled)
    if account.balance_micros < needed:
        raise InsufficientCredits(
            f"Insufficient credits: creating a '{plan.name}' server needs at least "
            f"{needed / 1_000_000:.4f} credits (one hour); the balance is "
            f"{account.balance_micros / 1_000_000:.4f}."
        )
    host = await scheduler.place(session, location, plan)
    now = utcnow()
    server = Server(
        account_id=account.id, name=data.name, hostname=data.hostname,
        host_id=host.id if host is not None else None,
        status=ServerStatus.PROVISIONING, location_code=location.code, plan_id=plan.id,
        os_id=os.id, ssh_key_id=data.ssh_key_id, backups_enabled=data.backups_enabled,
        created_at=now, updated_at=now, next_charge_at=now,
    )  # fmt: skip
    session.add(server)
    await session.flush()
    await assign_addresses(session, server, location)
    action = queue.enqueue(session, server.id, account.id, ActionCommand.CREATE)
    await session.flush()
    await session.refresh(server)
    return server, action


async def reference_errors(
    session: AsyncSession, account: Account, body: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Name every unknown plan, OS, location or SSH key in a (raw) create body.

    Only fields of the right type are looked up, so this can run on a body that fails
    validation elsewhere and the 400 still names every bad field at once.
    """
    errors: dict[str, list[str]] = {}
    plan_id, os_id = body.get("plan_id"), body.get("os_id")
    location, key_id = body.get("location"), body.get("ssh_key_id")
    if _is_id(plan_id):
        plan = await session.get(Plan, plan_id)
        if plan is None or not plan.available:
            errors["plan_id"] = [f"Unknown plan {plan_id}."]
    if _is_id(os_id):
        os = await session.get(OperatingSystem, os_id)
        if os is None or not os.available:
            errors["os_id"] = [f"Unknown operating system {os_id}."]
    if isinstance(location, str):
        found = await session.get(Location, location)
        if found is None or not found.available:
            errors["location"] = [f"Unknown location '{location}'."]
    if _is_id(key_id) and await catalog.get_ssh_key(session, account.id, key_id) is None:
        errors["ssh_key_id"] = [f"Unknown SSH key {key_id}."]
    return errors


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


async def _resolve_references(
    session: AsyncSession, account: Account, data: ServerCreate
) -> tuple[Plan, OperatingSystem, Location]:
    errors = await reference_errors(session, account, data.model_dump())
    if errors:
        names = ", ".join(f"'{name}'" for name in errors)
        raise InvalidParameters(f"Invalid parameters: {names}.", errors)
    plan = await session.get(Plan, data.plan_id)
    os = await session.get(OperatingSystem, data.os_id)
    location = await session.get(Location, data.location)
    assert plan is not None and os is not None and location is not None
    return plan, os, location


async def update_server(
    session: AsyncSession, server: Server, data: ServerReplace | ServerPatch
) -> Server:
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(server, field, value)
    if changes:
        server.updated_at = utcnow()
    await session.flush()
    return server


async def request_power(
    session: AsyncSession, account: Account, server: Server, name: str
) -> tuple[Server, Action]:
    """Accept start/stop/reboot: set the transitional status and queue the action."""
    power = POWER_COMMANDS[name]
    _check_actionable(account, server, power)
    won = await repository.transition(session, server.id, [power.from_status], power.to_status)
    if not won:
        await session.refresh(server)
        _check_actionable(account, server, power)
        raise InvalidState(f"Server status changed to '{server.status}'; try again.")
    action = queue.enqueue(session, server.id, account.id, power.command)
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
    """Hide the server at once and queue the destruction of its machine."""
    won = await repository.transition(
        session, server.id, VISIBLE_STATUSES, ServerStatus.DELETING, deleted_at=utcnow()
    )
    if not won:
        raise NotFound(f"Server {server.id} not found.")
    action = queue.enqueue(session, server.id, account.id, ActionCommand.DELETE)
    await session.flush()
    return action
