"""The ``vpsorg`` command: serve, worker, db, accounts, tokens, simulator."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg import migrate
from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS, Account
from vpsorg.auth.tokens import create_token, revoke_token
from vpsorg.clock import isoformat
from vpsorg.config import Settings, get_settings
from vpsorg.db import create_engine, session_factory, transaction

app = typer.Typer(
    help="vpsorg: a VPS control plane implementing the VPS.org Servers API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Customer accounts and credits.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
simulator_app = typer.Typer(help="The simulator driver.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(simulator_app, name="simulator")

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError, listing every bad variable
        typer.echo(f"vpsorg: invalid configuration:\n{exc}", err=True)
        raise typer.Exit(2) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database."""
    settings = _settings()

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


# -- serve / worker -------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the embedded worker.")] = True,
) -> None:
    """Migrate the database, then serve the API (with an embedded worker)."""
    import uvicorn

    from vpsorg.app import create_app

    settings = _settings()
    _logging(settings)
    migrate.upgrade(settings.database_url)
    _bootstrap_demo(settings, host, port)
    if not worker:
        settings = settings.model_copy(update={"embedded_worker": False})
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level=settings.log_level,
        timeout_graceful_shutdown=15,
    )  # fmt: skip


def _bootstrap_demo(settings: Settings, host: str, port: int) -> None:
    """On first start (no accounts at all), create a demo account and print its token."""

    async def work(session: AsyncSession) -> str | None:
        if await session.scalar(select(func.count()).select_from(Account)):
            return None
        credits = accounts.to_micros(settings.demo_credits)
        account = await accounts.create_account(session, "demo", credits)
        _row, token = await create_token(session, account.id, "demo")
        return token

    token = _in_transaction(work)
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


@app.command("worker")
def run_worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Actions run at once.")] = None,
) -> None:
    """Run a standalone worker until SIGTERM/SIGINT."""
    from vpsorg.runtime import Runtime

    settings = _settings()
    _logging(settings)

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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database and the default catalog)."""
    settings = _settings()
    migrate.upgrade(settings.database_url)
    typer.echo("database is up to date", err=True)


# -- accounts -------------------------------------------------------------------------


@accounts_app.command("create")
def accounts_create(
    name: str,
    credits: Annotated[float, typer.Option(min=0, help="Initial credit balance.")] = 0.0,
) -> None:
    """Create an account; prints its id."""

    async def work(session: AsyncSession) -> int:
        account = await accounts.create_account(session, name, accounts.to_micros(credits))
        return account.id

    typer.echo(_in_transaction(work))


@accounts_app.command("credit", context_settings={"ignore_unknown_options": True})
def accounts_credit(account_id: int, amount: float) -> None:
    """Add credits (a negative AMOUNT corrects); prints the new balance."""

    async def work(session: AsyncSession) -> int:
        kind = "topup" if amount >= 0 else "adjustment"
        entry = await accounts.add_credit(
            session, account_id, accounts.to_micros(amount), kind=kind, memo="operator"
        )
        return entry.balance_after_micros

    typer.echo(f"{_in_transaction(_or_exit(work)) / MICROS:.6f}")


@accounts_app.command("show")
def accounts_show(
    account_id: int, entries: Annotated[int, typer.Option(help="Ledger lines to show.")] = 10
) -> None:
    """Balance, ledger tail, servers and their statuses."""
    from vpsorg.accounts.repository import ledger
    from vpsorg.servers.repository import list_owned

    async def work(session: AsyncSession) -> str:
        account = await session.get(Account, account_id)
        if account is None:
            typer.echo(f"vpsorg: account {account_id} not found", err=True)
            raise typer.Exit(1)
        burn = await accounts.hourly_burn_rate_micros(session, account.id)
        _total, lines = await ledger(session, account.id, 0, entries)
        count, servers = await list_owned(
            session, account.id, status=None, location=None, offset=0, limit=1000
        )
        status = (
            f"suspended since {isoformat(account.suspended_at)} ({account.suspended_reason})"
            if account.suspended_at
            else "active"
        )
        out = [
            f"account {account.id} {account.name!r}: {status}",
            f"balance {account.balance_micros / MICROS:.6f} credits, "
            f"burning {burn / MICROS:.6f}/hour; servers {count} of {account.servers_limit}",
            "",
            "ledger (newest first):",
            *[
                f"  {isoformat(e.created_at)}  {e.kind:<10} {e.amount_micros / MICROS:>14.6f}"
                f"  -> {e.balance_after_micros / MICROS:.6f}  {e.memo}"
                for e in lines
            ],
            "",
            "servers:",
            *[f"  {s.id:>6}  {s.name:<30} {s.status:<12} {s.location_code}" for s in servers],
        ]
        return "\n".join(out)

    typer.echo(_in_transaction(work))


@accounts_app.command("suspend")
def accounts_suspend(
    account_id: int, reason: Annotated[str, typer.Option(help="Why (shown to the customer).")]
) -> None:
    """Suspend an account by hand: its servers are stopped and set to suspended."""
    from vpsorg.accounts import suspension

    async def work(session: AsyncSession) -> int:
        account = await accounts.lock_account(session, account_id)
        return await suspension.suspend(session, account, reason)

    typer.echo(f"suspended; {_in_transaction(_or_exit(work))} servers suspended", err=True)


@accounts_app.command("unsuspend")
def accounts_unsuspend(account_id: int) -> None:
    """Lift a suspension; suspended servers become stopped."""
    from vpsorg.accounts import suspension

    async def work(session: AsyncSession) -> int:
        account = await accounts.lock_account(session, account_id)
        if account.balance_micros < 0:
            typer.echo("vpsorg: the balance is negative; add credits first", err=True)
            raise typer.Exit(1)
        return await suspension.unsuspend(session, account)

    typer.echo(f"unsuspended; {_in_transaction(_or_exit(work))} servers now stopped", err=True)


@accounts_app.command("limit")
def accounts_limit(account_id: int, servers: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set the account's servers limit."""

    async def work(session: AsyncSession) -> None:
        account = await accounts.lock_account(session, account_id)
        account.servers_limit = servers

    _in_transaction(_or_exit(work))
    typer.echo(f"servers limit is now {servers}", err=True)


