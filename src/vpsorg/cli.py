"""The ``vpsorg`` command: serve, worker, db, accounts, tokens, hosts, os, simulator."""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg import migrate
from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS, Account
from vpsorg.audit import service as audit
from vpsorg.auth.models import TokenScope
from vpsorg.auth.tokens import create_token, list_tokens, revoke_token, revoke_token_id
from vpsorg.billing import service as billing
from vpsorg.clock import isoformat, utcnow
from vpsorg.config import Settings, get_settings
from vpsorg.db import create_engine, session_factory, transaction
from vpsorg.drivers.base import Driver, DriverError, HostCapacity

if TYPE_CHECKING:
    from vpsorg.hosts.models import Host

app = typer.Typer(
    help="vpsorg: a VPS control plane implementing the VPS.org Servers API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Customer accounts and credits.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
hosts_app = typer.Typer(help="Hypervisor hosts and placement.", no_args_is_help=True)
os_app = typer.Typer(help="Operating system images.", no_args_is_help=True)
plans_app = typer.Typer(help="Plans and their prices.", no_args_is_help=True)
simulator_app = typer.Typer(help="The simulator driver.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(plans_app, name="plans")
app.add_typer(tokens_app, name="tokens")
app.add_typer(hosts_app, name="hosts")
app.add_typer(os_app, name="os")
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

    settings = _settings()
    _logging(settings)
    migrate.upgrade(settings.database_url)
    if demo and settings.demo_credits > 0:
        _bootstrap_demo(settings, host, port)
    if not worker:
        settings = settings.model_copy(update={"embedded_worker": False})
    if host not in ("0.0.0.0", "::") and host not in settings.allowed_hosts:
        bind = f"[{host}]" if ":" in host else host
        settings = settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, bind]})
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level=settings.log_level,
        timeout_graceful_shutdown=15,
        # The proxies whose X-Forwarded-For/-Proto uvicorn believes are the ones vpsorg trusts
        # (its own default would trust 127.0.0.1 whatever VPSORG_TRUSTED_PROXIES says).
        forwarded_allow_ips=[str(network) for network in settings.trusted_proxies],
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
        command = f"accounts create {shlex.quote(name)} --credits {credits:g}"
        await _audit_account(session, command, account.id)
        return account.id

    typer.echo(_in_transaction(work))


@accounts_app.command("credit", context_settings={"ignore_unknown_options": True})
def accounts_credit(account_id: int, amount: float) -> None:
    """Add credits (a negative AMOUNT corrects); prints the new balance."""

    async def work(session: AsyncSession) -> int:
        kind = "topup" if amount >= 0 else "adjustment"
        entry = await billing.credit(
            session, account_id, accounts.to_micros(amount), kind=kind, memo="operator"
        )
        await _audit_account(session, f"accounts credit {account_id} {amount:g}", account_id)
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
        burn = await billing.burn_micros(session, account.id)
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

    async def work(session: AsyncSession) -> int:
        suspended = await billing.suspend_account(session, account_id, reason)
        command = f"accounts suspend {account_id} --reason {shlex.quote(reason)}"
        await _audit_account(session, command, account_id)
        return suspended

    typer.echo(f"suspended; {_in_transaction(_or_exit(work))} servers suspended", err=True)


@accounts_app.command("unsuspend")
def accounts_unsuspend(account_id: int) -> None:
    """Lift a suspension if the balance covers an hour of every server (charged at once).

    Otherwise the account stays suspended for credits, and a top-up lifts it.
    """

    async def work(session: AsyncSession) -> bool:
        lifted = await billing.unsuspend_account(session, account_id)
        refused = None if lifted else "insufficient_credits"
        await _audit_account(session, f"accounts unsuspend {account_id}", account_id, refused)
        return lifted

    if _in_transaction(_or_exit(work)):
        typer.echo("unsuspended; its servers are stopped, each began a paid hour", err=True)
    else:
        typer.echo(
            "vpsorg: the balance does not cover an hour of the account's servers; "
            "it stays suspended until a top-up does",
            err=True,
        )
        raise typer.Exit(1)


