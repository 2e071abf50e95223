"""Accounts and credits. Every balance change is a ledger entry in the same transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import suspension
from vpsorg.accounts.models import MICROS, Account, CreditEntry
from vpsorg.catalog.models import Plan
from vpsorg.errors import NotFound
from vpsorg.servers.models import Server, ServerStatus

BACKUPS_SURCHARGE = 0.20


def hourly_cost_micros(plan: Plan, backups_enabled: bool) -> int:
    cost = plan.price_hourly_micros
    if backups_enabled:
        cost += round(cost * BACKUPS_SURCHARGE)
    return cost


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
        await add_credit(session, account.id, credits_micros, kind="topup", memo="initial credit")
    return account


async def add_credit(
    session: AsyncSession, account_id: int, amount_micros: int, *, kind: str, memo: str = ""
) -> CreditEntry:
    """Append a ledger entry and move the balance with it, in the caller's transaction.

    A balance that falls below zero suspends the account; a top-up that lifts it above zero
    ends a suspension that was for credits (never one an operator made).
    """
    account = await lock_account(session, account_id)
    account.balance_micros += amount_micros
    entry = CreditEntry(
        account_id=account.id, kind=kind, amount_micros=amount_micros,
        balance_after_micros=account.balance_micros, memo=memo,
    )  # fmt: skip
    session.add(entry)
    await session.flush()
    if account.balance_micros < 0 and account.suspended_at is None:
        await suspension.suspend(session, account, suspension.CREDITS_REASON)
    elif account.balance_micros > 0 and suspension.suspended_for_credits(account):
        await suspension.unsuspend(session, account)
    return entry


async def hourly_burn_rate_micros(session: AsyncSession, account_id: int) -> int:
    """What the account's live, chargeable servers cost per hour right now."""
    rows = await session.execute(
        select(Plan, Server.backups_enabled)
        .join(Server, Server.plan_id == Plan.id)
        .where(
            Server.account_id == account_id,
            Server.deleted_at.is_(None),
            Server.status.not_in([ServerStatus.SUSPENDED, ServerStatus.ERROR]),
        )
    )
    return sum(hourly_cost_micros(plan, backups) for plan, backups in rows.all())
