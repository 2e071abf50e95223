"""``vps token list|create|revoke``: the account's API tokens."""

from __future__ import annotations

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
from vpsorg_client.models import TokenScope

app = typer.Typer(help="API tokens of the account.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", "id"),
    ("NAME", "name"),
    ("SCOPE", "scope"),
    ("PREFIX", "prefix"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
]


@app.command("list")
def list_tokens(output: OutputOption = None) -> None:
    """Every token (their secrets are never shown again)."""
    with make_client() as client:
        show_list(client.tokens.list(), COLUMNS, output)


@app.command("create")
def create(
    name: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    scope: Annotated[TokenScope | None, typer.Option(help="read or write.")] = None,
    expires_in: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
    output: OutputOption = None,
) -> None:
    """Create a token; its secret is printed this once."""
    with make_client() as client:
        token = client.tokens.create(name=name, scope=scope, expires_in=expires_in)
    stderr.print("Keep the token now: it is not shown again.")
    show_one(token.to_dict(), output)


@app.command("revoke")
def revoke(token: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token at once."""
    ident = parse_id(token, "token")
    with make_client() as client:
        client.tokens.revoke(ident)
    stderr.print(f"Token {ident} revoked.")
