"""Billing queries: what is due, what is live, what a server has paid."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    Insert,
    Row,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account, CreditEntry
from vpsorg.backups.models import Backup
from vpsorg.billing.models import ServerCharge, SnapshotCharge
from vpsorg.catalog.models import Plan
from vpsorg.clock import utcnow
from vpsorg.db import table_of
from vpsorg.servers.models import Server, ServerStatus

_STILL_BILLED = (Server.next_charge_at.is_not(None), Server.refunded_at.is_(None))
"""A server that may still pay: its billing is not closed and its create was not refunded."""
_STARTS_BEFORE_DELETION = or_(
    Server.deleted_at.is_(None), Server.next_charge_at < Server.deleted_at
)
"""Its next hour starts while it exists (a deleted server pays only hours started before)."""


async def due_servers(session: AsyncSession, account_id: int, until: datetime) -> Sequence[Server]:
    """The account's servers with an hour started by ``until`` and not charged, row-locked."""
    rows = await session.scalars(
        select(Server)
        .where(
            Server.account_id == account_id,
            *_STILL_BILLED,
            Server.next_charge_at <= until,
            _STARTS_BEFORE_DELETION,
        )
        .order_by(Server.id)
        .with_for_update(of=Server)
        .execution_options(populate_existing=True)
    )
    return rows.all()


_SNAPSHOT_BILLED = (Backup.next_charge_at.is_not(None),)
_SNAPSHOT_STARTS_BEFORE_DELETION = or_(
    Backup.deleted_at.is_(None), Backup.next_charge_at < Backup.deleted_at
)


class Standing(NamedTuple):
    """An account read under its row lock, with what a create asks of it."""

    account: Account
    live: int
    """Its servers not deleted, as the servers limit counts them."""
    due: bool
    """Whether any of its server- or snapshot-hours has started and is not charged."""


def standing_columns(account_id: Any, until: Any) -> tuple[Any, Any]:
    """``live`` and ``due`` of ``Standing`` at ``until`` for the account ``account_id`` names
    (each a value, or a column or parameter of the enclosing query), as columns to select
    beside the account's row."""
    live = (
        select(func.count())
        .select_from(Server)
        .where(Server.account_id == account_id, Server.deleted_at.is_(None))
        .scalar_subquery()
    )
    due_server = exists().where(
        Server.account_id == account_id,
        *_STILL_BILLED,
        Server.next_charge_at <= until,
        _STARTS_BEFORE_DELETION,
    )
    due_snapshot = exists().where(
        Backup.account_id == account_id,
        *_SNAPSHOT_BILLED,
        Backup.next_charge_at <= until,
        _SNAPSHOT_STARTS_BEFORE_DELETION,
    )
    return live.label("live"), (due_server | due_snapshot).label("due")


def lock_standing(query: Select[Any]) -> Select[Any]:
    """``query`` (which selects ``Account`` and ``standing_columns``) taking the account's row
    lock as ``accounts.service.lock_account`` does: ``FOR NO KEY UPDATE`` of it alone. The
    counts are read by the statement that takes the lock, so they see every create that held
    it before; settle (which locks what it charges) only when something is due."""
    return query.with_for_update(of=Account, key_share=True).execution_options(
        populate_existing=True
    )


def standing_of(row: Row[Any]) -> Standing:
    mapping = row._mapping
    return Standing(mapping[Account], int(mapping["live"]), bool(mapping["due"]))


async def lock_with_standing(
    session: AsyncSession, account_id: int, until: datetime
) -> Standing | None:
    """The account under its row lock, with its standing, in one statement; None when there
    is no such account."""
    query = select(Account, *standing_columns(account_id, until)).where(Account.id == account_id)
    row = (await session.execute(lock_standing(query))).one_or_none()
    return None if row is None else standing_of(row)


async def due_snapshots(
    session: AsyncSession, account_id: int, until: datetime
) -> Sequence[Backup]:
    """The account's snapshots with an hour started by ``until`` and not charged, row-locked."""
    rows = await session.scalars(
        select(Backup)
        .where(
            Backup.account_id == account_id,
            *_SNAPSHOT_BILLED,
            Backup.next_charge_at <= until,
            _SNAPSHOT_STARTS_BEFORE_DELETION,
        )
        .order_by(Backup.id)
        .with_for_update(of=Backup)
        .execution_options(populate_existing=True)
    )
    return rows.all()


