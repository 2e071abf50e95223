"""What every command group shares: the client of the chosen context, the output formats,
and the progress display of a wait."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml  # type: ignore[import-untyped, unused-ignore]  # clean with or without types-PyYAML
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vpsorg_client import config
from vpsorg_client.client import Client
from vpsorg_client.models import Action, ApiModel

# Off a terminal, a table is not cut to 80 columns: whoever reads it has a wider window.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output", "-o", help="table (default on a terminal), json (default otherwise) or yaml."
    ),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", "-w", help="Wait for the action to finish, showing progress.")
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait at most.")]

Column = tuple[str, str]
"""A table column: its header and the dotted path of its value in the object."""


class State:
    """Set by the root callback: which context to use."""

    context: str | None = None


def make_client() -> Client:
    url, token = config.resolve(config.load(), State.context)
    return Client(token=token, base_url=url)


def chosen(output: Output | None) -> Output:
    if output is not None:
        return output
    return Output.TABLE if sys.stdout.isatty() else Output.JSON


def dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_data(data: Any, output: Output) -> None:
    if output is Output.YAML:
        stdout.out(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        stdout.out(json.dumps(data, indent=2))


def show_list(items: Iterable[ApiModel], columns: Sequence[Column], output: Output | None) -> None:
    """A list: one row per object, or the API's objects as a JSON/YAML list."""
    rows = [item.to_dict() for item in items]
    output = chosen(output)
    if output is not Output.TABLE:
        print_data(rows, output)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header, _ in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*(cell(dig(row, path)) for _, path in columns))
    stdout.print(table)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            pairs += flatten(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def show_one(data: dict[str, Any], output: Output | None) -> None:
    """One object: a two-column table of its (flattened) fields, or JSON/YAML."""
    output = chosen(output)
    if output is not Output.TABLE:
        print_data(data, output)
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in flatten(data):
        table.add_row(key, cell(value))
    stdout.print(table)


def wait_with_progress(action: Action, timeout: float) -> Action:
    """``action.wait`` with a progress bar on stderr; raises ``ActionFailed`` on error."""
    label = f"{action.command} (action {action.id})"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,  # a log or a pipe gets no bar frames
    ) as progress:
        task = progress.add_task(label, total=100, completed=action.progress)

        def update(current: Action) -> None:
            progress.update(
                task, completed=current.progress, description=f"{label}: {current.status}"
            )

        return action.wait(timeout=timeout, on_update=update)


def parse_id(value: str, what: str) -> int:
    if not value.isdigit():
        raise typer.BadParameter(f"{what} id must be a number, not {value!r}")
    return int(value)
