"""The action queue: enqueue, claim with a lease, renew, finish, retry.

Rules (see README, "The action queue"):

* An action is claimable when it is ``pending`` (and its ``not_before`` has passed), or
  ``running`` with an expired lease (its worker died).
* A worker that sees that another worker of its own host has died (its process is gone)
  ends the dead worker's leases at once (``take_back``), rather than waiting them out.
* Actions of one server run one at a time, oldest first: an action is only claimable
  while no older action of the same server is unfinished.
* A claim is one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
  database write lock (``BEGIN IMMEDIATE``) on SQLite, then the rows are marked running with
  ``claimed_by`` and ``lease_until``. A worker claims as many actions as it has free slots
  in those two statements (``claim_many``), not one transaction per action.
* Finishing, renewing and releasing only touch a row still claimed by the caller, so a
  worker that lost its lease can never overwrite the outcome of the one that took over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from vpsorg.actions.models import Action, ActionCommand, ActionStatus
from vpsorg.actions.notifier import CHANNEL
from vpsorg.clock import utcnow
from vpsorg.db import insert_new, table_of
from vpsorg.observability import metrics

UNFINISHED = (ActionStatus.PENDING, ActionStatus.RUNNING)


async def enqueue(
    session: AsyncSession,
    server_id: int,
    account_id: int,
    command: ActionCommand,
    *,
    backup_id: int | None = None,
) -> Action:
    """Queue an action: its row is inserted at once (one statement, no flush), and the
    worker is woken when the transaction commits (``deps.after_commit``)."""
    action = Action(
        server_id=server_id, account_id=account_id, command=command, backup_id=backup_id
    )
    await insert_new(session, action)
    session.info["actions_enqueued"] = True
    return action


def _runnable(now: ColumnElement[datetime] | datetime) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a claimable action (see the module's rules)."""
    older = aliased(Action)
    return (
        or_(
            and_(
                Action.status == ActionStatus.PENDING,
                or_(Action.not_before.is_(None), Action.not_before <= now),
            ),
            and_(Action.status == ActionStatus.RUNNING, Action.lease_until < now),
        ),
        ~exists().where(
            older.server_id == Action.server_id,
            older.id < Action.id,
            older.status.in_(UNFINISHED),
        ),
    )


# Built once: a claim runs hundreds of times a second, and building these statements anew
# (the alias, the operators) cost more CPU than running them.
_NOW = bindparam("now", type_=DateTime())
_ANY_RUNNABLE = select(Action.id).where(*_runnable(_NOW)).limit(1)
_BACKLOG = select(func.count(), func.min(Action.created_at)).where(*_runnable(_NOW))
_CANDIDATES = (
    select(Action.id, Action.status)
    .where(*_runnable(_NOW))
    .order_by(Action.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=Action)
)
_CLAIM = (
    update(Action)
    .where(Action.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=ActionStatus.RUNNING,
        claimed_by=bindparam("holder"),
        lease_until=bindparam("lease_end", type_=DateTime()),
        started_at=func.coalesce(Action.started_at, bindparam("claimed_at", type_=DateTime())),
        attempts=Action.attempts + 1,
        progress=case((Action.progress < 1, 1), else_=Action.progress),
    )
    .returning(Action)
    .execution_options(synchronize_session=False, populate_existing=True)
)


async def any_runnable(session: AsyncSession) -> bool:
    """Whether a claim could find an action now. Only reads, so an idle worker can look
    in a read-only transaction before it claims in a write one (on SQLite, the claim takes
    the database's write lock). A stale answer only delays or wastes one claim."""
    return await session.scalar(_ANY_RUNNABLE, {"now": utcnow()}) is not None


async def runnable_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many actions a claim could take now, and when the oldest of them was created."""
    count, oldest = (await session.execute(_BACKLOG, {"now": utcnow()})).one()
    return int(count), oldest


async def claim_many(
    session: AsyncSession, worker_id: str, lease_seconds: float, limit: int
) -> list[Action]:
    """Claim up to ``limit`` runnable actions, oldest first, in two statements whatever the
    number. Call inside a transaction; the actions are the caller's when it commits."""
    picked = (await session.execute(_CANDIDATES, {"now": utcnow(), "limit": limit})).all()
    if not picked:
        return []
    # The query may have waited for the database's write lock (SQLite): time the claim now,
    # so started_at is never before the finish of the action it waited for.
    now = utcnow()
    expired = sum(1 for row in picked if row.status == ActionStatus.RUNNING)
    if expired:  # their leases ran out: their worker died or stalled
        metrics.LEASE_EXPIRIES.inc(expired)
    claimed = await session.scalars(
        _CLAIM,
        {
            "ids": [row.id for row in picked],
            "holder": worker_id,
            "lease_end": now + timedelta(seconds=lease_seconds),
            "claimed_at": now,
        },
    )
    return sorted(claimed.all(), key=lambda action: action.id)


