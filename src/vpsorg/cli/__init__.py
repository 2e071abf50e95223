"""The ``vpsorg`` command, the operator's tool: one module per command group."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from vpsorg.cli import accounts, db, hosts, images, locations, plans, simulator, tokens, users
from vpsorg.cli.audit import audit_events
from vpsorg.cli.serve import run_worker, serve

app = typer.Typer(
    help="vpsorg: a VPS control plane implementing the VPS.org Servers API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"vpsorg {version('vpsorg')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """vpsorg: a VPS control plane implementing the VPS.org Servers API."""


app.command("serve")(serve)
app.command("worker")(run_worker)
app.command("audit")(audit_events)
app.add_typer(db.app, name="db")
app.add_typer(accounts.app, name="accounts")
app.add_typer(plans.app, name="plans")
app.add_typer(tokens.app, name="tokens")
app.add_typer(users.app, name="users")
app.add_typer(hosts.app, name="hosts")
app.add_typer(locations.app, name="locations")
app.add_typer(images.app, name="os")
app.add_typer(simulator.app, name="simulator")


def main() -> None:
    app()
