"""What every command group shares: settings, logging, one transaction, clean errors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vpsorg import logs, migrate
from vpsorg.clock import isoformat
from vpsorg.config import Settings, async_database_url, get_settings
from vpsorg.db import (
    MissingExtra,
    create_engine,
    require_driver_for,
    session_factory,
    transaction,
)
from vpsorg.drivers.base import Driver, DriverError

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UPGRADE_HINT = "run `vpsorg db upgrade`"


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, ``vpsorg: message``, and a non-zero exit."""
    typer.echo(f"vpsorg: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    """The validated settings, whose database URL has its driver installed; or a clean exit."""
    try:
        configured = get_settings()
        require_driver_for(configured.database_url)
        return configured
    except MissingExtra as exc:
        fail(str(exc), 2)
    except ValidationError as exc:  # one line for every bad variable
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            variable = f"VPSORG_{field.upper()}"
            typer.echo(
                f"vpsorg: invalid configuration: {field} ({variable}): {error['msg']}", err=True
            )
        raise typer.Exit(2) from None


def configure_logging(settings: Settings) -> None:
    logs.configure_logging(settings)


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured, migrated database.

    A database that is missing or not migrated to this version's schema is refused in one
    line naming `vpsorg db upgrade`, before anything runs (and a missing SQLite file is not
    created); a service's ApiError becomes a clean message (see ``or_exit``).
    """
    from vpsorg.errors import ApiError

    configured = settings()

    async def main() -> T:
        async with (
            _migrated_engine(configured) as engine,
            transaction(session_factory(engine)) as session,
        ):
            return await work(session)

    try:
        return asyncio.run(main())
    except ApiError as exc:
        _print_api_error(exc)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:  # a database that cannot be reached, say
        fail(f"database error: {_first_line(exc)}")


def require_migrated_database(configured: Settings) -> None:
    """What ``in_transaction`` checks first, for a command that opens its own engine."""

    async def check() -> None:
        async with _migrated_engine(configured):
            pass

    try:
        asyncio.run(check())
    except SQLAlchemyError as exc:
        fail(f"database error: {_first_line(exc)}")


def _require_sqlite_file(url: str) -> None:
    parsed = make_url(async_database_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if parsed.query.get("mode") != "memory" and not Path(str(parsed.database)).exists():
        fail(f"database {parsed.database} does not exist: {UPGRADE_HINT} to create it")


@asynccontextmanager
async def _migrated_engine(configured: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database, once it is known to exist and be migrated."""
    _require_sqlite_file(configured.database_url)
    engine = create_engine(configured.database_url)
    try:
        async with engine.connect() as connection:
            versions = await migrate.schema_revisions(connection)
        if not versions:
            fail(f"the database is not migrated: {UPGRADE_HINT}")
        if versions != migrate.head_revisions():
            current = ", ".join(sorted(versions))
            fail(f"the database schema ({current}) is not this version's: {UPGRADE_HINT}")
        yield engine
    finally:
        await engine.dispose()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _print_api_error(exc: Any) -> None:
    typer.echo(f"vpsorg: {exc.detail}", err=True)
    for field, messages in exc.errors.items():
        typer.echo(f"  {field}: {' '.join(messages)}", err=True)


# -- output ---------------------------------------------------------------------------------


def jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=jsonable))


def print_records(
    records: Sequence[Mapping[str, object]], columns: Mapping[str, str], *, as_json: bool
) -> None:
    """Records as a JSON list (every field), or as a table of ``columns`` (key -> header)."""
    if as_json:
        print_json([{key: jsonable(value) for key, value in r.items()} for r in records])
        return
    print_table(list(columns.values()), [[r.get(key) for key in columns] for r in records])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain table (rich, no borders): a header line, then a line a row; numbers right."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for n, header in enumerate(headers):
        numeric = bool(rows) and all(isinstance(row[n], int | float) for row in rows)
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(_cell(value)) for value in row))  # Text: no markup in values
    # Piped output is not cut to 80 columns: scripts and `grep` see whole rows.
    Console(width=None if sys.stdout.isatty() else 10_000, soft_wrap=True).print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(jsonable(value))


def or_exit(
    work: Callable[[AsyncSession], Awaitable[T]],
) -> Callable[[AsyncSession], Awaitable[T]]:
    """Turn a service's ApiError into a clean message (and one line a field), exit code 1."""
    from vpsorg.errors import ApiError

    async def wrapped(session: AsyncSession) -> T:
        try:
            return await work(session)
        except ApiError as exc:
            _print_api_error(exc)
            raise typer.Exit(1) from None

    return wrapped


def with_driver(work: Callable[[Driver], Awaitable[T]]) -> T:
    """Run ``work`` with the configured driver, closed afterwards."""
    from vpsorg.drivers.registry import DriverUnavailable, create_driver

    configured = settings()
    require_driver_extras(configured)

    async def main() -> T:
        driver = create_driver(configured)
        try:
            return await work(driver)
        finally:
            await driver.close()

    try:
        return asyncio.run(main())
    except (DriverError, DriverUnavailable, ValueError) as exc:
        fail(str(exc))


LIBVIRT_MODULES = {"libvirt": "libvirt-python", "pycdlib": "pycdlib"}


def require_driver_extras(configured: Settings) -> None:
    """The libvirt driver needs the ``[libvirt]`` extra: say so in one line, not a traceback."""
    from importlib.util import find_spec

    if configured.driver != "libvirt":
        return
    missing = [package for module, package in LIBVIRT_MODULES.items() if find_spec(module) is None]
    if missing:
        fail(
            f"the libvirt driver needs {' and '.join(missing)}: install the [libvirt] extra, "
            "pip install -e '.[libvirt]' in a checkout (Debian: apt-get install libvirt-dev "
            "pkg-config first)"
        )
