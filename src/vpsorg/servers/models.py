from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vpsorg.catalog.models import OperatingSystem, Plan
from vpsorg.clock import utcnow
from vpsorg.db import Base
from vpsorg.hosts.models import Host
from vpsorg.locations.models import Location


class ServerStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STARTING = "starting"
    REBOOTING = "rebooting"
    SUSPENDED = "suspended"
    ERROR = "error"
    DELETING = "deleting"
    DELETED = "deleted"


VISIBLE_STATUSES = tuple(
    s for s in ServerStatus if s not in (ServerStatus.DELETING, ServerStatus.DELETED)
)
BUSY_STATUSES = (
    ServerStatus.PROVISIONING,
    ServerStatus.STOPPING,
    ServerStatus.STARTING,
    ServerStatus.REBOOTING,
)


class Server(Base):
    __tablename__ = "servers"
    __table_args__ = (
        Index("ix_servers_account_status", "account_id", "status"),
        # Live servers by id: an account's list, its count and its deep pages (the index alone).
        Index(
            "ix_servers_account_id_id",
            "account_id",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(63))
    hostname: Mapped[str | None] = mapped_column(String(253), default=None)
    status: Mapped[str] = mapped_column(String(16), default=ServerStatus.PROVISIONING)
    location_code: Mapped[str] = mapped_column(ForeignKey("locations.code"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    os_id: Mapped[int] = mapped_column(ForeignKey("operating_systems.id"))
    ssh_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("ssh_keys.id", ondelete="SET NULL"), default=None
    )
    backups_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # When backups were last turned off: its automatic backups go `backup_retention` days later.
    backups_disabled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), default=None, index=True)
    # Billing (see billing/service.py): hours 0 .. billed_hours-1 are charged; the next one
    # starts at next_charge_at (NULL once the server will never pay again). month_paid_micros
    # is what hours starting in month_period ("YYYY-MM") cost, for the monthly cap.
    # refunded_at: the create failed and every charge was given back.
    billed_hours: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_charge_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    month_period: Mapped[str | None] = mapped_column(String(7), default=None)
    month_paid_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Unique among non-NULL values: no address is ever held by two servers at once.
    ipv4_address: Mapped[str | None] = mapped_column(String(45), unique=True, default=None)
    ipv6_address: Mapped[str | None] = mapped_column(String(45), unique=True, default=None)
    provisioned_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    memory_used_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_used_gb: Mapped[int] = mapped_column(Integer, default=0)
    bandwidth_used_gb: Mapped[int] = mapped_column(Integer, default=0)
    # The machine's interface counter (bytes since it booted) at the last sample, and the
    # bytes counted in the current billing period (a calendar month, "YYYY-MM", UTC).
    network_counter_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bandwidth_period_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bandwidth_period: Mapped[str | None] = mapped_column(String(7), default=None)
    usage_sampled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    plan: Mapped[Plan] = relationship(lazy="joined", innerjoin=True)
    os: Mapped[OperatingSystem] = relationship(lazy="joined", innerjoin=True)
    location: Mapped[Location] = relationship(lazy="joined", innerjoin=True)
    host: Mapped[Host | None] = relationship(lazy="joined")

    @property
    def machine_name(self) -> str:
        """The name the hypervisor knows this server by."""
        return machine_name(self.id)


def machine_name(server_id: int) -> str:
    return f"vps-{server_id}"
