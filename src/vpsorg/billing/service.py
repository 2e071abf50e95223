"""The billing rules: prepaid server-hours, the monthly cap, suspension and its lifting.

- A server's first hour is charged when it is created, in the create's transaction; each
  later hour is charged as it starts, at the price and backups flag in force then.
- Hours start at the server's anchor plus whole hours. The anchor is its creation, and the
  moment a suspension is lifted (each server then starts a new hour, charged at once).
- The balance falling below zero suspends the account at the start of the hour whose charge
  took it there. Every hour that started by then is charged in full; hours that start while
  the account is suspended are free.
- A server pays at most ``HOURS_PER_MONTH`` hours of its price per calendar month.
- A snapshot pays its size (whole GB) times its price per GB-hour for each hour that starts
  while it is available (from the moment its copy is done), by the same rules: charged as
  the hour starts, exactly once, in time order with the servers' hours, free while the
  account is suspended (a lifted suspension starts a new hour), no cap.

The meter may run late, so every change that affects what an hour costs (a top-up, a backups
toggle, a price change, an operator's suspension) first *settles* the account: charges every
hour started until that moment, oldest first, under the account's row lock. Between two
settlements nothing but time changes, so a late settlement charges exactly what an on-time
meter would have. The account's row lock is the one lock: take it before any server's.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import repository as accounts_repository
from vpsorg.accounts import service as accounts
from vpsorg.accounts.models import MICROS, Account, CreditEntry
from vpsorg.backups.models import Backup
from vpsorg.billing import repository, suspension
from vpsorg.billing.models import ServerCharge, SnapshotCharge
from vpsorg.billing.pricing import capped_charge_micros, hour_price_micros, snapshot_hour_micros
from vpsorg.catalog.models import Plan
from vpsorg.clock import utcnow
from vpsorg.db import insert_all
from vpsorg.errors import InsufficientCredits, InvalidParameters, NotFound
from vpsorg.servers.models import Server

HOUR = timedelta(hours=1)


# -- settling: charging every hour that has started -------------------------------------


async def settle(session: AsyncSession, account: Account, until: datetime) -> int:
    """Charge every hour of the (locked) account's servers started by ``until``.

    Returns how many hours were charged. A suspended account has nothing to settle.
    """
    if account.suspended_at is not None:
        return 0
    servers = await repository.due_servers(session, account.id, until)
    snapshots = await repository.due_snapshots(session, account.id, until)
    return await _charge_hours(session, account, servers, until, snapshots)


async def settle_account(session: AsyncSession, account_id: int) -> Account:
    """Lock the account and settle it up to now; returns it, locked."""
    account = await accounts.lock_account(session, account_id)
    await settle(session, account, utcnow())
    return account


SERVER, SNAPSHOT = 0, 1
"""What a meter entry is; at the same moment, servers' hours are charged first."""


async def _charge_hours(
    session: AsyncSession,
    account: Account,
    servers: Iterable[Server],
    until: datetime,
    snapshots: Iterable[Backup] = (),
) -> int:
    """Charge the servers' and snapshots' hours that start by ``until``, in the order they
    start.

    The order matters only for the moment the balance goes negative: that hour's start is
    when the account is suspended, and hours of other servers starting later are free.
    """
    by_id = {server.id: server for server in servers}
    snapshot_by_id = {snapshot.id: snapshot for snapshot in snapshots}
    starts = [(s.next_charge_at, SERVER, s.id) for s in by_id.values() if s.next_charge_at]
    starts += [
        (s.next_charge_at, SNAPSHOT, s.id) for s in snapshot_by_id.values() if s.next_charge_at
    ]
    heapq.heapify(starts)
    balance = account.balance_micros
    suspended_at: datetime | None = None
    charged: dict[int, list[ServerCharge]] = {}
    snapshot_charged: dict[int, list[SnapshotCharge]] = {}
    while starts:
        starts_at, kind, item_id = heapq.heappop(starts)
        if starts_at > until or (suspended_at is not None and starts_at > suspended_at):
            break
        next_start: datetime | None
        if kind == SERVER:
            server = by_id[item_id]
            charge = _charge_hour(server, starts_at)
            charged.setdefault(item_id, []).append(charge)
            amount, next_start = charge.amount_micros, server.next_charge_at
        else:
            snapshot = snapshot_by_id[item_id]
            snapshot_charge = _charge_snapshot_hour(snapshot, starts_at)
            snapshot_charged.setdefault(item_id, []).append(snapshot_charge)
            amount, next_start = snapshot_charge.amount_micros, snapshot.next_charge_at
        balance -= amount
        if balance < 0 and suspended_at is None:
            suspended_at = starts_at
        if next_start is not None:
            heapq.heappush(starts, (next_start, kind, item_id))
    for server_id, hours in charged.items():
        server = by_id[server_id]
        await _book(session, account, f"server {server.id} ({server.name})", hours)
    for snapshot_id, snapshot_hours in snapshot_charged.items():
        snapshot = snapshot_by_id[snapshot_id]
        subject = f"snapshot {snapshot.id} ({snapshot.name}, {snapshot.size_gb} GB)"
        await _book(session, account, subject, snapshot_hours)
    if suspended_at is not None:
        await suspension.suspend(session, account, suspension.CREDITS_REASON, at=suspended_at)
    return sum(len(hours) for hours in charged.values())


