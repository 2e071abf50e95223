"""Address ranges and allocation through the HTTP API: ranges fill, grow, free and reuse, and
an allocation costs the same at 0 and at 500 servers."""

from __future__ import annotations

import difflib
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from tests.factories import SERVER
from vpsorg.db import transaction
from vpsorg.errors import InvalidParameters
from vpsorg.locations import service as locations
from vpsorg.locations.models import AddressRange
from vpsorg.servers.models import Server

BODY = {**SERVER, "plan_id": 3, "backups_enabled": False}


@pytest.fixture
def settings(settings):
    """No embedded worker while statements are counted: they are the request's own."""
    return settings.model_copy(update={"embedded_worker": False})


async def add_location(app, code: str, *cidrs: str) -> None:
    async with transaction(app.state.runtime.sessions) as session:
        await locations.add_location(session, code, code.title(), "isolated", None)
        for cidr in cidrs:
            await locations.add_range(session, code, cidr)


async def add_range(app, code: str, cidr: str) -> None:
    async with transaction(app.state.runtime.sessions) as session:
        await locations.add_range(session, code, cidr)


async def create(client, user, location: str, name: str = "web") -> Any:
    body = {**BODY, "location": location, "name": name}
    return await client.post("/api/v1/servers/", json=body, headers=user.headers)