def _or_exit(
    work: Callable[[AsyncSession], Awaitable[T]],
) -> Callable[[AsyncSession], Awaitable[T]]:
    """Turn a NotFound from a service into a clean error message and exit code 1."""
    from vpsorg.errors import ApiError

    async def wrapped(session: AsyncSession) -> T:
        try:
            return await work(session)
        except ApiError as exc:
            typer.echo(f"vpsorg: {exc.detail}", err=True)
            raise typer.Exit(1) from None

    return wrapped


# -- tokens ---------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    account_id: int, name: Annotated[str, typer.Option(help="A label for the token.")] = ""
) -> None:
    """Issue an API token; prints only the token on stdout."""

    async def work(session: AsyncSession) -> str:
        if await session.get(Account, account_id) is None:
            typer.echo(f"vpsorg: account {account_id} not found", err=True)
            raise typer.Exit(1)
        row, token = await create_token(session, account_id, name)
        typer.echo(f"token id {row.id} for account {account_id}", err=True)
        return token

    typer.echo(_in_transaction(work))


@tokens_app.command("revoke")
def tokens_revoke(token_or_id: str) -> None:
    """Revoke a token, given the token itself or its id."""

    async def work(session: AsyncSession) -> bool:
        return await revoke_token(session, token_or_id)

    if not _in_transaction(work):
        typer.echo("vpsorg: no live token matches", err=True)
        raise typer.Exit(1)
    typer.echo("revoked", err=True)


# -- simulator ------------------------------------------------------------------------


@simulator_app.command("fail")
def simulator_fail(
    operation: Annotated[str, typer.Argument(help="create, start, stop, reboot or delete")],
    machine: Annotated[str | None, typer.Option(help="Only this machine (vps-ID).")] = None,
    message: Annotated[str, typer.Option(help="The error to report.")] = "simulated failure",
    times: Annotated[int, typer.Option(min=1)] = 1,
    retriable: Annotated[bool, typer.Option(help="Fail as a retriable error.")] = False,
) -> None:
    """Make the simulator fail the next OPERATION (for testing failure handling)."""
    from vpsorg.drivers.simulator import SimulatorDriver

    settings = _settings()
    driver = SimulatorDriver(settings.simulator_state_dir, settings.simulator_delay)
    try:
        driver.inject_fault(operation, message, machine=machine, times=times, retriable=retriable)
    except ValueError as exc:
        typer.echo(f"vpsorg: {exc}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