def _charge_hour(server: Server, starts_at: datetime) -> ServerCharge:
    """The charge of the server's hour starting at ``starts_at``; moves its clock on."""
    period = starts_at.strftime("%Y-%m")
    if server.month_period != period:
        server.month_period, server.month_paid_micros = period, 0
    price = hour_price_micros(server.plan, server.backups_enabled)
    amount = capped_charge_micros(price, server.month_paid_micros)
    server.month_paid_micros += amount
    charge = ServerCharge(
        server_id=server.id,
        account_id=server.account_id,
        hour=server.billed_hours,
        starts_at=starts_at,
        amount_micros=amount,
    )
    server.billed_hours += 1
    next_start = starts_at + HOUR
    deleted = server.deleted_at is not None and next_start >= server.deleted_at
    server.next_charge_at = None if deleted else next_start
    return charge


def _charge_snapshot_hour(snapshot: Backup, starts_at: datetime) -> SnapshotCharge:
    """The charge of the snapshot's hour starting at ``starts_at``; moves its clock on."""
    charge = SnapshotCharge(
        backup_id=snapshot.id,
        account_id=snapshot.account_id,
        hour=snapshot.billed_hours,
        starts_at=starts_at,
        size_gb=snapshot.size_gb,
        amount_micros=snapshot_hour_micros(snapshot.size_gb, snapshot.price_gb_hour_micros),
    )
    snapshot.billed_hours += 1
    next_start = starts_at + HOUR
    deleted = snapshot.deleted_at is not None and next_start >= snapshot.deleted_at
    snapshot.next_charge_at = None if deleted else next_start
    return charge


async def _book(
    session: AsyncSession,
    account: Account,
    subject: str,
    hours: Sequence[ServerCharge] | Sequence[SnapshotCharge],
) -> None:
    """One ledger line for ``subject``'s hours charged together, and a row per hour.

    On PostgreSQL one hour with a price (a create's first, and most hours charged) is
    booked by one statement (``repository.book_hour``) instead of three.
    """
    total = sum(charge.amount_micros for charge in hours)
    first, last = hours[0].hour + 1, hours[-1].hour + 1
    memo = f"{subject}, hour {first}" if first == last else f"{subject}, hours {first}-{last}"
    if total and len(hours) == 1 and session.get_bind().dialect.name == "postgresql":
        balance = account.balance_micros - total
        await repository.book_hour(session, hours[0], balance_micros=balance, memo=memo)
        accounts_repository.balance_written(account, balance)
    else:
        entry_id = None
        if total:
            entry = await accounts.record_entry(session, account, -total, kind="charge", memo=memo)
            entry_id = entry.id
        for charge in hours:
            charge.credit_entry_id = entry_id
        await insert_all(session, hours)
    # What charging changed on ORM rows (a server's billing clock) is written now, as before
    # the charges were inserted by Core: sessions don't autoflush, and a later read of those
    # rows with populate_existing would otherwise undo it. Nothing to write on a create.
    await session.flush()


# -- creating a server ------------------------------------------------------------------


def require_first_hour(account: Account, plan: Plan, backups_enabled: bool) -> None:
    """Refuse a create when the (locked, settled) account can't pay the server's first hour."""
    price = hour_price_micros(plan, backups_enabled)
    if account.balance_micros < price:
        raise InsufficientCredits(
            f"Insufficient credits: a '{plan.name}' server's first hour costs "
            f"{price / MICROS:.4f} credits, charged when it is created; the balance is "
            f"{account.balance_micros / MICROS:.4f}."
        )


async def lock_for_create(
    session: AsyncSession, account_id: int, now: datetime
) -> repository.Standing:
    """Lock the account and settle it up to ``now``: its standing, in one statement when
    nothing is due, as is usual (the meter keeps accounts settled)."""
    standing = await repository.lock_with_standing(session, account_id, now)
    if standing is None:
        raise NotFound(f"Account {account_id} not found.")
    return await settle_standing(session, standing, now)


async def settle_standing(
    session: AsyncSession, standing: repository.Standing, now: datetime
) -> repository.Standing:
    """Settle an account read with its standing under its lock, if an hour is due: the due
    rows are then locked and charged, exactly as ``settle`` would."""
    if standing.due:
        await settle(session, standing.account, now)
        return standing._replace(due=False)
    return standing


def start_first_hour(server: Server) -> ServerCharge:
    """The first hour of a new server that is not inserted yet (it starts at ``created_at``):
    moves the server's billing clock, so its INSERT carries it, and returns the charge for
    ``book_first_hour`` to write once the server has an id."""
    server.billed_hours = 0
    return _charge_hour(server, server.created_at)


