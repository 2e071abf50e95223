"""`vpsorg accounts`: customer accounts, credits, suspensions and limits."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS, Account
from vpsorg.audit import service as audit
from vpsorg.billing import service as billing
from vpsorg.cli.common import JsonOption, fail, in_transaction, print_json, print_records
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


ACCOUNT_COLUMNS = {
    "id": "ID",
    "name": "NAME",
    "balance": "BALANCE",
    "servers": "SERVERS",
    "servers_limit": "LIMIT",
    "suspended_at": "SUSPENDED SINCE",
    "created_at": "CREATED",
}


def account_record(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "balance": round(account.balance_micros / MICROS, 6),
        "servers_limit": account.servers_limit,
        "suspended_at": isoformat(account.suspended_at),
        "suspended_reason": account.suspended_reason,
        "created_at": isoformat(account.created_at),
    }


@app.command("list")
def accounts_list(as_json: JsonOption = False) -> None:
    """Every account with its balance and live servers."""
    from vpsorg.accounts.repository import accounts_with_server_counts

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        found = await accounts_with_server_counts(session)
        return [{**account_record(account), "servers": count} for account, count in found]

    print_records(in_transaction(work), ACCOUNT_COLUMNS, as_json=as_json)


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

    typer.echo(f"{in_transaction(work) / MICROS:.6f}")


@app.command("show")
def accounts_show(
    account_id: int,
    entries: Annotated[int, typer.Option(min=0, help="Ledger lines to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Balance, ledger tail, servers and their statuses."""
    from vpsorg.accounts.repository import ledger
    from vpsorg.servers.repository import list_owned

    async def work(session: AsyncSession) -> dict[str, Any]:
        account = await session.get(Account, account_id)
        if account is None:
            fail(f"account {account_id} not found")
        burn = await billing.burn_micros(session, account.id)
        _total, lines = await ledger(session, account.id, 0, entries)
        count, servers = await list_owned(
            session, account.id, status=None, location=None, offset=0, limit=1000
        )
        return {
            **account_record(account),
            "burn_per_hour": round(burn / MICROS, 6),
            "servers": count,
            "ledger": [
                {
                    "created_at": isoformat(e.created_at),
                    "kind": e.kind,
                    "amount": round(e.amount_micros / MICROS, 6),
                    "balance_after": round(e.balance_after_micros / MICROS, 6),
                    "memo": e.memo,
                }
                for e in lines
            ],
            "server_list": [
                {"id": s.id, "name": s.name, "status": str(s.status), "location": s.location_code}
                for s in servers
            ],
        }

    shown = in_transaction(work)
    if as_json:
        print_json(shown)
    else:
        typer.echo(_account_text(shown))


def _account_text(shown: dict[str, Any]) -> str:
    status = (
        f"suspended since {shown['suspended_at']} ({shown['suspended_reason']})"
        if shown["suspended_at"]
        else "active"
    )
    return "\n".join(
        [
            f"account {shown['id']} {shown['name']!r}: {status}",
            f"balance {shown['balance']:.6f} credits, burning {shown['burn_per_hour']:.6f}/hour; "
            f"servers {shown['servers']} of {shown['servers_limit']}",
            "",
            "ledger (newest first):",
            *[
                f"  {e['created_at']}  {e['kind']:<10} {e['amount']:>14.6f}"
                f"  -> {e['balance_after']:.6f}  {e['memo']}"
                for e in shown["ledger"]
            ],
            "",
            "servers:",
            *[
                f"  {s['id']:>6}  {s['name']:<30} {s['status']:<12} {s['location']}"
                for s in shown["server_list"]
            ],
        ]
    )


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

    typer.echo(f"suspended; {in_transaction(work)} servers suspended", err=True)


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

    if in_transaction(work):
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

    in_transaction(work)
    typer.echo(f"servers limit is now {servers}", err=True)


async def _audit_account(
    session: AsyncSession, command: str, account_id: int, refused: str | None = None
) -> None:
    await audit.record_operator_change(
        session, command, account_id=account_id, resource=f"account:{account_id}", refused=refused
    )
