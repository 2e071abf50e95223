"""``vps context create|use|list|delete``: named API endpoints and their tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vpsorg_client import config
from vpsorg_client.cli.common import Column, OutputOption, show_list, stderr
from vpsorg_client.client import Client
from vpsorg_client.models import ApiModel

app = typer.Typer(help="Named API endpoints and their tokens.", no_args_is_help=True)


class ContextRow(ApiModel):
    name: str
    url: str
    active: bool


COLUMNS: list[Column] = [("ACTIVE", "active"), ("NAME", "name"), ("URL", "url")]


def read_token() -> str:
    """From a hidden prompt on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        token: str = typer.prompt("Token", hide_input=True)
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise typer.BadParameter("no token given (type it at the prompt, or pipe it on stdin)")
    return token


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for this API and token.")],
    url: Annotated[str, typer.Option(help="The API's URL, e.g. https://api.example.com")],
    verify: Annotated[
        bool, typer.Option(help="Check the token against the API before saving it.")
    ] = True,
) -> None:
    """Save a context (the token is read from a prompt or stdin) and make it active."""
    token = read_token()
    if verify:
        with Client(token=token, base_url=url) as client:
            account = client.account.get()
        stderr.print(f"Token works: account {account.name} ({account.id}).")
    settings = config.load()
    settings.contexts[name] = config.Context(name, url, token)
    settings.active = name
    path = config.save(settings)
    stderr.print(f"Context {name!r} saved in {path} and active.")


@app.command("use")
def use(name: Annotated[str, typer.Argument(help="The context to make active.")]) -> None:
    """Make a context the active one."""
    settings = config.load()
    if name not in settings.contexts:
        raise config.ConfigError(f"no context named {name!r}: see `vps context list`")
    settings.active = name
    config.save(settings)
    stderr.print(f"Context {name!r} is active.")


@app.command("list")
def list_contexts(output: OutputOption = None) -> None:
    """The saved contexts (tokens are not shown)."""
    settings = config.load()
    rows = [
        ContextRow(name=c.name, url=c.url, active=c.name == settings.active)
        for c in settings.contexts.values()
    ]
    show_list(rows, COLUMNS, output)


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The context to forget.")]) -> None:
    """Forget a context and its token."""
    settings = config.load()
    if settings.contexts.pop(name, None) is None:
        raise config.ConfigError(f"no context named {name!r}: see `vps context list`")
    if settings.active == name:
        settings.active = None
    config.save(settings)
    stderr.print(f"Context {name!r} deleted.")
