from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class User(Base):
    """A person who logs in to the panel and acts for one account. Only an argon2id hash of
    the password is stored; a disabled user can't log in and loses every session."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    """Stored in lower case: logins compare it as typed, case-insensitively."""
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class PanelSession(Base):
    """A logged-in browser. The cookie holds a random id; only its SHA-256 is stored, so a
    copy of the table logs nobody in. It ends at ``idle_expires_at`` (moved on by use) or at
    ``expires_at`` (fixed at login), whichever comes first, or at logout."""

    __tablename__ = "panel_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    idle_expires_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class PanelSubmission(Base):
    """A form submit of a session, by the one-time token its form was rendered with, and
    where its result is shown: a second submit of the same form is sent there instead of
    doing the change again (a double click never creates two servers)."""

    __tablename__ = "panel_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("panel_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    result_path: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