@accounts_app.command("limit")
def accounts_limit(account_id: int, servers: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set the account's servers limit."""

    async def work(session: AsyncSession) -> None:
        account = await accounts.lock_account(session, account_id)
        account.servers_limit = servers
        await _audit_account(session, f"accounts limit {account_id} {servers}", account_id)

    _in_transaction(_or_exit(work))
    typer.echo(f"servers limit is now {servers}", err=True)


async def _audit_account(
    session: AsyncSession, command: str, account_id: int, refused: str | None = None
) -> None:
    await audit.record_operator_change(
        session, command, account_id=account_id, resource=f"account:{account_id}", refused=refused
    )


def _or_exit(
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


# -- plans ----------------------------------------------------------------------------


@plans_app.command("price")
def plans_price(
    plan_id: int, hourly: Annotated[float, typer.Argument(min=0, help="Credits per hour.")]
) -> None:
    """Set a plan's hourly price. Hours already started keep the old price."""

    async def work(session: AsyncSession) -> None:
        await billing.set_plan_price(session, plan_id, accounts.to_micros(hourly))
        await audit.record_operator_change(
            session, f"plans price {plan_id} {hourly:g}", resource=f"plan:{plan_id}"
        )

    _in_transaction(_or_exit(work))
    typer.echo(f"plan {plan_id} now costs {hourly:g} credits per hour", err=True)


# -- tokens ---------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    account_id: int,
    name: Annotated[str, typer.Option(help="A label for the token.")] = "",
    scope: Annotated[
        TokenScope, typer.Option(help="read: GET only; write: every change.")
    ] = TokenScope.WRITE,
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime: 3600s, 90m, 12h, 30d (default: none).")
    ] = None,
) -> None:
    """Issue an API token; prints only the token on stdout."""
    lifetime = _duration(expires_in) if expires_in else None

    async def work(session: AsyncSession) -> str:
        if await session.get(Account, account_id) is None:
            typer.echo(f"vpsorg: account {account_id} not found", err=True)
            raise typer.Exit(1)
        expires_at = utcnow() + lifetime if lifetime else None
        row, token = await create_token(
            session, account_id, name, scope=scope, expires_at=expires_at
        )
        await audit.record_operator_change(
            session,
            f"tokens create {account_id}",
            account_id=account_id,
            resource=f"token:{row.id}",
        )
        typer.echo(f"token id {row.id} for account {account_id} ({scope})", err=True)
        return token

    typer.echo(_in_transaction(work))


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"([1-9][0-9]{0,8})([smhd]?)", text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 3600s, 90m, 12h or 30d")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return timedelta(**{unit[match[2]]: int(match[1])})


@tokens_app.command("list")
def tokens_list(account_id: int) -> None:
    """The account's live tokens (never the tokens themselves)."""

    async def work(session: AsyncSession) -> str:
        _total, rows = await list_tokens(session, account_id)
        lines = [f"{'ID':>6}  {'SCOPE':<6} {'PREFIX':<11} {'EXPIRES':<21} {'LAST USED':<21} NAME"]
        lines += [
            f"{t.id:>6}  {t.scope:<6} {t.prefix:<11} {isoformat(t.expires_at) or '-':<21} "
            f"{isoformat(t.last_used_at) or '-':<21} {t.name}"
            for t in rows
        ]
        return "\n".join(lines)

    typer.echo(_in_transaction(work))


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[
        int | None, typer.Argument(help="The token's id; without it, the token is read from stdin.")
    ] = None,
) -> None:
    """Revoke a token by its id, or the token given on stdin (never on the command line,
    where other users' `ps` and the shell's history would see it)."""
    token = None if token_id is not None else sys.stdin.readline().strip()

    async def work(session: AsyncSession) -> bool:
        if token_id is not None:
            revoked = await revoke_token_id(session, token_id, None)
        else:
            revoked = bool(token) and await revoke_token(session, token or "")
        if revoked:
            await audit.record_token_revocation(session, token_id=token_id, token=token)
        return revoked

    if not _in_transaction(work):
        typer.echo("vpsorg: no live token matches", err=True)
        raise typer.Exit(1)
    typer.echo("revoked", err=True)