async def book_first_hour(
    session: AsyncSession, account: Account, server: Server, charge: ServerCharge
) -> None:
    """Charge the (locked) account for the inserted server's first hour: its ledger line,
    the balance, and the hour's row."""
    charge.server_id = server.id
    await _book(session, account, f"server {server.id} ({server.name})", [charge])


async def refund_failed_create(session: AsyncSession, server: Server) -> None:
    """Give back everything a server whose create failed has paid; it never pays again."""
    account = await settle_account(session, server.account_id)
    now = utcnow()
    if not await repository.mark_refunded(session, server.id, now):
        return
    paid = await repository.paid_by_server(session, server.id)
    if paid:
        memo = f"server {server.id} ({server.name}): creation failed"
        await accounts.record_entry(session, account, paid, kind="refund", memo=memo)
        await _apply_balance(session, account, now)


async def before_backups_change(session: AsyncSession, server: Server) -> None:
    """Settle the server's account, so the hours started so far keep the old price."""
    await settle_account(session, server.account_id)


# -- credits and suspension ---------------------------------------------------------------


async def credit(
    session: AsyncSession,
    account_id: int,
    amount_micros: int,
    *,
    kind: str = "topup",
    memo: str = "",
) -> CreditEntry:
    """Add credits (negative: take them, as a correction) and apply what the balance implies.

    A balance below zero suspends the account; a credits suspension is lifted once the
    balance covers the account's hourly burn.
    """
    account = await settle_account(session, account_id)
    entry = await accounts.record_entry(session, account, amount_micros, kind=kind, memo=memo)
    await _apply_balance(session, account, utcnow())
    return entry


async def _apply_balance(session: AsyncSession, account: Account, now: datetime) -> None:
    if account.balance_micros < 0 and account.suspended_at is None:
        await suspension.suspend(session, account, suspension.CREDITS_REASON, at=now)
    elif suspension.suspended_for_credits(account) and account.balance_micros >= await burn_micros(
        session, account.id
    ):
        await _lift(session, account, now)


async def _lift(session: AsyncSession, account: Account, now: datetime) -> int:
    """End the suspension: servers become stopped, and each starts a new hour, paid now."""
    count = await suspension.unsuspend(session, account)
    await repository.close_deleted(session, account.id)
    servers = await repository.live_servers(session, account.id, lock=True)
    for server in servers:
        server.next_charge_at = now
    snapshots = await repository.live_snapshots(session, account.id, lock=True)
    for snapshot in snapshots:
        snapshot.next_charge_at = now
    await _charge_hours(session, account, servers, now, snapshots)
    return count


async def burn_micros(session: AsyncSession, account_id: int) -> int:
    """What the account's live servers and snapshots cost per hour (their next hour, before
    any cap)."""
    prices = await repository.live_prices(session, account_id)
    snapshots = await repository.live_snapshot_sizes(session, account_id)
    return sum(hour_price_micros(plan, backups) for plan, backups in prices) + sum(
        snapshot_hour_micros(size, price) for size, price in snapshots
    )


async def suspend_account(session: AsyncSession, account_id: int, reason: str) -> int:
    """An operator's suspension; a top-up does not lift it. Returns servers suspended now."""
    account = await settle_account(session, account_id)
    return await suspension.suspend(session, account, reason, at=utcnow())


async def unsuspend_account(session: AsyncSession, account_id: int) -> bool:
    """Lift any suspension if the balance covers an hour of every server; True when the
    account is not suspended afterwards (also when it was not suspended at all).

    Otherwise the account stays suspended, now for credits: a top-up lifts it. The account
    is settled first, as for every change of its standing: hours a late meter has not
    charged yet may be what suspends it (a suspended account has nothing to settle).
    """
    account = await settle_account(session, account_id)
    if account.suspended_at is None:
        return True
    if account.balance_micros >= await burn_micros(session, account.id):
        await _lift(session, account, utcnow())
        return True
    account.suspended_reason = suspension.CREDITS_REASON
    return False


async def sweep_suspended_accounts(session: AsyncSession) -> None:
    """Suspend servers that were busy when their account was suspended."""
    for account_id in await repository.suspended_accounts_with_servers_up(session):
        account = await accounts.lock_account(session, account_id)
        if account.suspended_at is not None:
            await suspension.suspend_servers(session, account)


# -- prices -----------------------------------------------------------------------------


async def set_plan_price(session: AsyncSession, plan_id: int, price_hourly_micros: int) -> Plan:
    """Change a plan's hourly price from now on: hours already started keep the old one."""
    if price_hourly_micros < 0:
        raise InvalidParameters.field("price_hourly", "A price can't be negative.")
    plan = await session.scalar(select(Plan).where(Plan.id == plan_id).with_for_update())
    if plan is None:
        raise NotFound(f"Plan {plan_id} not found.")
    for account_id in await repository.accounts_on_plan(session, plan_id):
        await settle_account(session, account_id)
    plan.price_hourly_micros = price_hourly_micros
    await session.flush()
    return plan
