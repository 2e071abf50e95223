"""`vpsorg tokens`: API tokens, issued, listed and revoked by the operator."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.audit import service as audit
from vpsorg.auth.models import TokenScope
from vpsorg.auth.tokens import create_token, list_tokens, revoke_token, revoke_token_id
from vpsorg.cli.common import JsonOption, fail, in_transaction, print_records
from vpsorg.clock import isoformat, utcnow

app = typer.Typer(help="API tokens.", no_args_is_help=True)


@app.command("create")
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

    typer.echo(in_transaction(work))


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"([1-9][0-9]{0,8})([smhd]?)", text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 3600s, 90m, 12h or 30d")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return timedelta(**{unit[match[2]]: int(match[1])})


TOKEN_COLUMNS = {
    "id": "ID",
    "scope": "SCOPE",
    "prefix": "PREFIX",
    "expires_at": "EXPIRES",
    "last_used_at": "LAST USED",
    "name": "NAME",
}


@app.command("list")
def tokens_list(account_id: int, as_json: JsonOption = False) -> None:
    """The account's live tokens (never the tokens themselves)."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        if await session.get(Account, account_id) is None:
            fail(f"account {account_id} not found")
        _total, rows = await list_tokens(session, account_id)
        return [
            {
                "id": t.id,
                "scope": str(t.scope),
                "prefix": t.prefix,
                "expires_at": isoformat(t.expires_at),
                "last_used_at": isoformat(t.last_used_at),
                "name": t.name,
                "created_at": isoformat(t.created_at),
            }
            for t in rows
        ]

    print_records(in_transaction(work), TOKEN_COLUMNS, as_json=as_json)


@app.command("revoke")
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

    if not in_transaction(work):
        typer.echo("vpsorg: no live token matches", err=True)
        raise typer.Exit(1)
    typer.echo("revoked", err=True)
