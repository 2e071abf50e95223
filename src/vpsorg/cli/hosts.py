"""`vpsorg hosts`: hypervisor hosts and placement."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import (
    in_transaction,
    or_exit,
    print_records,
    require_migrated_database,
    settings,
    with_driver,
)
from vpsorg.db import create_engine, session_factory
from vpsorg.drivers.base import Driver, HostCapacity

if TYPE_CHECKING:
    from vpsorg.hosts.models import Host

app = typer.Typer(help="Hypervisor hosts and placement.", no_args_is_help=True)


@app.command("add")
def hosts_add(
    name: str,
    location: Annotated[str, typer.Option(help="Location code, e.g. us-west.")],
    uri: Annotated[str, typer.Option(help="libvirt URI, e.g. qemu+ssh://kvm1/system.")],
    vcpus: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    cpu_overcommit: Annotated[float, typer.Option(help="vCPUs sold per core.")] = 4.0,
    memory_overcommit: Annotated[float, typer.Option()] = 1.0,
    disk_overcommit: Annotated[float, typer.Option()] = 1.0,
) -> None:
    """Register a hypervisor host; prints its id."""
    from vpsorg.hosts import service as hosts

    capacity = HostCapacity(vcpus or 0, memory_mb or 0, disk_gb or 0)
    if None in (vcpus, memory_mb, disk_gb):
        read = with_driver(lambda driver: driver.capacity(host_uri=uri))
        if settings().driver == "simulator":
            typer.echo(
                "note: the simulator driver reports a simulated capacity, not this host's; "
                "give --vcpus, --memory-mb and --disk-gb for real numbers",
                err=True,
            )
        capacity = HostCapacity(
            vcpus or read.vcpus, memory_mb or read.memory_mb, disk_gb or read.disk_gb
        )
    overcommit = hosts.Overcommit(cpu_overcommit, memory_overcommit, disk_overcommit)

    async def work(session: AsyncSession) -> int:
        host = await hosts.add_host(session, name, location, uri, capacity, overcommit)
        command = f"hosts add {shlex.quote(name)} --location {location}"
        await audit.record_operator_change(session, command, resource=f"host:{host.id}")
        return host.id

    host_id = in_transaction(or_exit(work))
    typer.echo(
        f"host {name}: {capacity.vcpus} vCPUs, {capacity.memory_mb} MB, "
        f"{capacity.disk_gb} GB in {location}",
        err=True,
    )
    typer.echo(host_id)


@app.command("list")
def hosts_list(
    location: Annotated[str | None, typer.Option(help="Only this location.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Every field, as JSON.")] = False,
) -> None:
    """Hosts with their state and what their servers take (used/capacity after overcommit)."""
    from vpsorg.hosts import repository

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        found = await repository.hosts_with_allocations(session, location)
        return [
            {
                "id": h.id,
                "name": h.name,
                "location": h.location_code,
                "state": "disabled" if not h.enabled else "draining" if h.draining else "enabled",
                "servers": u.servers,
                "vcpus": _used(u.vcpus, h.vcpus * h.cpu_overcommit),
                "memory_mb": _used(u.memory_mb, h.memory_mb * h.memory_overcommit),
                "disk_gb": _used(u.disk_gb, h.disk_gb * h.disk_overcommit),
                "uri": h.uri,
            }
            for h, u in found
        ]

    columns = {
        "id": "ID",
        "name": "NAME",
        "location": "LOCATION",
        "state": "STATE",
        "servers": "SERVERS",
        "vcpus": "VCPUS",
        "memory_mb": "MEMORY MB",
        "disk_gb": "DISK GB",
        "uri": "URI",
    }
    print_records(in_transaction(work), columns, as_json=as_json)


def _used(used: int, capacity: float) -> str:
    return f"{used}/{capacity:g}"


def _host_state_command(
    name: str, change: Callable[[AsyncSession, str], Awaitable[Host]], said: str, verb: str
) -> None:
    async def work(session: AsyncSession) -> None:
        host = await change(session, name)
        command = f"hosts {verb} {shlex.quote(name)}"
        await audit.record_operator_change(session, command, resource=f"host:{host.id}")

    in_transaction(or_exit(work))
    typer.echo(f"host {name}: {said}", err=True)


@app.command("disable")
def hosts_disable(name: str) -> None:
    """Take a host out of service: no new servers, not reconciled."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.disable, "disabled", "disable")


@app.command("drain")
def hosts_drain(name: str) -> None:
    """Place no new servers on a host; its servers keep running."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.drain, "draining", "drain")


@app.command("enable")
def hosts_enable(name: str) -> None:
    """Put a host back in service (undoes disable and drain)."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.enable, "enabled", "enable")


@app.command("audit")
def hosts_audit(
    fix: Annotated[bool, typer.Option(help="Also correct statuses, as the worker does.")] = False,
) -> None:
    """Compare every host's machines with the database; list machines no server owns."""
    from vpsorg.hosts.reconciler import Reconciler

    configured = settings()
    require_migrated_database(configured)

    async def work(driver: Driver) -> list[str]:
        engine = create_engine(configured.database_url)
        try:
            reconciler = Reconciler(session_factory(engine), driver)
            return [f.describe() for f in await reconciler.run(correct=fix)]
        finally:
            await engine.dispose()

    findings = with_driver(work)
    typer.echo("\n".join(findings) if findings else "every host matches the database")
