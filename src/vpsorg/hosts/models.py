from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base


class Host(Base):
    """A hypervisor host: where servers of one location are placed."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    location_code: Mapped[str] = mapped_column(ForeignKey("locations.code"), index=True)
    uri: Mapped[str] = mapped_column(Text)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    cpu_overcommit: Mapped[float] = mapped_column(Float, default=4.0)
    memory_overcommit: Mapped[float] = mapped_column(Float, default=1.0)
    disk_overcommit: Mapped[float] = mapped_column(Float, default=1.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
