from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class TokenScope(StrEnum):
    READ = "read"  # GET and HEAD only; any change is 403 insufficient_scope
    WRITE = "write"  # everything the account may do


class ApiToken(Base):
    """A Bearer token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8), default=TokenScope.WRITE, server_default="write")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Moved on at most once a minute, outside the request's transaction (GETs stay read-only).
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