async def live_snapshots(
    session: AsyncSession, account_id: int, *, lock: bool = False
) -> Sequence[Backup]:
    """The account's snapshots that pay each hour: billed and not deleted."""
    query = (
        select(Backup)
        .where(
            Backup.account_id == account_id,
            *_SNAPSHOT_BILLED,
            Backup.deleted_at.is_(None),
        )
        .order_by(Backup.id)
    )
    if lock:
        query = query.with_for_update(of=Backup).execution_options(populate_existing=True)
    return (await session.scalars(query)).all()


async def live_servers(
    session: AsyncSession, account_id: int, *, lock: bool = False
) -> Sequence[Server]:
    """The account's servers that pay each hour: not deleted, create not refunded."""
    query = (
        select(Server)
        .where(
            Server.account_id == account_id,
            Server.deleted_at.is_(None),
            Server.refunded_at.is_(None),
        )
        .order_by(Server.id)
    )
    if lock:
        query = query.with_for_update(of=Server).execution_options(populate_existing=True)
    return (await session.scalars(query)).all()


async def accounts_with_due_hours(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[int]:
    """Accounts, not suspended, with at least one server- or snapshot-hour started and not
    charged, the longest due first."""
    servers = (
        select(Server.account_id.label("account_id"), Server.next_charge_at.label("due"))
        .join(Account, Account.id == Server.account_id)
        .where(
            Account.suspended_at.is_(None),
            *_STILL_BILLED,
            Server.next_charge_at <= now,
            _STARTS_BEFORE_DELETION,
        )
    )
    snapshots = (
        select(Backup.account_id.label("account_id"), Backup.next_charge_at.label("due"))
        .join(Account, Account.id == Backup.account_id)
        .where(
            Account.suspended_at.is_(None),
            *_SNAPSHOT_BILLED,
            Backup.next_charge_at <= now,
            _SNAPSHOT_STARTS_BEFORE_DELETION,
        )
    )
    due = servers.union_all(snapshots).subquery()
    rows = await session.scalars(
        select(due.c.account_id)
        .group_by(due.c.account_id)
        .order_by(func.min(due.c.due))
        .limit(limit)
    )
    return rows.all()


async def accounts_on_plan(session: AsyncSession, plan_id: int) -> Sequence[int]:
    """Accounts with a server of the plan that may still pay."""
    rows = await session.scalars(
        select(Server.account_id)
        .where(Server.plan_id == plan_id, *_STILL_BILLED)
        .distinct()
        .order_by(Server.account_id)
    )
    return rows.all()


async def close_deleted(session: AsyncSession, account_id: int) -> None:
    """End the billing of the account's deleted servers (their last hours were free)."""
    await session.execute(
        update(Server)
        .where(
            Server.account_id == account_id,
            Server.deleted_at.is_not(None),
            Server.next_charge_at.is_not(None),
        )
        .values(next_charge_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Backup)
        .where(
            Backup.account_id == account_id,
            Backup.deleted_at.is_not(None),
            Backup.next_charge_at.is_not(None),
        )
        .values(next_charge_at=None)
        .execution_options(synchronize_session=False)
    )


async def mark_refunded(session: AsyncSession, server_id: int, now: datetime) -> bool:
    """Close a failed create's billing, once: False when it was already refunded."""
    result = await session.execute(
        update(Server)
        .where(Server.id == server_id, Server.refunded_at.is_(None))
        .values(refunded_at=now, next_charge_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def paid_by_server(session: AsyncSession, server_id: int) -> int:
    total = await session.scalar(
        select(func.sum(ServerCharge.amount_micros)).where(ServerCharge.server_id == server_id)
    )
    return int(total or 0)


async def live_prices(session: AsyncSession, account_id: int) -> Sequence[tuple[Plan, bool]]:
    """(plan, backups_enabled) of each server the account pays for every hour."""
    rows = await session.execute(
        select(Plan, Server.backups_enabled)
        .join(Server, Server.plan_id == Plan.id)
        .where(
            Server.account_id == account_id,
            Server.deleted_at.is_(None),
            Server.refunded_at.is_(None),
        )
    )
    return [(plan, backups) for plan, backups in rows.all()]


async def live_snapshot_sizes(session: AsyncSession, account_id: int) -> Sequence[tuple[int, int]]:
    """(size in GB, price per GB-hour) of each snapshot the account pays for every hour."""
    rows = await session.execute(
        select(Backup.size_gb, Backup.price_gb_hour_micros).where(
            Backup.account_id == account_id, *_SNAPSHOT_BILLED, Backup.deleted_at.is_(None)
        )
    )
    return [(size, price) for size, price in rows.all()]


async def suspended_accounts_with_servers_up(session: AsyncSession) -> Sequence[int]:
    """Suspended accounts with servers still active or stopped (busy when it was suspended)."""
    rows = await session.scalars(
        select(Account.id)
        .join(Server, Server.account_id == Account.id)
        .where(
            Account.suspended_at.is_not(None),
            Server.deleted_at.is_(None),
            Server.status.in_([ServerStatus.ACTIVE, ServerStatus.STOPPED]),
        )
        .distinct()
    )
    return rows.all()


async def book_hour(
    session: AsyncSession,
    charge: ServerCharge | SnapshotCharge,
    *,
    balance_micros: int,
    memo: str,
) -> int:
    """PostgreSQL's booking of one charged hour in one statement: its ledger line (kind
    ``charge``), the locked account's new balance and the hour's row; the line's id.

    Three statements elsewhere (``accounts.record_entry``, then the row): SQLite has no
    INSERT or UPDATE inside WITH. Nothing is read back but the id: the caller knows the
    balance it wrote, and the charge's ``created_at`` is set here if unset.
    """
    now = utcnow()
    if charge.created_at is None:
        charge.created_at = now
    table = table_of(type(charge))
    parameters = {f"charge_{c.key}": getattr(charge, c.key) for c in _charged_columns(table)}
    parameters.update(
        entry_account_id=charge.account_id,
        entry_amount=-charge.amount_micros,
        entry_balance=balance_micros,
        entry_memo=memo,
        entry_created_at=now,
    )
    entry_id: int = (await session.execute(_booking(type(charge)), parameters)).scalar_one()
    charge.credit_entry_id = entry_id
    return entry_id


@cache
def _charged_columns(table: Table) -> tuple[Column[Any], ...]:
    """A charge table's columns but its id and its ledger line's."""
    return tuple(c for c in table.columns if c.key not in ("id", "credit_entry_id"))


_ENTRIES = table_of(CreditEntry)
_ACCOUNTS = table_of(Account)


@cache
def _booking(model: type[ServerCharge] | type[SnapshotCharge]) -> Insert:
    """``book_hour``'s statement for a charge model, built once: the ledger line and the
    balance as data-modifying CTEs (PostgreSQL runs each exactly once), the hour's row
    selected with the line's id."""
    account_id = bindparam("entry_account_id", type_=_ENTRIES.c.account_id.type)
    balance = bindparam("entry_balance", type_=_ENTRIES.c.balance_after_micros.type)
    entry = (
        insert(_ENTRIES)
        .values(
            account_id=account_id,
            kind="charge",
            amount_micros=bindparam("entry_amount", type_=_ENTRIES.c.amount_micros.type),
            balance_after_micros=balance,
            memo=bindparam("entry_memo", type_=_ENTRIES.c.memo.type),
            created_at=bindparam("entry_created_at", type_=_ENTRIES.c.created_at.type),
        )
        .returning(_ENTRIES.c.id)
        .cte("entry")
    )
    new_balance = (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == account_id)
        .values(balance_micros=balance)
        .cte("new_balance")
    )
    charges = table_of(model)
    columns = _charged_columns(charges)
    hour = select(*(bindparam(f"charge_{c.key}", type_=c.type) for c in columns), entry.c.id)
    return (
        insert(charges)
        .from_select([*(c.key for c in columns), "credit_entry_id"], hour)
        .add_cte(new_balance)
        .returning(charges.c.credit_entry_id)
    )
