"""Ledger queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.db import table_of


async def ledger(
    session: AsyncSession, account_id: int, offset: int, limit: int
) -> tuple[int, Sequence[CreditEntry]]:
    """Newest first."""
    condition = CreditEntry.account_id == account_id
    total = await session.scalar(select(func.count()).select_from(CreditEntry).where(condition))
    rows = await session.scalars(
        select(CreditEntry)
        .where(condition)
        .order_by(CreditEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), rows.all()


async def any_account(session: AsyncSession) -> bool:
    """Whether the database holds an account at all (the demo is made only on an empty one)."""
    return await session.scalar(select(Account.id).limit(1)) is not None


async def accounts_with_server_counts(session: AsyncSession) -> Sequence[tuple[Account, int]]:
    """Every account, oldest first, with how many live (not deleted) servers it has."""
    from vpsorg.servers.models import Server, ServerStatus

    live = (
        select(Server.account_id, func.count().label("servers"))
        .where(Server.status != ServerStatus.DELETED)
        .group_by(Server.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(Account, func.coalesce(live.c.servers, 0))
        .outerjoin(live, live.c.account_id == Account.id)
        .order_by(Account.id)
    )
    return [(account, int(count)) for account, count in rows.tuples()]


_ACCOUNTS = table_of(Account)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account"))
    .values(balance_micros=bindparam("balance"))
)


async def set_balance(session: AsyncSession, account: Account, balance_micros: int) -> None:
    """Write the (locked) account's balance in one statement; the object holds it as
    written, so no flush writes it again."""
    await session.execute(_SET_BALANCE, {"account": account.id, "balance": balance_micros})
    balance_written(account, balance_micros)


def balance_written(account: Account, balance_micros: int) -> None:
    """The account object holds the balance a statement has written, as written: no flush
    writes it again."""
    set_committed_value(account, "balance_micros", balance_micros)
