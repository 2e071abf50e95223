"""User and panel-session queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.users.models import PanelSession, PanelSubmission, User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.id))).all()


def add(session: AsyncSession, row: User | PanelSession | PanelSubmission) -> None:
    session.add(row)


async def find_live_session(
    session: AsyncSession, id_hash: str, now: datetime
) -> tuple[PanelSession, User, Account] | None:
    """The session, its user and the user's account, if the session is live and the user
    enabled; one query, as every panel request asks it."""
    row = (
        await session.execute(
            select(PanelSession, User, Account)
            .join(User, User.id == PanelSession.user_id)
            .join(Account, Account.id == User.account_id)
            .where(
                PanelSession.id_hash == id_hash,
                PanelSession.idle_expires_at > now,
                PanelSession.expires_at > now,
                User.disabled.is_(False),
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def touch_session(
    session: AsyncSession, session_id: int, now: datetime, idle_expires_at: datetime
) -> None:
    await session.execute(
        update(PanelSession)
        .where(PanelSession.id == session_id)
        .values(last_seen_at=now, idle_expires_at=idle_expires_at)
    )


async def delete_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(PanelSession).where(PanelSession.id_hash == id_hash))


async def delete_sessions_of(
    session: AsyncSession, user_id: int, keep_session_id: int | None = None
) -> None:
    condition = [PanelSession.user_id == user_id]
    if keep_session_id is not None:
        condition.append(PanelSession.id != keep_session_id)
    await _delete_sessions(session, *condition)


async def purge_expired_sessions(session: AsyncSession, now: datetime) -> None:
    expired = (PanelSession.idle_expires_at <= now) | (PanelSession.expires_at <= now)
    await _delete_sessions(session, expired)


async def _delete_sessions(session: AsyncSession, *condition: object) -> None:
    # Submissions first: SQLite's ON DELETE CASCADE needs foreign keys on, which migrations
    # and some tools turn off.
    ids = select(PanelSession.id).where(*condition)  # type: ignore[arg-type]
    await session.execute(delete(PanelSubmission).where(PanelSubmission.session_id.in_(ids)))
    await session.execute(delete(PanelSession).where(*condition))  # type: ignore[arg-type]


async def find_submission(session: AsyncSession, token_hash: str) -> PanelSubmission | None:
    return await session.scalar(
        select(PanelSubmission).where(PanelSubmission.token_hash == token_hash)
    )