# -- hosts ----------------------------------------------------------------------------


def _with_driver(work: Callable[[Driver], Awaitable[T]]) -> T:
    """Run ``work`` with the configured driver, closed afterwards."""
    from vpsorg.drivers.registry import create_driver

    async def main() -> T:
        driver = create_driver(_settings())
        try:
            return await work(driver)
        finally:
            await driver.close()

    try:
        return asyncio.run(main())
    except (DriverError, ValueError) as exc:
        typer.echo(f"vpsorg: {exc}", err=True)
        raise typer.Exit(1) from None


@hosts_app.command("add")
def hosts_add(
    name: str,
    location: Annotated[str, typer.Option(help="Location code, e.g. us-west.")],
    uri: Annotated[str, typer.Option(help="libvirt URI, e.g. qemu+ssh://kvm1/system.")],
    vcpus: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="Read from the host when omitted.")] = None,
    cpu_overcommit: Annotated[float, typer.Option(help="vCPUs sold per core.")] = 4.0,
    memory_overcommit: Annotated[float, typer.Option()] = 1.0,
    disk_overcommit: Annotated[float, typer.Option()] = 1.0,
) -> None:
    """Register a hypervisor host; prints its id."""
    from vpsorg.hosts import service as hosts

    capacity = HostCapacity(vcpus or 0, memory_mb or 0, disk_gb or 0)
    if None in (vcpus, memory_mb, disk_gb):
        read = _with_driver(lambda driver: driver.capacity(host_uri=uri))
        capacity = HostCapacity(vcpus or read.vcpus, memory_mb or read.memory_mb,
                                disk_gb or read.disk_gb)  # fmt: skip
    overcommit = hosts.Overcommit(cpu_overcommit, memory_overcommit, disk_overcommit)

    async def work(session: AsyncSession) -> int:
        host = await hosts.add_host(session, name, location, uri, capacity, overcommit)
        command = f"hosts add {shlex.quote(name)} --location {location}"
        await audit.record_operator_change(session, command, resource=f"host:{host.id}")
        return host.id

    host_id = _in_transaction(_or_exit(work))
    typer.echo(f"host {name}: {capacity.vcpus} vCPUs, {capacity.memory_mb} MB, "
               f"{capacity.disk_gb} GB in {location}", err=True)  # fmt: skip
    typer.echo(host_id)


@hosts_app.command("list")
def hosts_list(
    location: Annotated[str | None, typer.Option(help="Only this location.")] = None,
) -> None:
    """Hosts with their state and what their servers take (used/capacity after overcommit)."""
    from vpsorg.hosts import repository

    async def work(session: AsyncSession) -> list[str]:
        found = await repository.hosts_with_allocations(session, location)
        lines = [f"{'ID':>4}  {'NAME':<16} {'LOCATION':<10} {'STATE':<9} {'SERVERS':>7}  "
                 f"{'VCPUS':>11}  {'MEMORY MB':>15}  {'DISK GB':>13}  URI"]  # fmt: skip
        for h, u in found:
            state = "disabled" if not h.enabled else "draining" if h.draining else "enabled"
            lines.append(
                f"{h.id:>4}  {h.name:<16} {h.location_code:<10} {state:<9} {u.servers:>7}  "
                f"{_used(u.vcpus, h.vcpus * h.cpu_overcommit):>11}  "
                f"{_used(u.memory_mb, h.memory_mb * h.memory_overcommit):>15}  "
                f"{_used(u.disk_gb, h.disk_gb * h.disk_overcommit):>13}  {h.uri}"
            )
        return lines

    typer.echo("\n".join(_in_transaction(work)))


def _used(used: int, capacity: float) -> str:
    return f"{used}/{capacity:g}"


def _host_state_command(
    name: str, change: Callable[[AsyncSession, str], Awaitable[Host]], said: str, verb: str
) -> None:
    async def work(session: AsyncSession) -> None:
        host = await change(session, name)
        command = f"hosts {verb} {shlex.quote(name)}"
        await audit.record_operator_change(session, command, resource=f"host:{host.id}")

    _in_transaction(_or_exit(work))
    typer.echo(f"host {name}: {said}", err=True)


