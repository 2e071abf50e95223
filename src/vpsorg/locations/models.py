from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpsorg.clock import utcnow
from vpsorg.db import Base
from vpsorg.drivers.base import NetworkMode


class Location(Base):
    __tablename__ = "locations"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    # How guests meet the network (drivers.base.NetworkMode). network_name is the host bridge
    # or libvirt network; for the modes vpsorg makes, None means ``vpsorg-<code>``.
    network_mode: Mapped[str] = mapped_column(
        String(16), default=NetworkMode.NAT, server_default=NetworkMode.NAT.value
    )
    network_name: Mapped[str | None] = mapped_column(String(64), default=None)


class AddressRange(Base):
    """One IPv4 or IPv6 range of a location, with its gateway.

    Addresses are handed out by *offset* from the network address: ``next_offset`` is the
    first offset never handed out, and offsets given back by deleted servers wait in
    ``released_addresses``, reused first. So an allocation reads one range row and at most
    one released row, however many servers the location has.
    """

    __tablename__ = "address_ranges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_code: Mapped[str] = mapped_column(ForeignKey("locations.code"), index=True)
    family: Mapped[int] = mapped_column(Integer)  # 4 or 6
    cidr: Mapped[str] = mapped_column(String(64), unique=True)
    gateway: Mapped[str] = mapped_column(String(64))
    next_offset: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReleasedAddress(Base):
    """An offset of a range that was handed out and given back: free to reuse."""

    __tablename__ = "released_addresses"

    range_id: Mapped[int] = mapped_column(
        ForeignKey("address_ranges.id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
