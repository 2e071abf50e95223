"""`vpsorg db`: the database schema."""

from __future__ import annotations

import typer

from vpsorg import migrate
from vpsorg.cli.common import settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database and the default catalog)."""
    migrate.upgrade(settings().database_url)
    typer.echo("database is up to date", err=True)