@hosts_app.command("disable")
def hosts_disable(name: str) -> None:
    """Take a host out of service: no new servers, not reconciled."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.disable, "disabled", "disable")


@hosts_app.command("drain")
def hosts_drain(name: str) -> None:
    """Place no new servers on a host; its servers keep running."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.drain, "draining", "drain")


@hosts_app.command("enable")
def hosts_enable(name: str) -> None:
    """Put a host back in service (undoes disable and drain)."""
    from vpsorg.hosts import service as hosts

    _host_state_command(name, hosts.enable, "enabled", "enable")


@hosts_app.command("audit")
def hosts_audit(
    fix: Annotated[bool, typer.Option(help="Also correct statuses, as the worker does.")] = False,
) -> None:
    """Compare every host's machines with the database; list machines no server owns."""
    from vpsorg.hosts.reconciler import Reconciler

    settings = _settings()

    async def work(driver: Driver) -> list[str]:
        engine = create_engine(settings.database_url)
        try:
            reconciler = Reconciler(session_factory(engine), driver)
            return [f.describe() for f in await reconciler.run(correct=fix)]
        finally:
            await engine.dispose()

    findings = _with_driver(work)
    typer.echo("\n".join(findings) if findings else "every host matches the database")


# -- operating systems ------------------------------------------------------------------


@os_app.command("add")
def os_add(
    name: str,
    image: Annotated[str, typer.Option(help="Base disk image (qcow2 or raw): a path or a URL.")],
    kernel: Annotated[str | None, typer.Option(help="Kernel for direct kernel boot.")] = None,
    initrd: Annotated[str | None, typer.Option(help="Initrd for direct kernel boot.")] = None,
    cmdline: Annotated[str | None, typer.Option(help="Kernel command line.")] = None,
) -> None:
    """Register an operating system image; prints its id. A URL is downloaded once."""
    from vpsorg.catalog import images
    from vpsorg.catalog import service as catalog

    settings = _settings()
    if images.is_url(image):
        typer.echo(f"downloading {image} into {settings.image_dir}", err=True)
        try:
            image = str(images.fetch(image, settings.image_dir))
        except OSError as exc:
            typer.echo(f"vpsorg: cannot download {image}: {exc}", err=True)
            raise typer.Exit(1) from None
    for label, path in (("image", image), ("kernel", kernel), ("initrd", initrd)):
        if path is not None and not Path(path).exists():
            typer.echo(f"note: {label} {path} is not on this machine; "
                       "it must exist at that path on every host", err=True)  # fmt: skip

    async def work(session: AsyncSession) -> int:
        os = await catalog.add_operating_system(
            session, name, image, kernel=kernel, initrd=initrd, cmdline=cmdline
        )
        command = f"os add {shlex.quote(name)} --image {shlex.quote(image)}"
        await audit.record_operator_change(session, command, resource=f"os:{os.id}")
        return os.id

    typer.echo(_in_transaction(_or_exit(work)))


@os_app.command("list")
def os_list() -> None:
    """Operating systems with their images."""
    from vpsorg.catalog.models import OperatingSystem

    async def work(session: AsyncSession) -> list[str]:
        rows = await session.scalars(select(OperatingSystem).order_by(OperatingSystem.id))
        lines = [f"{'ID':>4}  {'NAME':<24} {'SLUG':<20} IMAGE"]
        for os in rows:
            boot = f" (kernel {os.kernel})" if os.kernel else ""
            lines.append(f"{os.id:>4}  {os.name:<24} {os.slug:<20} {os.image or '-'}{boot}")
        return lines

    typer.echo("\n".join(_in_transaction(work)))


# -- audit ----------------------------------------------------------------------------


@app.command("audit")
def audit_events(
    account: Annotated[int | None, typer.Option(help="Only this account's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """Recorded changes, newest first: API writes (refusals too) and operators' commands."""
    from vpsorg.audit import repository

    async def work(session: AsyncSession) -> list[str]:
        return audit.table(await repository.latest(session, account, limit))

    typer.echo("\n".join(_in_transaction(work)))


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
