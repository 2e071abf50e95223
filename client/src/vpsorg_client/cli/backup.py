"""``vps backup list|create|restore|delete``: a server's backups and snapshots."""

from __future__ import annotations

from typing import Annotated

import typer

from vpsorg_client.cli.common import (
    Column,
    OutputOption,
    TimeoutOption,
    WaitOption,
    make_client,
    parse_id,
    show_list,
    show_one,
    stderr,
    wait_with_progress,
)
from vpsorg_client.cli.server import ServerArgument, server_id
from vpsorg_client.errors import NotFound

app = typer.Typer(
    help="A server's backups (automatic) and snapshots (on demand).", no_args_is_help=True
)

COLUMNS: list[Column] = [
    ("ID", "id"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("SIZE (GB)", "size_gb"),
    ("CREATED", "created_at"),
]
BackupArgument = Annotated[str, typer.Argument(help="The backup's or snapshot's id.")]


@app.command("list")
def list_backups(server: ServerArgument, output: OutputOption = None) -> None:
    """The server's backups and snapshots, oldest first."""
    with make_client() as client:
        show_list(client.backups.list(server_id(client, server)), COLUMNS, output)


@app.command("create")
def create(
    server: ServerArgument,
    name: Annotated[str, typer.Option(help="The snapshot's name (1-63 characters).")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Take a snapshot of the server's disk; with --wait, print it once it is available."""
    with make_client() as client:
        ident = server_id(client, server)
        created = client.backups.create_snapshot(ident, name=name)
        if not wait:
            stderr.print(
                f"Snapshot {created.backup.id} is being taken (action {created.action.id})."
            )
            show_one(created.to_dict(), output)
            return
        wait_with_progress(created.action, timeout)
        backup = next((b for b in client.backups.list(ident) if b.id == created.backup.id), None)
        if backup is None:
            raise NotFound(f"Snapshot {created.backup.id} is gone.", code="not_found")
        show_one(backup.to_dict(), output)


@app.command("restore")
def restore(
    server: ServerArgument,
    backup: BackupArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    output: OutputOption = None,
) -> None:
    """Replace the server's disk with a backup's (a running server is restarted)."""
    with make_client() as client:
        ident = server_id(client, server)
        action = client.backups.restore(ident, parse_id(backup, "backup"))
        if not wait:
            show_one(action.to_dict(), output)
            return
        wait_with_progress(action, timeout)
        show_one(client.servers.get(ident).to_dict(), output)


@app.command("delete")
def delete(server: ServerArgument, backup: BackupArgument) -> None:
    """Delete a backup or snapshot (it is gone, and stops costing, at once)."""
    with make_client() as client:
        ident = server_id(client, server)
        backup_id = parse_id(backup, "backup")
        client.backups.delete(ident, backup_id)
        stderr.print(f"Backup {backup_id} of server {ident} deleted.")
