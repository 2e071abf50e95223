"""``vps account`` (balance and limits), ``vps account ledger``, ``vps account events``."""

from __future__ import annotations

import typer

from vpsorg_client.cli.common import Column, OutputOption, make_client, show_list, show_one

app = typer.Typer(help="The account: balance, limits, ledger and events.")

LEDGER_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("WHEN", "created_at"),
    ("KIND", "kind"),
    ("AMOUNT", "amount"),
    ("BALANCE", "balance_after"),
    ("MEMO", "memo"),
]
EVENT_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("WHEN", "created_at"),
    ("ACTOR", "actor"),
    ("METHOD", "method"),
    ("PATH", "path"),
    ("STATUS", "status"),
    ("OUTCOME", "outcome"),
    ("ERROR", "error_code"),
    ("REQUEST", "request_id"),
]


@app.callback(invoke_without_command=True)
def show(ctx: typer.Context, output: OutputOption = None) -> None:
    """The account's balance, burn rate and server limit."""
    if ctx.invoked_subcommand is not None:
        return
    with make_client() as client:
        show_one(client.account.get().to_dict(), output)


@app.command("ledger")
def ledger(output: OutputOption = None) -> None:
    """Every credit and charge, newest first."""
    with make_client() as client:
        show_list(client.account.ledger(), LEDGER_COLUMNS, output)


@app.command("events")
def events(output: OutputOption = None) -> None:
    """Every change made on the account, refused attempts included, newest first."""
    with make_client() as client:
        show_list(client.events.list(), EVENT_COLUMNS, output)
