"""``vps server ...``: the servers API, with ``--wait`` on every command that starts an action."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vpsorg_client.cli.common import (
    Column,
    OutputOption,
    TimeoutOption,
    WaitOption,
    make_client,
    show_list,
    show_one,
    stderr,
    wait_with_progress,
)
from vpsorg_client.client import Client
from vpsorg_client.errors import InvalidParameters, NotFound, VpsError
from vpsorg_client.models import Action, Backup, BackupKind, ServerStatus

app = typer.Typer(help="Create, inspect, change, power and delete servers.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("IPV4", "ip_address"),
    ("LOCATION", "location"),
    ("PLAN", "plan.name"),
    ("OS", "os.name"),
    ("CREATED", "created_at"),
]

ServerArgument = Annotated[str, typer.Argument(help="The server's id or name.")]


def server_id(client: Client, reference: str) -> int:
    """An id as given, or the id of the one server with that name."""
    if reference.isdigit():
        return int(reference)
    matches = [server.id for server in client.servers.list() if server.name == reference]
    if len(matches) != 1:
        problem = "no server is" if not matches else f"{len(matches)} servers are"
        raise NotFound(f"{problem} named {reference!r}; give its id.", code="not_found")
    return matches[0]


def finish(
    client: Client, action: Action, wait: bool, timeout: float, output: OutputOption
) -> None:
    """Without --wait: the action. With it: wait, then the server as the action left it."""
    if not wait:
        show_one(action.to_dict(), output)
        return
    wait_with_progress(action, timeout)
    show_one(client.servers.get(action.server_id).to_dict(), output)


@app.command("list")
def list_servers(
    status: Annotated[
        ServerStatus | None, typer.Option(help="Only servers in this status.")
    ] = None,
    location: Annotated[str | None, typer.Option(help="Only servers in this location.")] = None,
    output: OutputOption = None,
) -> None:
    """Every server of the account."""
    with make_client() as client:
        show_list(client.servers.list(status=status, location=location), COLUMNS, output)


@app.command("describe")
def describe(server: ServerArgument, output: OutputOption = None) -> None:
    """One server in detail, resource usage included."""
    with make_client() as client:
        show_one(client.servers.get(server_id(client, server)).to_dict(), output)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Letters, digits and hyphens.")],
    plan: Annotated[int, typer.Option(help="Plan id (`vps plan list`).")],
    os: Annotated[int, typer.Option("--os", help="OS image id (`vps os list`).")],
    location: Annotated[str, typer.Option(help="Location code (`vps location list`).")],
    hostname: Annotated[str | None, typer.Option(help="Fully qualified host name.")] = None,
    ssh_key: Annotated[int | None, typer.Option(help="SSH key id to install.")] = None,
    backups: Annotated[bool, typer.Option("--backups", help="Enable backups.")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Create a server; with --wait, print it once it is built."""
    with make_client() as client:
        created = client.servers.create(
            name=name,
            plan_id=plan,
            os_id=os,
            location=location,
            hostname=hostname,
            ssh_key_id=ssh_key,
            backups_enabled=backups,
        )
        if not wait:
            stderr.print(f"Server {created.server.id} is being built (action {created.action.id}).")
            show_one(created.to_dict(), output)
            return
        wait_with_progress(created.action, timeout)
        show_one(client.servers.get(created.server.id).to_dict(), output)


@app.command("update")
def update(
    server: ServerArgument,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    hostname: Annotated[str | None, typer.Option(help="New host name.")] = None,
    backups: Annotated[
        bool | None, typer.Option("--backups/--no-backups", help="Enable or disable backups.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Change a server's name, host name or backups (only what is given)."""
    if name is None and hostname is None and backups is None:
        raise InvalidParameters("Nothing to change: give --name, --hostname or --backups.")
    with make_client() as client:
        changed = client.servers.update(
            server_id(client, server), name=name, hostname=hostname, backups_enabled=backups
        )
        show_one(changed.to_dict(), output)


class NotConfirmed(VpsError):
    """A destructive command was not confirmed (no terminal to ask on, or the answer no)."""

    default_code = "not_confirmed"


YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", "--force", "-f", help="Delete without asking for confirmation."),
]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def going_with(ident: int, backups: list[Backup]) -> str:
    """What deleting the server also deletes: its backups and snapshots, counted."""
    snapshots = sum(1 for backup in backups if backup.kind is BackupKind.SNAPSHOT)
    automatic = len(backups) - snapshots
    return (
        f"Deleting server {ident} also deletes its {plural(automatic, 'backup')} "
        f"and {plural(snapshots, 'snapshot')}."
    )


@app.command("delete")
def delete(server: ServerArgument, yes: YesOption = False) -> None:
    """Delete a server permanently, with its backups and snapshots (it cannot be undone).

    Asks for confirmation on a terminal; without one, refuses unless --yes is given."""
    with make_client() as client:
        ident = server_id(client, server)
        warning = going_with(ident, list(client.backups.list(ident)))
        if not yes and not sys.stdin.isatty():
            raise NotConfirmed(
                f"{warning} Not deleted: stdin is not a terminal to confirm on; pass --yes."
            )
        stderr.print(warning, markup=False)
        if not yes and not typer.confirm(f"Delete server {ident}?", default=False, err=True):
            raise NotConfirmed(f"Server {ident} not deleted.")
        client.servers.delete(ident)
        stderr.print(f"Server {ident} deleted.")


@app.command("start")
def start(
    server: ServerArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Power a stopped server on."""
    with make_client() as client:
        finish(client, client.servers.start(server_id(client, server)), wait, timeout, output)


@app.command("stop")
def stop(
    server: ServerArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Shut a running server down gracefully."""
    with make_client() as client:
        finish(client, client.servers.stop(server_id(client, server)), wait, timeout, output)


@app.command("reboot")
def reboot(
    server: ServerArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Restart a running server gracefully."""
    with make_client() as client:
        finish(client, client.servers.reboot(server_id(client, server)), wait, timeout, output)
