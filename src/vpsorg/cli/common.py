"""What every command group shares: settings, logging, one transaction, clean errors."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.config import Settings, get_settings
from vpsorg.db import create_engine, session_factory, transaction
from vpsorg.drivers.base import Driver, DriverError

T = TypeVar("T")


def settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError, listing every bad variable
        typer.echo(f"vpsorg: invalid configuration:\n{exc}", err=True)
        raise typer.Exit(2) from None


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database."""
    configured = settings()

    async def main() -> T:
        engine = create_engine(configured.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def or_exit(
    work: Callable[[AsyncSession], Awaitable[T]],
) -> Callable[[AsyncSession], Awaitable[T]]:
    """Turn a service's ApiError into a clean message (and one line a field), exit code 1."""
    from vpsorg.errors import ApiError

    async def wrapped(session: AsyncSession) -> T:
        try:
            return await work(session)
        except ApiError as exc:
            typer.echo(f"vpsorg: {exc.detail}", err=True)
            for field, messages in exc.errors.items():
                typer.echo(f"  {field}: {' '.join(messages)}", err=True)
            raise typer.Exit(1) from None

    return wrapped


def with_driver(work: Callable[[Driver], Awaitable[T]]) -> T:
    """Run ``work`` with the configured driver, closed afterwards."""
    from vpsorg.drivers.registry import create_driver

    async def main() -> T:
        driver = create_driver(settings())
        try:
            return await work(driver)
        finally:
            await driver.close()

    try:
        return asyncio.run(main())
    except (DriverError, ValueError) as exc:
        typer.echo(f"vpsorg: {exc}", err=True)
        raise typer.Exit(1) from None
