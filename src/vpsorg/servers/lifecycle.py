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
from vpsorg.billing import service as billing
from vpsorg.catalog.models import SshKey
from vpsorg.clock import utcnow
from vpsorg.drivers.base import Driver, MachineSpec, Usage
from vpsorg.servers import repository
from vpsorg.servers.ipam import gateway, prefix_length
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


@dataclass(frozen=True)
class Job:
    action_id: int
    command: str
    server_id: int
    machine: str
    host_uri: str | None
    spec: MachineSpec | None
    operation_id: str  # names this action to the hypervisor (reboot: at most once)


async def prepare(session: AsyncSession, action: Action) -> Job:
    server = await session.get(Server, action.server_id)
    assert server is not None
    spec = None
    if action.command == ActionCommand.CREATE:
        spec = await _machine_spec(session, server)
    host_uri = server.host.uri if server.host is not None else None
    machine = server.machine_name
    return Job(action.id, action.command, server.id, machine, host_uri, spec, operation_id(action))


def operation_id(action: Action) -> str:
    """The action's id and creation time: a database made anew counts ids from 1 again,
    but the hypervisor keeps what it recorded of the machines it already had."""
    return f"action-{action.id}-{action.created_at:%Y%m%dT%H%M%S.%f}"


async def _machine_spec(session: AsyncSession, server: Server) -> MachineSpec:
    key = await session.get(SshKey, server.ssh_key_id) if server.ssh_key_id else None
    location = server.location
    return MachineSpec(
        name=server.machine_name, hostname=server.hostname or server.name,
        vcpus=server.plan.vcpus, memory_mb=server.plan.memory_mb,
        disk_gb=server.plan.storage_gb, os_slug=server.os.slug, image=server.os.image,
        kernel=server.os.kernel, initrd=server.os.initrd, cmdline=server.os.cmdline,
        ssh_public_key=key.public_key if key else None,
        ipv4_address=server.ipv4_address, ipv4_prefix=prefix_length(location.ipv4_pool),
        ipv4_gateway=gateway(location.ipv4_pool),
        ipv6_address=server.ipv6_address, ipv6_prefix=prefix_length(location.ipv6_pool),
        ipv6_gateway=gateway(location.ipv6_pool),
        host_uri=server.host.uri if server.host is not None else None,
    )  # fmt: skip


async def perform(driver: Driver, job: Job, stop_timeout: float) -> Usage | None:
    """Run the job on the hypervisor; return fresh usage when the machine is up."""
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
        return None
    else:
        raise ValueError(f"unknown command {job.command!r}")
    return await driver.usage(job.machine, host_uri=job.host_uri)


async def succeeded(session: AsyncSession, job: Job, usage: Usage | None) -> None:
    during, after = OUTCOMES[job.command]
    values: dict[str, Any] = {}
    if job.command == ActionCommand.CREATE:
        values["provisioned_at"] = utcnow()
    if job.command == ActionCommand.DELETE:
        values.update(ipv4_address=None, ipv6_address=None)
    if usage is not None:
        values.update(usage_values(usage))
    await repository.transition(session, job.server_id, [during], after, **values)


async def failed(session: AsyncSession, job: Job) -> None:
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
