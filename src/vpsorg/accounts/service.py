"""Accounts and their credit ledger. Every balance change is a ledger entry in the same
transaction; what a change means (charges, suspension) is decided in ``billing/``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import repository
from vpsorg.accounts.models import MICROS, Account, CreditEntry
from vpsorg.db import insert_new
from vpsorg.errors import NotFound


def to_micros(credits: float | str) -> int:
    return round(float(credits) * MICROS)


async def lock_account(session: AsyncSession, account_id: int) -> Account:
    """Re-read the account under a row lock (PostgreSQL) / the write lock (SQLite).

    ``FOR NO KEY UPDATE``: foreign-key checks of rows that point at the account don't wait on it.
    """
    account = await session.scalar(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if account is None:
        raise NotFound(f"Account {account_id} not found.")
    return account


async def create_account(session: AsyncSession, name: str, credits_micros: int = 0) -> Account:
    account = Account(name=name, balance_micros=0)
    session.add(account)
    await session.flush()
    if credits_micros:
        await record_entry(session, account, credits_micros, kind="topup", memo="initial credit")
    return account


async def record_entry(
    session: AsyncSession, account: Account, amount_micros: int, *, kind: str, memo: str = ""
) -> CreditEntry:
    """Append a ledger line and move the (locked) account's balance with it: two statements,
    no flush (see ``db.insert_new``)."""
    balance = account.balance_micros + amount_micros
    entry = CreditEntry(
        account_id=account.id,
        kind=kind,
        amount_micros=amount_micros,
        balance_after_micros=balance,
        memo=memo,
    )
    await insert_new(session, entry)
    await repository.set_balance(session, account, balance)
    await session.flush()  # the caller's other changes are written by now, as they always were
    return entry
