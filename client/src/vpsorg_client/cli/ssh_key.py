"""``vps ssh-key list|create|delete``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vpsorg_client.cli.common import (
    Column,
    OutputOption,
    make_client,
    parse_id,
    show_list,
    show_one,
    stderr,
)

app = typer.Typer(help="SSH keys to install on new servers.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("FINGERPRINT", "fingerprint"),
    ("CREATED", "created_at"),
]


@app.command("list")
def list_keys(output: OutputOption = None) -> None:
    """Every SSH key of the account."""
    with make_client() as client:
        show_list(client.ssh_keys.list(), COLUMNS, output)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A name for the key.")],
    public_key_file: Annotated[
        Path,
        typer.Option(
            "--public-key-file",
            "-f",
            exists=True,
            dir_okay=False,
            help="The public key, e.g. ~/.ssh/id_ed25519.pub",
        ),
    ],
    output: OutputOption = None,
) -> None:
    """Upload a public key."""
    with make_client() as client:
        key = client.ssh_keys.create(name=name, public_key=public_key_file.read_text())
        show_one(key.to_dict(), output)


@app.command("delete")
def delete(key: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Delete an SSH key (servers that have it keep it)."""
    ident = parse_id(key, "SSH key")
    with make_client() as client:
        client.ssh_keys.delete(ident)
    stderr.print(f"SSH key {ident} deleted.")
