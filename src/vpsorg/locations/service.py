"""Locations, their address ranges and how their guests meet the network. Services decide;
they never commit (the caller owns the transaction)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.catalog.schemas import LOCATION_CODE
from vpsorg.drivers.base import NetworkAttachment, NetworkMode
from vpsorg.errors import InvalidParameters, NotFound
from vpsorg.locations import repository
from vpsorg.locations.ipam import Shape, shape
from vpsorg.locations.models import AddressRange, Location

# A Linux interface or libvirt network name: what `ip link` and libvirt both accept.
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_BRIDGE_NAME_MAX = 15  # IFNAMSIZ - 1


def vpsorg_network_name(code: str) -> str:
    return f"vpsorg-{code}"


def network_name(location: Location) -> str:
    """The bridge or libvirt network a location's guests attach to."""
    mode = NetworkMode(location.network_mode)
    if location.network_name:
        return location.network_name
    return vpsorg_network_name(location.code) if mode.made_by_vpsorg else ""


def network_attachment(location: Location, ranges: Sequence[AddressRange]) -> NetworkAttachment:
    """What the driver needs to plug a guest of this location in."""
    mode = NetworkMode(location.network_mode)
    gateways: tuple[str, ...] = ()
    if mode.made_by_vpsorg:
        gateways = tuple(f"{r.gateway}/{shape(r).network.prefixlen}" for r in ranges)
    return NetworkAttachment(mode, network_name(location), gateways)


async def get_location(session: AsyncSession, code: str) -> Location:
    location = await repository.get(session, code)
    if location is None:
        raise NotFound(f"Location '{code}' not found.")
    return location


async def add_location(
    session: AsyncSession, code: str, name: str, mode: str, network: str | None
) -> Location:
    if not LOCATION_CODE.fullmatch(code) or len(code) > 32:
        raise InvalidParameters(f"Invalid location code '{code}': use a-z, 0-9 and '-'.")
    if await repository.get(session, code) is not None:
        raise InvalidParameters(f"Location '{code}' already exists.")
    location = Location(code=code, name=_checked_name(name), available=True)
    _set_network(location, mode, network)
    session.add(location)
    await session.flush()
    return location


async def update_location(
    session: AsyncSession,
    code: str,
    *,
    name: str | None = None,
    mode: str | None = None,
    network: str | None = None,
    available: bool | None = None,
) -> Location:
    location = await get_location(session, code)
    if name is not None:
        location.name = _checked_name(name)
    if mode is not None or network is not None:
        _set_network(
            location,
            mode or location.network_mode,
            network if network is not None else location.network_name,
        )
    if available is not None:
        location.available = available
    await session.flush()
    return location


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidParameters("A location's name is 1 to 100 characters.")
    return name


def _set_network(location: Location, mode: str, network: str | None) -> None:
    try:
        chosen = NetworkMode(mode)
    except ValueError:
        known = ", ".join(m.value for m in NetworkMode)
        raise InvalidParameters(f"Unknown network mode '{mode}': use one of {known}.") from None
    network = network or None
    if network is None and not chosen.made_by_vpsorg:
        raise InvalidParameters(f"Mode '{chosen}' needs --network-name (the existing {chosen}).")
    if network is not None and not _NETWORK_NAME.fullmatch(network):
        raise InvalidParameters(f"Invalid network name '{network}'.")
    if network is not None and chosen == NetworkMode.BRIDGE and len(network) > _BRIDGE_NAME_MAX:
        raise InvalidParameters(f"Invalid bridge name '{network}': 15 characters at most.")
    location.network_mode = chosen.value
    location.network_name = network


async def add_range(
    session: AsyncSession, code: str, cidr: str, gateway: str | None = None
) -> AddressRange:
    """Add an IPv4 or IPv6 range to a location; its gateway defaults to the first host.

    Ranges never overlap, in one location or across locations: an address belongs to one
    range, so it can never be handed out twice.
    """
    location = await get_location(session, code)
    await repository.lock(session, location.code)
    network = _parse_network(cidr)
    gateway_address = _parse_gateway(network, gateway)
    for existing in await repository.all_ranges(session):
        other = ipaddress.ip_network(existing.cidr)
        if other.version == network.version and other.overlaps(network):
            raise InvalidParameters(
                f"Range {network} overlaps {other} of location '{existing.location_code}'."
            )
    address_range = AddressRange(
        location_code=location.code,
        family=network.version,
        cidr=str(network),
        gateway=str(gateway_address),
        next_offset=1,
    )
    session.add(address_range)
    await session.flush()
    return address_range


def _parse_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise InvalidParameters(f"Invalid range '{cidr}': {exc}.") from None
    smallest = 30 if network.version == 4 else 126
    if network.prefixlen > smallest:
        raise InvalidParameters(
            f"Range {network} is too small: a range holds a gateway and servers (/{smallest} "
            "at most)."
        )
    return network


def _parse_gateway(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway: str | None
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if gateway is None:
        return ipaddress.ip_address(str(next(network.hosts())))
    try:
        address = ipaddress.ip_address(gateway)
    except ValueError:
        raise InvalidParameters(f"Invalid gateway '{gateway}'.") from None
    offset = Shape(network, 0).offset(str(address))
    if offset is None or not Shape(network, 0).first <= offset <= Shape(network, 0).last:
        raise InvalidParameters(f"Gateway {address} is not a host address of {network}.")
    return address


@dataclass(frozen=True)
class RangeUsage:
    address_range: AddressRange
    used: int
    free: int


@dataclass(frozen=True)
class LocationSummary:
    location: Location
    network: str
    ranges: list[RangeUsage]


async def summaries(session: AsyncSession) -> list[LocationSummary]:
    """Every location with its ranges and how many addresses each has used and free."""
    released = await repository.released_counts(session)
    by_location: dict[str, list[RangeUsage]] = {}
    for address_range in await repository.all_ranges(session):
        form = shape(address_range)
        used = form.handed_out(address_range.next_offset) - released.get(address_range.id, 0)
        usage = RangeUsage(address_range, used, form.capacity - used)
        by_location.setdefault(address_range.location_code, []).append(usage)
    return [
        LocationSummary(location, network_name(location), by_location.get(location.code, []))
        for location in await repository.list_all(session)
    ]