async def addresses(app, server_id: int) -> tuple[str | None, str | None]:
    async with transaction(app.state.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        assert server is not None
        return server.ipv4_address, server.ipv6_address


def record_statements(app) -> list[str]:
    statements: list[str] = []

    @event.listens_for(app.state.runtime.engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    return statements


async def clone_servers(app, factory, template_id: int, count: int, location: str) -> None:
    """``count`` more servers in the location, written directly (the API would take minutes),
    holding the next addresses of its ranges as the allocator would have handed them out,
    owned by another account (whose servers limit they ignore)."""
    owner = await factory.account()
    async with transaction(app.state.runtime.sessions) as session:
        row = (
            (await session.execute(select(Server.__table__).where(Server.id == template_id)))
            .mappings()
            .one()
        )
        ranges = {r.family: r for r in await locations.repository.ranges_of(session, location)}
        v4, v6 = locations.shape(ranges[4]), locations.shape(ranges[6])
        start = ranges[4].next_offset
        rows = [
            {**row, "id": None, "account_id": owner.account_id, "name": f"clone-{n}", "ipv4_address": v4.address(start + n),
             "ipv6_address": v6.address(start + n)}
            for n in range(count)
        ]  # fmt: skip
        for values in rows:
            values.pop("id")
        await session.execute(insert(Server.__table__), rows)
        await session.execute(
            update(AddressRange)
            .where(AddressRange.location_code == location)
            .values(next_offset=start + count)
        )


async def test_allocation_costs_the_same_at_0_and_at_500_servers(app, client, user, factory):
    await add_location(app, "lab", "10.20.0.0/16", "fd00:20::/64")
    statements = record_statements(app)

    first = await create(client, user, "lab", "first")
    at_zero = list(statements)
    await clone_servers(app, factory, first.json()["id"], 500, "lab")
    statements.clear()
    later = await create(client, user, "lab", "later")
    at_500 = list(statements)

    assert first.status_code == later.status_code == 201, later.text
    assert await addresses(app, first.json()["id"]) == ("10.20.0.2", "fd00:20::2")
    assert await addresses(app, later.json()["id"]) == ("10.20.1.247", "fd00:20::1f7")
    # The allocator's statements (the location's ranges with their lowest released offsets,
    # per family the cursor's UPDATE; no lock, as nothing was given back) are the same SQL at
    # 0 and at 500 servers...
    assert allocation(at_500) == allocation(at_zero), "\n".join(
        difflib.unified_diff(allocation(at_zero), allocation(at_500), lineterm="")
    )
    assert len(allocation(at_500)) == 3, allocation(at_500)
    # ...and nothing in the create reads the location's servers (the scan this replaced).
    assert not [s for s in at_500 if "servers.location_code = " in s.partition("WHERE")[2]]


def allocation(statements: list[str]) -> list[str]:
    return [
        s
        for s in statements
        if "address_ranges" in s or "released_addresses" in s or "FROM locations" in s
    ]


async def test_a_full_location_grows_by_adding_a_range(app, client, user, factory):
    # A /29: 6 host addresses, one the gateway, so 5 servers.
    await add_location(app, "small", "10.30.0.0/29", "fd00:30::/64")
    created = [await create(client, user, "small", f"s{n}") for n in range(5)]
    assert [c.status_code for c in created] == [201] * 5
    held = [(await addresses(app, c.json()["id"]))[0] for c in created]
    assert held == [f"10.30.0.{n}" for n in range(2, 7)]

    refused = await create(client, user, "small", "s5")
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "capacity_unavailable"

    await add_range(app, "small", "10.30.1.0/29")
    grown = await create(client, user, "small", "s5")
    assert grown.status_code == 201, grown.text
    assert (await addresses(app, grown.json()["id"]))[0] == "10.30.1.2"


async def test_a_24_full_after_253_servers_continues_in_a_second_range(app, client, user, factory):
    await add_location(app, "big", "10.40.0.0/24", "fd00:40::/64")
    first = await create(client, user, "big", "first")
    await clone_servers(
        app, factory, first.json()["id"], 252, "big"
    )  # 253 servers: the /24 is full

    refused = await create(client, user, "big", "over")
    await add_range(app, "big", "10.40.1.0/24")
    grown = await create(client, user, "big", "over")

    assert refused.status_code == 503
    assert grown.status_code == 201, grown.text
    assert (await addresses(app, grown.json()["id"]))[0] == "10.40.1.2"


@pytest.mark.parametrize(
    ("cidr", "gateway", "error"),
    [
        ("10.60.0.1/24", None, "host bits set"),
        ("10.60.0.0/31", None, "too small"),
        ("10.60.0.0/24", "10.60.0.255", "not a host address"),
        ("10.60.0.0/24", "10.61.0.1", "not a host address"),
        ("fd00:60::/64", "fd00:61::1", "not a host address"),
    ],
)
async def test_add_range_refuses_what_cannot_work(app, cidr, gateway, error):
    await add_location(app, "lab")
    async with transaction(app.state.runtime.sessions) as session:
        with pytest.raises(InvalidParameters, match=error):
            await locations.add_range(session, "lab", cidr, gateway)


@pytest.mark.parametrize(
    ("code", "mode", "network", "error"),
    [
        ("Bad_Code", "nat", None, "Invalid location code"),
        ("new", "magic", None, "Unknown network mode"),
        ("new", "network", None, "needs --network-name"),
        ("new", "bridge", "a-bridge-name-too-long", "15 characters"),
        ("us-west", "nat", None, "already exists"),
    ],
)
async def test_add_location_refuses_what_cannot_work(app, code, mode, network, error):
    async with transaction(app.state.runtime.sessions) as session:
        with pytest.raises(InvalidParameters, match=error):
            await locations.add_location(session, code, "Name", mode, network)


async def test_a_gateway_inside_the_range_is_skipped_by_the_cursor(app, client, user):
    await add_location(app, "gw")
    async with transaction(app.state.runtime.sessions) as session:
        await locations.add_range(session, "gw", "10.70.0.0/29", "10.70.0.3")
    created = [await create(client, user, "gw", f"g{n}") for n in range(5)]

    held = [(await addresses(app, c.json()["id"]))[0] for c in created if c.status_code == 201]
    assert held == ["10.70.0.1", "10.70.0.2", "10.70.0.4", "10.70.0.5", "10.70.0.6"]
    assert (await addresses(app, created[0].json()["id"]))[1] is None  # no IPv6 range: none
