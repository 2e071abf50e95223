"""``vps action list|describe|wait``."""

from __future__ import annotations

from typing import Annotated

import typer

from vpsorg_client.cli.common import (
    Column,
    OutputOption,
    TimeoutOption,
    make_client,
    parse_id,
    show_list,
    show_one,
    wait_with_progress,
)

app = typer.Typer(help="What creates and power commands started.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", "id"),
    ("COMMAND", "command"),
    ("STATUS", "status"),
    ("PROGRESS", "progress"),
    ("SERVER", "server_id"),
    ("STARTED", "started_at"),
    ("FINISHED", "finished_at"),
    ("ERROR", "error.message"),
]
ActionArgument = Annotated[str, typer.Argument(help="The action's id.")]


@app.command("list")
def list_actions(
    server: Annotated[int | None, typer.Option(help="Only this server's actions.")] = None,
    output: OutputOption = None,
) -> None:
    """The account's actions (or a server's), newest first."""
    with make_client() as client:
        if server is None:
            show_list(client.actions.list(), COLUMNS, output)
        else:
            show_list(client.actions.list_for_server(server), COLUMNS, output)


@app.command("describe")
def describe(action: ActionArgument, output: OutputOption = None) -> None:
    """One action."""
    with make_client() as client:
        show_one(client.actions.get(parse_id(action, "action")).to_dict(), output)


@app.command("wait")
def wait(
    action: ActionArgument, timeout: TimeoutOption = 600.0, output: OutputOption = None
) -> None:
    """Wait for an action to finish; exit 1 if it ends in error."""
    with make_client() as client:
        current = client.actions.get(parse_id(action, "action"))
        show_one(wait_with_progress(current, timeout).to_dict(), output)
