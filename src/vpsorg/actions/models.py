from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class ActionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


class ActionCommand(StrEnum):
    CREATE = "create"
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    DELETE = "delete"
    SUSPEND = "suspend"
    BACKUP = "backup"  # an automatic backup (backups/scheduler.py)
    SNAPSHOT = "snapshot"
    RESTORE = "restore"
    DELETE_BACKUP = "delete_backup"


class Action(Base):
    """One lifecycle operation on a server: the durable work queue's row."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_status_id", "status", "id"),
        Index("ix_actions_server_id_id", "server_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    command: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ActionStatus.PENDING)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # The backup or snapshot a backup, snapshot, restore or delete_backup action is about.
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("backups.id"), default=None)
