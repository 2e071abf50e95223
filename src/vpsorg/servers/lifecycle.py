"""What each action does to a machine and to its server row.

``prepare`` reads what the driver needs (inside the claim's transaction), ``perform``
calls the driver (no transaction held), and ``succeeded``/``failed`` write the outcome.
Every status write is guarded by the status it expects, so a server that was deleted
while its create was running stays ``deleting``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.actions.models import Action, ActionCommand
from vpsorg.backups import repository as backups
from vpsorg.backups import service as backup_service
from vpsorg.backups.models import Backup
from vpsorg.billing import service as billing
from vpsorg.catalog.models import SshKey
from vpsorg.clock import utcnow
from vpsorg.drivers.base import BackupInfo, Driver, MachineSpec, Usage
from vpsorg.locations import ipam
from vpsorg.locations import repository as locations
from vpsorg.locations.service import network_attachment
from vpsorg.servers import repository
from vpsorg.servers.models import Server, ServerStatus

BYTES_PER_GB = 1_000_000_000

# command -> (status while running, status on success)
OUTCOMES: dict[str, tuple[ServerStatus, ServerStatus]] = {
    ActionCommand.CREATE: (ServerStatus.PROVISIONING, ServerStatus.ACTIVE),
    ActionCommand.START: (ServerStatus.STARTING, ServerStatus.ACTIVE),
    ActionCommand.STOP: (ServerStatus.STOPPING, ServerStatus.STOPPED),
    ActionCommand.REBOOT: (ServerStatus.REBOOTING, ServerStatus.ACTIVE),
    ActionCommand.DELETE: (ServerStatus.DELETING, ServerStatus.DELETED),
    ActionCommand.SUSPEND: (ServerStatus.SUSPENDED, ServerStatus.SUSPENDED),
}
COPIES = (ActionCommand.BACKUP, ActionCommand.SNAPSHOT)
"""Backups and snapshots leave the server's status alone (see backups/service.py)."""

Outcome = Usage | BackupInfo | None
"""What ``perform`` learnt: fresh usage of a machine that is up, or the backup it took."""


@dataclass(frozen=True)
class Job:
    action_id: int
    command: str
    server_id: int
    machine: str
    host_uri: str | None
    spec: MachineSpec | None
    operation_id: str  # names this action to the hypervisor (reboot: at most once)
    backup_id: int | None = None  # backup, snapshot, restore, delete_backup: which one
    backup: str | None = None  # its name on the host
    was_running: bool = False  # restore: start the machine again afterwards
    backups: tuple[str, ...] = ()  # delete: the server's backups, deleted with it


async def prepare(session: AsyncSession, action: Action) -> Job:
    server = await session.get(Server, action.server_id)
    assert server is not None
    spec = None
    if action.command == ActionCommand.CREATE:
        spec = await _machine_spec(session, server)
    host_uri = server.host.uri if server.host is not None else None
    machine = server.machine_name
    backup = await session.get(Backup, action.backup_id) if action.backup_id else None
    volumes: list[str] = []
    if action.command == ActionCommand.DELETE:
        volumes = await backups.volumes_of_server(session, server.id)
    return Job(
        action.id, action.command, server.id, machine, host_uri, spec, operation_id(action),
        backup_id=action.backup_id, backup=backup.volume if backup is not None else None,
        was_running=server.status in (ServerStatus.ACTIVE, ServerStatus.REBOOTING),
        backups=tuple(volumes),
    )  # fmt: skip


def operation_id(action: Action) -> str:
    """The action's id and creation time: a database made anew counts ids from 1 again,
    but the hypervisor keeps what it recorded of the machines it already had."""
    return f"action-{action.id}-{action.created_at:%Y%m%dT%H%M%S.%f}"


async def _machine_spec(session: AsyncSession, server: Server) -> MachineSpec:
    key = await session.get(SshKey, server.ssh_key_id) if server.ssh_key_id else None
    ranges = await locations.ranges_of(session, server.location_code)
    ipv4 = ipam.holding_range(ranges, server.ipv4_address)
    ipv6 = ipam.holding_range(ranges, server.ipv6_address)
    return MachineSpec(
        name=server.machine_name, hostname=server.hostname or server.name,
        vcpus=server.plan.vcpus, memory_mb=server.plan.memory_mb,
        disk_gb=server.plan.storage_gb, os_slug=server.os.slug, image=server.os.image,
        kernel=server.os.kernel, initrd=server.os.initrd, cmdline=server.os.cmdline,
        ssh_public_key=key.public_key if key else None,
        ipv4_address=server.ipv4_address,
        ipv4_prefix=ipam.shape(ipv4).guest_prefix if ipv4 else 24,
        ipv4_gateway=ipv4.gateway if ipv4 else None,
        ipv6_address=server.ipv6_address,
        ipv6_prefix=ipam.shape(ipv6).guest_prefix if ipv6 else 64,
        ipv6_gateway=ipv6.gateway if ipv6 else None,
        host_uri=server.host.uri if server.host is not None else None,
        network=network_attachment(server.location, ranges),
    )  # fmt: skip


