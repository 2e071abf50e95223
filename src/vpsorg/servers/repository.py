"""Server queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.auth.models import ApiToken
from vpsorg.auth.tokens import CALLER_COLUMNS, Caller, is_live
from vpsorg.billing import repository as billing
from vpsorg.billing.repository import Standing
from vpsorg.catalog import repository as catalog
from vpsorg.catalog.models import OperatingSystem, Plan
from vpsorg.catalog.repository import Found
from vpsorg.clock import utcnow
from vpsorg.db import table_of
from vpsorg.servers.models import Server


def _visible(account_id: int):  # type: ignore[no-untyped-def]
    return (Server.account_id == account_id, Server.deleted_at.is_(None))


async def get_owned(session: AsyncSession, account_id: int, server_id: int) -> Server | None:
    """The account's server, unless deleted. Another account's server is simply absent."""
    return await session.scalar(select(Server).where(Server.id == server_id, *_visible(account_id)))


async def list_owned(
    session: AsyncSession,
    account_id: int,
    *,
    status: str | None,
    location: str | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[Server]]:
    conditions = [*_visible(account_id)]
    if status is not None:
        conditions.append(Server.status == status)
    if location is not None:
        conditions.append(Server.location_code == location)
    total = await session.scalar(select(func.count()).select_from(Server).where(*conditions))
    rows = await session.scalars(
        select(Server).where(*conditions).order_by(Server.id).offset(offset).limit(limit)
    )
    return int(total or 0), rows.all()


# -- reads without the ORM ---------------------------------------------------------------
# The two GETs clients call most (a server, a page of servers) read rows with Core
# statements built once (compiled once, from cache), and the endpoints render the rows:
# no identity map, no ORM objects. ``ServerDetail.body_from_row`` and
# ``ServerSummary.body_from_row`` name the columns they read.

VIEW_COLUMNS = (
    Server.id,
    Server.name,
    Server.hostname,
    Server.status,
    Server.ipv4_address,
    Server.ipv6_address,
    Server.provisioned_at,
    Server.location_code,
    Server.backups_enabled,
    Server.cpu_percent,
    Server.memory_used_mb,
    Server.disk_used_gb,
    Server.bandwidth_used_gb,
    Server.created_at,
    Server.updated_at,
    Plan.id.label("plan_id"),
    Plan.name.label("plan_name"),
    Plan.vcpus,
    Plan.memory_mb,
    Plan.storage_gb,
    Plan.bandwidth_gb,
    OperatingSystem.id.label("os_id"),
    OperatingSystem.name.label("os_name"),
)

_OWNED_WITH_CALLER = (
    select(*CALLER_COLUMNS, *VIEW_COLUMNS)
    .select_from(ApiToken)
    .outerjoin(
        Server,
        and_(
            Server.account_id == ApiToken.account_id,
            Server.id == bindparam("server_id"),
            Server.deleted_at.is_(None),
        ),
    )
    .outerjoin(Plan, Plan.id == Server.plan_id)
    .outerjoin(OperatingSystem, OperatingSystem.id == Server.os_id)
    .where(*is_live())
)


def get_owned_view(
    connection: Connection, token_hash: str, server_id: int
) -> tuple[Caller, Row[*tuple[Any, ...]] | None] | None:
    """The caller of a live token and its server (unless deleted), in one statement.

    None when the token is not live; (caller, None) when the server is not the caller's.
    The token is checked by the same statement that reads the server, so a revoked token
    reads nothing.
    """
    parameters = {"token_hash": token_hash, "now": utcnow(), "server_id": server_id}
    row = connection.execute(_OWNED_WITH_CALLER, parameters).first()
    if row is None:
        return None
    return Caller.from_row(row), (row if row.id is not None else None)


_CALLER_AND_ACCOUNT: Select[Any] = (
    select(*CALLER_COLUMNS, Account, *billing.standing_columns(Account.id, bindparam("now")))
    .select_from(ApiToken)
    .join(Account, Account.id == ApiToken.account_id)
    .where(*is_live())
)
_CREATING = billing.lock_standing(catalog.with_references(_CALLER_AND_ACCOUNT, ApiToken.account_id))


async def find_creating(
    session: AsyncSession,
    token_hash: str,
    now: datetime,
    *,
    plan_id: int | None,
    os_id: int | None,
    location: str | None,
    ssh_key_id: int | None,
) -> tuple[Caller, Standing, Found] | None:
    """The caller of a live token, its account under its row lock with its standing at
    ``now``, and the references a new server names (the SSH key only if it is the caller's),
    in one statement built once; None when the token is not live."""
    parameters = {
        "token_hash": token_hash,
        "now": now,
        **catalog.reference_parameters(plan_id, os_id, location, ssh_key_id),
    }
    row = (await session.execute(_CREATING, parameters)).one_or_none()
    if row is None:
        return None
    return Caller.from_row(row), billing.standing_of(row), catalog.found_in(row)


@dataclass(frozen=True)
class ServerFilter:
    """Which of an account's servers a list shows, and from where."""

    status: str | None = None
    location: str | None = None
    after_id: int | None = None
    """Keyset position (a cursor): only servers with a greater id."""


def _owned_where(status: bool, location: bool, after: bool) -> tuple[Any, ...]:
    conditions: list[Any] = [
        Server.account_id == bindparam("account_id"),
        Server.deleted_at.is_(None),
    ]
    if status:
        conditions.append(Server.status == bindparam("status"))
    if location:
        conditions.append(Server.location_code == bindparam("location"))
    if after:
        conditions.append(Server.id > bindparam("after_id"))
    return tuple(conditions)


@cache
def _page_statement(status: bool, location: bool, after: bool) -> Select[Any]:
    """The exact count and one page, in one statement (one snapshot, one round trip).

    The page's ids are picked first (``ORDER BY id LIMIT OFFSET`` on the
    ``(account_id, id) WHERE deleted_at IS NULL`` index alone), then only those rows are
    joined: a deep page skips index entries, not 10,000 joined rows.
    """
    total = (
        select(func.count())
        .select_from(Server)
        .where(*_owned_where(status, location, False))
        .scalar_subquery()
    )
    ids = (
        select(Server.id)
        .where(*_owned_where(status, location, after))
        .order_by(Server.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return (
        select(total.label("total"), *VIEW_COLUMNS)
        .join(Plan, Plan.id == Server.plan_id)
        .join(OperatingSystem, OperatingSystem.id == Server.os_id)
        .where(Server.id.in_(ids))
        .order_by(Server.id)
    )


@cache
def _count_statement(status: bool, location: bool) -> Select[Any]:
    return select(func.count()).select_from(Server).where(*_owned_where(status, location, False))


def list_owned_view(
    connection: Connection, account_id: int, shown: ServerFilter, offset: int, limit: int
) -> tuple[int, Sequence[Row[*tuple[Any, ...]]]]:
    """The number of the account's servers that ``shown`` selects (the cursor aside), and
    ``limit`` of them by id, skipping ``offset`` (or those up to the cursor)."""
    has_status, has_location = shown.status is not None, shown.location is not None
    parameters = {
        "account_id": account_id,
        "status": shown.status,
        "location": shown.location,
        "after_id": shown.after_id,
        "offset": offset,
        "limit": limit,
    }
    statement = _page_statement(has_status, has_location, shown.after_id is not None)
    rows = connection.execute(statement, parameters).all()
    if rows:
        return int(rows[0].total), rows
    # Past the end: no row to carry the count.
    total = connection.scalar(_count_statement(has_status, has_location), parameters)
    return int(total or 0), rows


_SERVERS = table_of(Server)
_SET_PLACEMENT = (
    update(_SERVERS)
    .where(_SERVERS.c.id == bindparam("server_id"))
    .values(
        host_id=bindparam("host"),
        ipv4_address=bindparam("ipv4"),
        ipv6_address=bindparam("ipv6"),
    )
)


async def set_placement(session: AsyncSession, server: Server) -> None:
    """Write a new server's host and addresses, as set on the object (not in the session:
    see ``db.insert_new``)."""
    await session.execute(
        _SET_PLACEMENT,
        {
            "server_id": server.id,
            "host": server.host_id,
            "ipv4": server.ipv4_address,
            "ipv6": server.ipv6_address,
        },
    )


async def count_live(session: AsyncSession, account_id: int) -> int:
    query = select(func.count()).select_from(Server).where(*_visible(account_id))
    return int(await session.scalar(query) or 0)


async def addresses_of(session: AsyncSession, server_id: int) -> list[str]:
    """The addresses a server holds, as the database has them now."""
    row = (
        await session.execute(
            select(Server.ipv4_address, Server.ipv6_address).where(Server.id == server_id)
        )
    ).first()
    return [] if row is None else [address for address in row if address is not None]


async def transition(
    session: AsyncSession,
    server_id: int,
    from_statuses: Iterable[str],
    to_status: str,
    *,
    unchanged_since: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a server from one of ``from_statuses`` to ``to_status``, atomically.

    The guard is in the UPDATE's WHERE clause, so of two racing requests (in any number of
    processes) exactly one sees a row count of 1; the other knows it lost. With
    ``unchanged_since`` (the ``updated_at`` a caller read) the move also loses if anything
    changed the server since, even if its status came back to the same value.
    """
    guard = [Server.id == server_id, Server.status.in_(list(from_statuses))]
    if unchanged_since is not None:
        guard.append(Server.updated_at == unchanged_since)
    result = await session.execute(
        update(Server)
        .where(*guard)
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_by_status_and_location(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Servers (deleted ones too) by (status, location code)."""
    query = select(Server.status, Server.location_code, func.count()).group_by(
        Server.status, Server.location_code
    )
    return {
        (status, location): int(count) for status, location, count in await session.execute(query)
    }
