"""`vpsorg accounts`: customer accounts, credits, suspensions and limits."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS, Account
from vpsorg.audit import service as audit
from vpsorg.billing import service as billing
from vpsorg.cli.common import in_transaction, or_exit
from vpsorg.clock import isoformat

app = typer.Typer(help="Customer accounts and credits.", no_args_is_help=True)


@app.command("create")
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

    typer.echo(in_transaction(work))


@app.command("credit", context_settings={"ignore_unknown_options": True})
def accounts_credit(account_id: int, amount: float) -> None:
    """Add credits (a negative AMOUNT corrects); prints the new balance."""

    async def work(session: AsyncSession) -> int:
        kind = "topup" if amount >= 0 else "adjustment"
        entry = await billing.credit(
            session, account_id, accounts.to_micros(amount), kind=kind, memo="operator"
        )
        await _audit_account(session, f"accounts credit {account_id} {amount:g}", account_id)
        return entry.balance_after_micros

    typer.echo(f"{in_transaction(or_exit(work)) / MICROS:.6f}")


@app.command("show")
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

    typer.echo(in_transaction(work))


@app.command("suspend")
def accounts_suspend(
    account_id: int, reason: Annotated[str, typer.Option(help="Why (shown to the customer).")]
) -> None:
    """Suspend an account by hand: its servers are stopped and set to suspended."""

    async def work(session: AsyncSession) -> int:
        suspended = await billing.suspend_account(session, account_id, reason)
        command = f"accounts suspend {account_id} --reason {shlex.quote(reason)}"
        await _audit_account(session, command, account_id)
        return suspended

    typer.echo(f"suspended; {in_transaction(or_exit(work))} servers suspended", err=True)


@app.command("unsuspend")
def accounts_unsuspend(account_id: int) -> None:
    """Lift a suspension if the balance covers an hour of every server (charged at once).

    Otherwise the account stays suspended for credits, and a top-up lifts it.
    """

    async def work(session: AsyncSession) -> bool:
        lifted = await billing.unsuspend_account(session, account_id)
        refused = None if lifted else "insufficient_credits"
        await _audit_account(session, f"accounts unsuspend {account_id}", account_id, refused)
        return lifted

    if in_transaction(or_exit(work)):
        typer.echo("unsuspended; its servers are stopped, each began a paid hour", err=True)
    else:
        typer.echo(
            "vpsorg: the balance does not cover an hour of the account's servers; "
            "it stays suspended until a top-up does",
            err=True,
        )
        raise typer.Exit(1)


@app.command("limit")
def accounts_limit(account_id: int, servers: Annotated[int, typer.Argument(min=0)]) -> None:
    """Set the account's servers limit."""

    async def work(session: AsyncSession) -> None:
        account = await accounts.lock_account(session, account_id)
        account.servers_limit = servers
        await _audit_account(session, f"accounts limit {account_id} {servers}", account_id)

    in_transaction(or_exit(work))
    typer.echo(f"servers limit is now {servers}", err=True)


async def _audit_account(
    session: AsyncSession, command: str, account_id: int, refused: str | None = None
) -> None:
    await audit.record_operator_change(
        session, command, account_id=account_id, resource=f"account:{account_id}", refused=refused
    )