async def perform(driver: Driver, job: Job, stop_timeout: float) -> Outcome:
    """Run the job on the hypervisor; return fresh usage when the machine is up."""
    if job.command in COPIES:
        assert job.backup is not None
        return await driver.backup(job.machine, job.backup, host_uri=job.host_uri)
    if job.command == ActionCommand.DELETE_BACKUP:
        assert job.backup is not None
        await driver.delete_backup(job.backup, host_uri=job.host_uri)
        return None
    if job.command == ActionCommand.RESTORE:
        return await _restore(driver, job, stop_timeout)
    if job.command == ActionCommand.CREATE:
        assert job.spec is not None
        await driver.create(job.spec)
    elif job.command == ActionCommand.START:
        await driver.start(job.machine, host_uri=job.host_uri)
    elif job.command in (ActionCommand.STOP, ActionCommand.SUSPEND):
        await driver.stop(job.machine, stop_timeout, host_uri=job.host_uri)
    elif job.command == ActionCommand.REBOOT:
        await driver.reboot(job.machine, host_uri=job.host_uri, operation_id=job.operation_id)
    elif job.command == ActionCommand.DELETE:
        await driver.delete(job.machine, host_uri=job.host_uri)
        for backup in job.backups:
            await driver.delete_backup(backup, host_uri=job.host_uri)
        return None
    else:
        raise ValueError(f"unknown command {job.command!r}")
    return await driver.usage(job.machine, host_uri=job.host_uri)


async def _restore(driver: Driver, job: Job, stop_timeout: float) -> Usage | None:
    """Stop, replace the disk, start again if it ran: each step is safe to repeat."""
    assert job.backup is not None
    if job.was_running:
        await driver.stop(job.machine, stop_timeout, host_uri=job.host_uri)
    await driver.restore(job.machine, job.backup, host_uri=job.host_uri)
    if not job.was_running:
        return None
    await driver.start(job.machine, host_uri=job.host_uri)
    return await driver.usage(job.machine, host_uri=job.host_uri)


async def succeeded(session: AsyncSession, job: Job, outcome: Outcome) -> None:
    if job.command in COPIES:
        assert job.backup_id is not None and isinstance(outcome, BackupInfo)
        await backup_service.record_taken(session, job.backup_id, outcome)
        return
    if job.command == ActionCommand.DELETE_BACKUP:
        return
    usage = outcome if isinstance(outcome, Usage) else None
    if job.command == ActionCommand.RESTORE:
        if job.was_running:
            fresh: dict[str, Any] = usage_values(usage) if usage is not None else {}
            await repository.transition(
                session, job.server_id, [ServerStatus.REBOOTING], ServerStatus.ACTIVE, **fresh
            )
        return
    during, after = OUTCOMES[job.command]
    values: dict[str, Any] = {}
    if job.command == ActionCommand.CREATE:
        values["provisioned_at"] = utcnow()
    held: list[str] = []
    if job.command == ActionCommand.DELETE:
        held = await repository.addresses_of(session, job.server_id)
        values.update(ipv4_address=None, ipv6_address=None)
    if usage is not None:
        values.update(usage_values(usage))
    moved = await repository.transition(session, job.server_id, [during], after, **values)
    if moved and held:
        # The machine is gone: its addresses go back to their ranges, to be reused first.
        server = await session.get(Server, job.server_id)
        assert server is not None
        await ipam.release(session, server.location_code, held)


async def failed(session: AsyncSession, job: Job) -> None:
    if job.command in COPIES:
        assert job.backup_id is not None
        await backup_service.record_failed(session, job.backup_id)
        return
    if job.command == ActionCommand.DELETE_BACKUP:
        return  # the backup stays hidden; the failed removal is on the action for operators
    if job.command == ActionCommand.RESTORE:
        if job.was_running:
            await repository.transition(
                session, job.server_id, [ServerStatus.REBOOTING], ServerStatus.ERROR
            )
        return
    if job.command == ActionCommand.SUSPEND:
        return  # the server stays suspended; the failed stop is on the action for operators
    if job.command == ActionCommand.CREATE:
        server = await session.get(Server, job.server_id)
        assert server is not None
        await billing.refund_failed_create(session, server)
    during, _after = OUTCOMES[job.command]
    await repository.transition(session, job.server_id, [during], ServerStatus.ERROR)


def usage_values(usage: Usage) -> dict[str, object]:
    """Column values for a usage sample, as SQL so concurrent samples cannot lose bytes.

    Bandwidth is the sum of the interface counter's increments in the billing period (the
    calendar month, UTC); a counter lower than the last one means the machine rebooted and
    counts from zero again.
    """
    now = utcnow()
    period = now.strftime("%Y-%m")
    counter = usage.network_bytes
    increment = case(
        (Server.network_counter_bytes <= counter, counter - Server.network_counter_bytes),
        else_=counter,
    )
    period_bytes = case(
        (Server.bandwidth_period == period, Server.bandwidth_period_bytes + increment),
        else_=increment,
    )
    return {
        "cpu_percent": usage.cpu_percent,
        "memory_used_mb": usage.memory_used_mb,
        "disk_used_gb": usage.disk_used_gb,
        "network_counter_bytes": counter,
        "bandwidth_period": period,
        "bandwidth_period_bytes": period_bytes,
        "bandwidth_used_gb": period_bytes // BYTES_PER_GB,
        "usage_sampled_at": now,
    }
