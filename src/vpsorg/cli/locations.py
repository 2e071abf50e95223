"""`vpsorg locations`: locations, their address ranges and how their guests meet the network."""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import in_transaction, or_exit
from vpsorg.drivers.base import NetworkMode

if TYPE_CHECKING:
    from vpsorg.locations.service import LocationSummary

app = typer.Typer(help="Locations, address ranges and networks.", no_args_is_help=True)

MODES = ", ".join(m.value for m in NetworkMode)
ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help=f"How guests meet the network: {MODES}. bridge/network: an existing host bridge "
        "or libvirt network (--network-name); isolated/route/nat: a network vpsorg makes.",
    ),
]
NetworkOption = Annotated[
    str | None,
    typer.Option(
        "--network-name",
        help="The host bridge or libvirt network (default for vpsorg-made: vpsorg-CODE).",
    ),
]


@app.command("list")
def locations_list() -> None:
    """Locations, each with its network and its ranges (addresses used and free)."""
    from vpsorg.locations import service

    found = in_transaction(service.summaries)
    typer.echo("\n".join(_table(found)))


def _table(found: list[LocationSummary]) -> list[str]:
    rows = [["LOCATION", "STATE", "MODE", "NETWORK", "RANGE", "GATEWAY", "USED", "FREE"]]
    for summary in found:
        location = summary.location
        state = "available" if location.available else "disabled"
        head = [location.code, state, location.network_mode, summary.network]
        if not summary.ranges:
            rows.append([*head, "(no ranges)", "", "", ""])
        for number, usage in enumerate(summary.ranges):
            r = usage.address_range
            columns = head if number == 0 else [""] * len(head)
            rows.append([*columns, r.cidr, r.gateway, str(usage.used), _count(usage.free)])
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if n >= 6 else cell.ljust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _count(number: int) -> str:
    """Exact up to 10^7, then as a power of two (an IPv6 /64 holds 2^64 addresses)."""
    return str(number) if number < 10**7 else f"~2^{round(math.log2(number))}"


@app.command("add")
def locations_add(
    code: str,
    name: Annotated[str, typer.Option("--name", help="Shown to customers.")],
    mode: ModeOption = None,
    network_name: NetworkOption = None,
) -> None:
    """Add a location (no ranges yet: add-range)."""
    from vpsorg.locations import service

    async def work(session: AsyncSession) -> None:
        await service.add_location(session, code, name, mode or NetworkMode.NAT, network_name)
        await audit.record_operator_change(
            session,
            _command("add", code, mode=mode, network_name=network_name),
            resource=f"location:{code}",
        )

    in_transaction(or_exit(work))
    typer.echo(code)


@app.command("update")
def locations_update(
    code: str,
    name: Annotated[str | None, typer.Option("--name")] = None,
    mode: ModeOption = None,
    network_name: NetworkOption = None,
    available: Annotated[
        bool | None, typer.Option("--available/--unavailable", help="Open to new servers.")
    ] = None,
) -> None:
    """Change a location's name, network or availability (running guests keep their NIC)."""
    from vpsorg.locations import service

    async def work(session: AsyncSession) -> None:
        await service.update_location(
            session, code, name=name, mode=mode, network=network_name, available=available
        )
        avail = None if available is None else ("available" if available else "unavailable")
        command = _command("update", code, mode=mode, network_name=network_name, flag=avail)
        await audit.record_operator_change(session, command, resource=f"location:{code}")

    in_transaction(or_exit(work))
    typer.echo(f"location {code}: updated", err=True)


@app.command("disable")
def locations_disable(code: str) -> None:
    """No new servers in this location; its servers keep running."""
    from vpsorg.locations import service

    async def work(session: AsyncSession) -> None:
        await service.update_location(session, code, available=False)
        await audit.record_operator_change(
            session, f"locations disable {shlex.quote(code)}", resource=f"location:{code}"
        )

    in_transaction(or_exit(work))
    typer.echo(f"location {code}: disabled", err=True)


@app.command("add-range")
def locations_add_range(
    location: str,
    cidr: str,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="Default: the range's first host.")
    ] = None,
) -> None:
    """Add an IPv4 or IPv6 range to a location (never overlapping another range)."""
    from vpsorg.locations import service

    async def work(session: AsyncSession) -> tuple[str, str]:
        added = await service.add_range(session, location, cidr, gateway)
        command = f"locations add-range {shlex.quote(location)} {shlex.quote(cidr)}"
        if gateway:
            command += f" --gateway {shlex.quote(gateway)}"
        await audit.record_operator_change(session, command, resource=f"location:{location}")
        return added.cidr, added.gateway

    added_cidr, added_gateway = in_transaction(or_exit(work))
    typer.echo(f"location {location}: range {added_cidr}, gateway {added_gateway}", err=True)


def _command(verb: str, code: str, **options: str | None) -> str:
    parts = ["locations", verb, shlex.quote(code)]
    for option, value in options.items():
        if value is None:
            continue
        parts.append(f"--{value}" if option == "flag" else f"--{option.replace('_', '-')}")
        if option != "flag":
            parts.append(shlex.quote(value))
    return " ".join(parts)
