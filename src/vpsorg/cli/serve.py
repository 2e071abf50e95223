"""`vpsorg serve` and `vpsorg worker`: the processes that do the work."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg import migrate
from vpsorg.accounts import repository as accounts_repository
from vpsorg.accounts import service as accounts
from vpsorg.auth.tokens import create_token
from vpsorg.cli import common
from vpsorg.cli.common import configure_logging, in_transaction
from vpsorg.config import Settings


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the embedded worker.")] = True,
    demo: Annotated[
        bool,
        typer.Option(
            help="On a database without accounts, make a demo account with "
            "VPSORG_DEMO_CREDITS (if not 0) and print its token (what `make run` does)."
        ),
    ] = False,
) -> None:
    """Migrate the database, then serve the API (with an embedded worker)."""
    import uvicorn

    from vpsorg.app import create_app

    settings = common.settings()
    common.require_driver_extras(settings)
    configure_logging(settings)
    migrate.upgrade(settings.database_url)
    if demo and settings.demo_credits > 0:
        _bootstrap_demo(settings, host, port)
    if not worker:
        settings = settings.model_copy(update={"embedded_worker": False})
    if host not in ("0.0.0.0", "::") and host not in settings.allowed_hosts:
        bind = f"[{host}]" if ":" in host else host
        settings = settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, bind]})
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        # httptools and uvloop (dependencies since issue 12) when importable, else h11 and
        # asyncio (pyproject.toml says why); "auto" is the default, spelled out to be found.
        http="auto",
        loop="auto",
        log_level=settings.log_level,
        # uvicorn's loggers go through vpsorg.logs' formatter; vpsorg.access writes the one
        # access line per request (with route, account, status, duration), so uvicorn's is off.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        # The proxies whose X-Forwarded-For/-Proto uvicorn believes are the ones vpsorg trusts
        # (its own default would trust 127.0.0.1 whatever VPSORG_TRUSTED_PROXIES says).
        forwarded_allow_ips=[str(network) for network in settings.trusted_proxies],
    )


def _bootstrap_demo(settings: Settings, host: str, port: int) -> None:
    """On first start (no accounts at all), create a demo account and print its token."""

    async def work(session: AsyncSession) -> str | None:
        if await accounts_repository.any_account(session):
            return None
        credits = accounts.to_micros(settings.demo_credits)
        account = await accounts.create_account(session, "demo", credits)
        _row, token = await create_token(session, account.id, "demo")
        return token

    token = in_transaction(work)
    if token:
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
        typer.echo(
            f"\nCreated a demo account with {settings.demo_credits:g} credits. Its API token:\n\n"
            f"    {token}\n\nTry it:\n\n"
            f'    curl -s {url}/api/v1/servers/ -H "Authorization: Bearer {token}" '
            f'-H "Content-Type: application/json"\n',
            err=True,
        )


def run_worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Actions run at once.")] = None,
) -> None:
    """Run a standalone worker until SIGTERM/SIGINT."""
    from vpsorg.runtime import Runtime

    settings = common.settings()
    common.require_driver_extras(settings)
    configure_logging(settings)

    async def main() -> None:
        runtime = Runtime(settings)
        await runtime.probe_driver()
        runtime.start_worker(concurrency)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logging.getLogger("vpsorg").info("shutting down: finishing or releasing actions")
        await runtime.close()

    asyncio.run(main())


# -- db -------------------------------------------------------------------------------
