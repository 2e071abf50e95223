from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.db import Base


class Actor(StrEnum):
    TOKEN = "token"
    """An API request made with a live token of the account."""
    OPERATOR = "operator"
    """A ``vpsorg`` command run by an operator."""
    USER = "user"
    """A change made in the web panel by one of the account's users (``user_id``)."""
    ANONYMOUS = "anonymous"
    """An API request without a live token (refused with 401): no account is named."""


class Outcome(StrEnum):
    SUCCESS = "success"
    REFUSED = "refused"
    ERROR = "error"
    REPLAYED = "replayed"
    """An ``Idempotency-Key`` retry answered with the first request's stored response."""


class AuditEvent(Base):
    """One change, or one refused attempt at one. Kept for good: nothing purges this table.

    Neither request bodies nor tokens are ever stored: a token is named by its id.
    ``action_id`` has no foreign key so that the trail never holds back a cleanup of actions.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"), default=None)
    actor: Mapped[str] = mapped_column(String(16))
    client_address: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(500))
    resource: Mapped[str | None] = mapped_column(String(100), default=None)
    action_id: Mapped[int | None] = mapped_column(Integer, default=None)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """The panel user who made the change (actor ``user``); no foreign key, as ``action_id``."""
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    """The HTTP status; None for a CLI change."""
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
