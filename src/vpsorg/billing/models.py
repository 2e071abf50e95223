from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class ServerCharge(Base):
    """One charged server-hour. The unique key makes each hour chargeable exactly once."""

    __tablename__ = "server_charges"
    __table_args__ = (UniqueConstraint("server_id", "hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    hour: Mapped[int] = mapped_column(Integer)  # the server's billing hours counted from 0
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # 0 past the monthly cap
    credit_entry_id: Mapped[int | None] = mapped_column(ForeignKey("credit_entries.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SnapshotCharge(Base):
    """One charged snapshot-hour; the unique key makes each hour chargeable exactly once."""

    __tablename__ = "snapshot_charges"
    __table_args__ = (UniqueConstraint("backup_id", "hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backup_id: Mapped[int] = mapped_column(ForeignKey("backups.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    hour: Mapped[int] = mapped_column(Integer)  # the snapshot's billing hours counted from 0
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    size_gb: Mapped[int] = mapped_column(Integer)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    credit_entry_id: Mapped[int | None] = mapped_column(ForeignKey("credit_entries.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
