"""Users and their panel sessions: passwords checked, sessions started, found and ended.

Services decide; they never commit (the caller owns the transaction).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.clock import utcnow
from vpsorg.config import Settings
from vpsorg.errors import Conflict, InvalidParameters, NotFound
from vpsorg.users import passwords, repository
from vpsorg.users.models import PanelSession, PanelSubmission, User

EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
TOUCH_EVERY = timedelta(minutes=1)
"""A session's idle expiry moves on at most this often: one write a minute per busy browser."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _check_email(email: str) -> None:
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidParameters.field("email", "Not an email address such as ana@example.com.")


def _check_password(password: str, field: str = "password") -> None:
    problem = passwords.password_problem(password)
    if problem is not None:
        raise InvalidParameters.field(field, problem)


async def create_user(session: AsyncSession, account_id: int, email: str, password: str) -> User:
    email = normalize_email(email)
    _check_email(email)
    _check_password(password)
    if await session.get(Account, account_id) is None:
        raise NotFound(f"Account {account_id} not found.")
    if await repository.get_by_email(session, email) is not None:
        raise Conflict(f"A user with the email {email} exists.", {"email": ["Already in use."]})
    user = User(
        account_id=account_id,
        email=email,
        password_hash=passwords.hash_password(password),
        created_at=utcnow(),
    )
    repository.add(session, user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, email: str) -> User:
    user = await repository.get_by_email(session, normalize_email(email))
    if user is None:
        raise NotFound(f"No user with the email {normalize_email(email)}.")
    return user


async def set_password(session: AsyncSession, email: str, password: str) -> User:
    """The operator's reset: a new password, and every session of the user ends."""
    _check_password(password)
    user = await get_user(session, email)
    user.password_hash = passwords.hash_password(password)
    await repository.delete_sessions_of(session, user.id)
    await session.flush()
    return user


async def disable_user(session: AsyncSession, email: str) -> User:
    """No more logins, and every session ends at once."""
    user = await get_user(session, email)
    user.disabled = True
    await repository.delete_sessions_of(session, user.id)
    await session.flush()
    return user


async def change_own_password(
    session: AsyncSession, user: User, current: str, new: str, panel_session_id: int
) -> None:
    """A user's own change: the current password is asked for; other sessions end."""
    if not passwords.verify_password(user.password_hash, current):
        raise InvalidParameters.field("current_password", "The current password is wrong.")
    _check_password(new, "new_password")
    user.password_hash = passwords.hash_password(new)
    await repository.delete_sessions_of(session, user.id, keep_session_id=panel_session_id)
    await session.flush()


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The enabled user with this email and password, or None (the same time either way)."""
    user = await repository.get_by_email(session, normalize_email(email))
    if user is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)
        return None
    if not passwords.verify_password(user.password_hash, password) or user.disabled:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


async def start_session(session: AsyncSession, user: User, settings: Settings) -> str:
    """A new session for the user (expired ones of anybody are swept); returns the cookie's
    value, the only copy of the session's id."""
    now = utcnow()
    await repository.purge_expired_sessions(session, now)
    raw = secrets.token_urlsafe(32)
    repository.add(
        session,
        PanelSession(
            id_hash=hash_secret(raw),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            idle_expires_at=now + timedelta(minutes=settings.panel_session_idle_minutes),
            expires_at=now + timedelta(hours=settings.panel_session_max_hours),
        ),
    )
    user.last_login_at = now
    await session.flush()
    return raw


@dataclass(frozen=True)
class LiveSession:
    """A logged-in request: the session, its user and the account the user acts for."""

    session: PanelSession
    user: User
    account: Account

    def due_for_touch(self, now: datetime) -> bool:
        return now - self.session.last_seen_at >= TOUCH_EVERY


async def find_session(session: AsyncSession, raw: str) -> LiveSession | None:
    if not raw or len(raw) > 100:
        return None
    found = await repository.find_live_session(session, hash_secret(raw), utcnow())
    return None if found is None else LiveSession(*found)


async def touch_session(
    session: AsyncSession, live: LiveSession, settings: Settings, now: datetime
) -> None:
    idle = now + timedelta(minutes=settings.panel_session_idle_minutes)
    await repository.touch_session(session, live.session.id, now, idle)


async def end_session(session: AsyncSession, raw: str) -> None:
    await repository.delete_session(session, hash_secret(raw))


async def previous_submission(session: AsyncSession, form_token: str) -> PanelSubmission | None:
    return await repository.find_submission(session, hash_secret(form_token))


async def claim_submission(
    session: AsyncSession, panel_session_id: int, form_token: str
) -> PanelSubmission:
    """Record the form's submit. A concurrent submit of the same form fails here, on the
    unique token, before it changes anything (its transaction waits for this one's)."""
    row = PanelSubmission(
        session_id=panel_session_id, token_hash=hash_secret(form_token), created_at=utcnow()
    )
    repository.add(session, row)
    await session.flush()
    return row
