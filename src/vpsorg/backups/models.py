from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class BackupKind(StrEnum):
    BACKUP = "backup"  # automatic, on the server's schedule (paid by the backups surcharge)
    SNAPSHOT = "snapshot"  # on demand, paid per GB-hour


class BackupStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    ERROR = "error"


class Backup(Base):
    """A copy of a server's disk, kept on its host in the backup pool as ``volume``.

    A deleted one keeps its row (``deleted_at``, hidden from the API) for its charges;
    a ``delete_backup`` action removes the volume. Snapshots pay each hour that starts
    while they are available (``next_charge_at``, as servers do; see billing/service.py).
    """

    __tablename__ = "backups"
    __table_args__ = (Index("ix_backups_server_kind_created", "server_id", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16), default=BackupStatus.CREATING)
    volume: Mapped[str] = mapped_column(String(128), default="")
    size_gb: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What one GB of it costs per hour, fixed when it is taken (0: automatic backups).
    price_gb_hour_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    billed_hours: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_charge_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    available_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


def volume_name(server_id: int, backup_id: int, created_at: datetime) -> str:
    """The copy's name on the host: stable across retries, never reused by a new database."""
    return f"vps-{server_id}-backup-{backup_id}-{created_at:%Y%m%dT%H%M%S}"