async def claim(session: AsyncSession, worker_id: str, lease_seconds: float) -> Action | None:
    """Claim the oldest runnable action, or return None. Call inside a transaction."""
    claimed = await claim_many(session, worker_id, lease_seconds, 1)
    return claimed[0] if claimed else None


def _held_by(action_id: int, worker_id: str):  # type: ignore[no-untyped-def]
    return and_(
        Action.id == action_id,
        Action.claimed_by == worker_id,
        Action.status == ActionStatus.RUNNING,
    )


async def renew(
    session: AsyncSession, action_id: int, worker_id: str, lease_seconds: float
) -> bool:
    result = await session.execute(
        update(Action)
        .where(_held_by(action_id, worker_id))
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession,
    action_id: int,
    worker_id: str,
    *,
    error_code: str | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome. False when the caller no longer holds the action.

    On PostgreSQL the same statement notifies long-polling API processes (``pg_notify`` in
    its ``RETURNING``: one round trip, and the notification leaves only if the row changed
    and only when the transaction commits).
    """
    statement = (
        update(Action)
        .where(_held_by(action_id, worker_id))
        .values(
            status=ActionStatus.ERROR if error_code else ActionStatus.SUCCESS,
            progress=100,
            error_code=error_code,
            error=error,
            finished_at=utcnow(),
            lease_until=None,
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        return bool((await session.execute(statement.returning(_notification()))).all())
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


MAX_NOTIFIED_ERROR_BYTES = 4000
"""A finished action's error message up to this size travels in its notification
(PostgreSQL's payload limit is 8000 bytes); a longer one sends only the action's id."""


def _notification() -> ColumnElement[Any]:
    """``pg_notify`` for an action being finished, for its UPDATE's ``RETURNING``: the
    action's row as JSON, so the long-polls it wakes need no read of their own
    (``notifier.action_of``); only its id when the row would not fit."""
    row = cast(func.row_to_json(table_of(Action).table_valued()), String)
    too_long = func.coalesce(func.octet_length(Action.error), 0) > MAX_NOTIFIED_ERROR_BYTES
    return func.pg_notify(CHANNEL, case((too_long, cast(Action.id, String)), else_=row))


async def finish_many(session: AsyncSession, action_ids: Sequence[int], worker_id: str) -> set[int]:
    """Record the success of those of ``action_ids`` the caller still holds, in one statement
    (notifying long-polls on PostgreSQL, as ``finish`` does). Returns their ids."""
    statement = (
        update(Action)
        .where(
            Action.id.in_(list(action_ids)),
            Action.claimed_by == worker_id,
            Action.status == ActionStatus.RUNNING,
        )
        .values(
            status=ActionStatus.SUCCESS,
            progress=100,
            error_code=None,
            error=None,
            finished_at=utcnow(),
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(statement.returning(Action.id, _notification()))
    else:
        rows = await session.execute(statement.returning(Action.id))
    return {row[0] for row in rows}


async def release(
    session: AsyncSession,
    action_id: int,
    worker_id: str,
    *,
    delay: float = 0.0,
    count_attempt: bool = True,
) -> bool:
    """Give the action back to the queue: after a retriable failure (the attempt counts), or
    at shutdown (``count_attempt=False``: being interrupted is not the action's failure)."""
    result = await session.execute(
        update(Action)
        .where(_held_by(action_id, worker_id))
        .values(
            status=ActionStatus.PENDING,
            claimed_by=None,
            lease_until=None,
            not_before=utcnow() + timedelta(seconds=delay) if delay else None,
            attempts=Action.attempts if count_attempt else Action.attempts - 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def holders_on(session: AsyncSession, host: str) -> Sequence[str]:
    """The workers of ``host`` (ids start with ``host:``) holding unexpired leases now."""
    query = (
        select(Action.claimed_by)
        .where(
            Action.status == ActionStatus.RUNNING,
            Action.lease_until >= utcnow(),
            Action.claimed_by.startswith(f"{host}:", autoescape=True),
        )
        .distinct()
    )
    return [holder for holder in (await session.scalars(query)).all() if holder is not None]


async def take_back(session: AsyncSession, dead_worker_id: str) -> int:
    """End the leases of a worker whose process is gone, so the actions are claimable now.

    The next claim counts an attempt, as after an expired lease. Guarded by the holder, so
    an action another worker has claimed meanwhile is left alone. Returns how many.
    """
    result = await session.execute(
        update(Action)
        .where(Action.claimed_by == dead_worker_id, Action.status == ActionStatus.RUNNING)
        .values(lease_until=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
