"""The ``vps`` command, in the manner of ``hcloud`` and ``doctl``.

Errors are one line on stderr (the API's detail, field errors, code and request id) and
exit code 1; a wait whose action ends in error exits 1 the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from vpsorg_client import __version__
from vpsorg_client.cli import (
    account,
    action,
    backup,
    catalog,
    context,
    server,
    ssh_key,
    token,
)
from vpsorg_client.cli.common import State, stderr
from vpsorg_client.config import ConfigError
from vpsorg_client.errors import VpsError


class VpsGroup(TyperGroup):
    """Every failure, from any subcommand, ends here as one line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # click.Context: typer vendors its own click
        try:
            return super().invoke(ctx)
        except VpsError as error:
            fail(f"Error: {error}")
        except ConfigError as error:
            fail(f"Error: {error} (code config_error)")


def fail(line: str) -> None:
    stderr.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(1)


app = typer.Typer(
    name="vps",
    cls=VpsGroup,
    help="Manage your servers on a vpsorg-hosted API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(context.app, name="context")
app.add_typer(server.app, name="server")
app.add_typer(backup.app, name="backup")
app.add_typer(ssh_key.app, name="ssh-key")
app.add_typer(catalog.plans, name="plan")
app.add_typer(catalog.images, name="os")
app.add_typer(catalog.locations, name="location")
app.add_typer(action.app, name="action")
app.add_typer(account.app, name="account")
app.add_typer(token.app, name="token")


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"vps {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    use_context: Annotated[
        str | None,
        typer.Option(
            "--context", "-c", envvar="VPS_CONTEXT", help="Use this context, not the active one."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    State.context = use_context


def main() -> None:
    app()
