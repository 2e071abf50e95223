"""`vpsorg users`: the people who log in to the web panel, each acting for one account.

Passwords are read from a hidden, confirmed prompt on a terminal, or from the first line of
stdin otherwise (``printf '%s\\n' "$PASSWORD" | vpsorg users create 2 ana@example.com``):
never from the command line, where `ps` and the shell's history would see them.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.audit import service as audit
from vpsorg.cli.common import JsonOption, fail, in_transaction, print_records
from vpsorg.clock import isoformat
from vpsorg.users import passwords
from vpsorg.users import repository as users_repository
from vpsorg.users import service as users

app = typer.Typer(help="Web panel users.", no_args_is_help=True)


def read_password() -> str:
    """A new password: prompted twice (hidden) on a terminal, else stdin's first line."""
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = passwords.password_problem(password)
    if problem is not None:
        fail(f"password refused: {problem}")
    return password


@app.command("create")
def users_create(account_id: int, email: str) -> None:
    """Add a user to the account; prints the user's id."""
    password = read_password()

    async def work(session: AsyncSession) -> int:
        user = await users.create_user(session, account_id, email, password)
        await audit.record_operator_change(
            session,
            f"users create {account_id} {user.email}",
            account_id=account_id,
            resource=f"user:{user.id}",
        )
        return user.id

    typer.echo(in_transaction(work))


USER_COLUMNS = {
    "id": "ID",
    "account_id": "ACCOUNT",
    "email": "EMAIL",
    "disabled": "DISABLED",
    "last_login_at": "LAST LOGIN",
    "created_at": "CREATED",
}


@app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """Every user, with its account."""

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [
            {
                "id": u.id,
                "account_id": u.account_id,
                "email": u.email,
                "disabled": u.disabled,
                "last_login_at": isoformat(u.last_login_at),
                "created_at": isoformat(u.created_at),
            }
            for u in await users_repository.list_users(session)
        ]

    print_records(in_transaction(work), USER_COLUMNS, as_json=as_json)


@app.command("disable")
def users_disable(email: str) -> None:
    """Refuse the user's logins from now on and end every session of theirs."""

    async def work(session: AsyncSession) -> None:
        user = await users.disable_user(session, email)
        await audit.record_operator_change(
            session,
            f"users disable {user.email}",
            account_id=user.account_id,
            resource=f"user:{user.id}",
        )

    in_transaction(work)
    typer.echo("disabled", err=True)


@app.command("set-password")
def users_set_password(email: str) -> None:
    """Set the user's password (the user's sessions end)."""
    password = read_password()

    async def work(session: AsyncSession) -> None:
        user = await users.set_password(session, email, password)
        await audit.record_operator_change(
            session,
            f"users set-password {user.email}",
            account_id=user.account_id,
            resource=f"user:{user.id}",
        )

    in_transaction(work)
    typer.echo("password set", err=True)
