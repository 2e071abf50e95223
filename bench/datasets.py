"""Big accounts for the read and create scenarios, written straight into the database.

Creating 10,000 servers through the API would take minutes; these are inserted in one
transaction with the model's own tables (``vpsorg.servers.models.Server.__table__``, so a
column added there gets its default here too), in seconds. They are what the API would have
made: active, provisioned (their addresses are shown), each with an IPv4 and an IPv6 address
of its location's ranges. The IPv4 addresses come from a /16 that the benchmark adds with the
operator's command (``vpsorg locations add-range``; the seeded /24s hold 253), and each range's
cursor (``next_offset``) is moved past them, so creates made later never collide with them.

- ``one account, 10,000 servers`` (``us-east``, 10.0.0.0/16): the read scenarios. Loaded
  first on a fresh database, so its servers are ids 1..10000 and server 5000 is the middle one.
- ``100 accounts of 100 servers`` (``us-west``, 10.1.0.0/16): the create scenario's callers.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url

from bench.processes import run_cli
from vpsorg.drivers.base import MachineSpec
from vpsorg.drivers.simulator import SimulatorDriver
from vpsorg.servers.models import machine_name

SERVERS_LIMIT = 100_000
CREDITS_MICROS = 10**15  # a billion credits: no create is ever refused for money
PLANS = 6  # the seeded catalog's plans and operating systems, used in turn
SYSTEMS = 7


@dataclass(frozen=True)
class Spec:
    name: str
    accounts: int
    servers_per_account: int
    location: str
    ipv4_range: str


BIG = Spec(
    "10k", accounts=1, servers_per_account=10_000, location="us-east", ipv4_range="10.0.0.0/16"
)
MANY = Spec(
    "100x100", accounts=100, servers_per_account=100, location="us-west", ipv4_range="10.1.0.0/16"
)


@dataclass(frozen=True)
class Dataset:
    spec: Spec
    tokens: list[str]
    """One write token per account, in account order."""
    server_ids: list[list[int]]
    """Each account's servers, by id."""
    seconds: float
    """How long the insert took (not counting the ``add-range`` command)."""


def sync_url(database_url: str) -> str:
    """A SQLAlchemy URL with a synchronous driver (psycopg on PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    else:
        url = url.set(drivername="sqlite")
    return url.render_as_string(hide_password=False)


def load(spec: Spec, database_url: str, env: dict[str, str], workdir: Path) -> Dataset:
    """Add the spec's IPv4 range to its location, insert its accounts and servers, and give
    the simulator their machines (else the worker's reconciler would find every one missing
    and put the server in ``error``)."""
    run_cli(env, workdir, "locations", "add-range", spec.location, spec.ipv4_range)
    started = time.perf_counter()
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            tokens, server_ids = _insert(conn, spec)
            machines = _machine_specs(conn, [i for ids in server_ids for i in ids])
        if engine.dialect.name == "postgresql":
            # As autovacuum would, soon after a bulk load (PostgreSQL 13+ vacuums after
            # inserts too): statistics, and the visibility map that lets a count or a deep
            # page read an index alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    asyncio.run(_build_machines(Path(env["VPSORG_SIMULATOR_STATE_DIR"]), machines))
    return Dataset(spec, tokens, server_ids, time.perf_counter() - started)


def _machine_specs(conn: Connection, server_ids: list[int]) -> list[MachineSpec]:
    """What the worker would have asked the simulator to build for each server."""
    from vpsorg.catalog.models import OperatingSystem, Plan
    from vpsorg.hosts.models import Host
    from vpsorg.servers.models import Server

    servers, plans, systems = Server.__table__, Plan.__table__, OperatingSystem.__table__
    hosts = Host.__table__
    rows = conn.execute(
        select(
            servers.c.id,
            hosts.c.uri,
            servers.c.name,
            servers.c.hostname,
            servers.c.ipv4_address,
            servers.c.ipv6_address,
            plans.c.vcpus,
            plans.c.memory_mb,
            plans.c.storage_gb,
            systems.c.slug,
        )
        .join(plans, plans.c.id == servers.c.plan_id)
        .join(systems, systems.c.id == servers.c.os_id)
        .outerjoin(hosts, hosts.c.id == servers.c.host_id)
        .where(servers.c.id.in_(server_ids))
    )
    return [
        MachineSpec(
            name=machine_name(row.id),
            hostname=row.hostname or row.name,
            vcpus=row.vcpus,
            memory_mb=row.memory_mb,
            disk_gb=row.storage_gb,
            os_slug=row.slug,
            ipv4_address=row.ipv4_address,
            ipv6_address=row.ipv6_address,
            host_uri=row.uri,
        )
        for row in rows
    ]


async def _build_machines(state_dir: Path, specs: list[MachineSpec]) -> None:
    """The first machine through the simulator's own ``create``; the others are its record
    (``state_dir/machines/NAME.json``) and disk with their own spec: the driver's create
    takes a lock and writes four files (about 4 ms a machine), this about a tenth of that."""
    if not specs:
        return
    driver = SimulatorDriver(state_dir, delay=0)
    await driver.probe()
    await driver.create(specs[0])
    machines = state_dir / "machines"
    template = json.loads((machines / f"{specs[0].name}.json").read_text())
    disks = state_dir / "disks"
    for spec in specs[1:]:
        (machines / f"{spec.name}.json").write_text(json.dumps({**template, "spec": asdict(spec)}))
        (disks / f"{spec.name}.disk").write_bytes(f"{spec.name}: a fresh disk\n".encode())


def _insert(conn: Connection, spec: Spec) -> tuple[list[str], list[list[int]]]:
    from vpsorg.accounts.models import Account, CreditEntry
    from vpsorg.auth.models import ApiToken
    from vpsorg.servers.models import Server

    now = datetime.now(UTC).replace(tzinfo=None)
    total = spec.accounts * spec.servers_per_account
    ipv4 = _addresses(conn, spec.location, 4, total)
    ipv6 = _addresses(conn, spec.location, 6, total)
    host_id = _host_of(conn, spec.location)
    tokens: list[str] = []
    server_ids: list[list[int]] = []
    for n in range(spec.accounts):
        account_id = conn.execute(
            insert(Account.__table__).returning(Account.__table__.c.id),
            {
                "name": f"bench-{spec.name}-{n}",
                "balance_micros": CREDITS_MICROS,
                "servers_limit": SERVERS_LIMIT,
                "created_at": now,
            },
        ).scalar_one()
        conn.execute(
            insert(CreditEntry.__table__),
            {
                "account_id": account_id,
                "kind": "topup",
                "amount_micros": CREDITS_MICROS,
                "balance_after_micros": CREDITS_MICROS,
                "memo": "bench dataset",
                "created_at": now,
            },
        )
        token = "vps_" + secrets.token_urlsafe(32)
        conn.execute(
            insert(ApiToken.__table__),
            {
                "account_id": account_id,
                "name": "bench",
                "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                "prefix": token[:10],
                "scope": "write",
                "created_at": now,
            },
        )
        tokens.append(token)
        first = n * spec.servers_per_account
        rows = [
            _server(spec, account_id, i, ipv4[i], ipv6[i], host_id, now)
            for i in range(first, first + spec.servers_per_account)
        ]
        conn.execute(insert(Server.__table__), rows)
        ids = conn.execute(
            select(Server.__table__.c.id)
            .where(Server.__table__.c.account_id == account_id)
            .order_by(Server.__table__.c.id)
        ).scalars()
        server_ids.append(list(ids))
    return tokens, server_ids


def _server(
    spec: Spec,
    account_id: int,
    n: int,
    ipv4: str,
    ipv6: str,
    host_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """An active server as the API leaves it once built, with some usage to show."""
    name = f"bench-{spec.name}-{n:05d}"
    return {
        "account_id": account_id,
        "name": name,
        "hostname": f"{name}.example.com",
        "status": "active",
        "location_code": spec.location,
        "plan_id": n % PLANS + 1,
        "os_id": n % SYSTEMS + 1,
        "backups_enabled": n % 2 == 0,
        "host_id": host_id,
        # The first hour is paid; the next is due in an hour, after the benchmark has ended.
        "billed_hours": 1,
        "next_charge_at": now + timedelta(hours=1),
        "month_period": now.strftime("%Y-%m"),
        "ipv4_address": ipv4,
        "ipv6_address": ipv6,
        "provisioned_at": now,
        "cpu_percent": (n % 1000) / 10,
        "memory_used_mb": n % 4096,
        "disk_used_gb": n % 80,
        "bandwidth_used_gb": n % 2048,
        "created_at": now,
        "updated_at": now,
    }


def _addresses(conn: Connection, location: str, family: int, count: int) -> list[str]:
    """``count`` addresses never handed out, from the location's last range of this family
    (the one the benchmark added, for IPv4); its cursor is moved past them."""
    from vpsorg.locations.models import AddressRange

    ranges = AddressRange.__table__
    row = conn.execute(
        select(ranges.c.id, ranges.c.cidr, ranges.c.gateway, ranges.c.next_offset)
        .where(ranges.c.location_code == location, ranges.c.family == family)
        .order_by(ranges.c.id.desc())
        .limit(1)
    ).one()
    network = ipaddress.ip_network(row.cidr)
    gateway = int(ipaddress.ip_address(row.gateway)) - int(network.network_address)
    offsets = list(_offsets(row.next_offset, gateway, count))
    last = network.num_addresses - (2 if family == 4 else 1)
    if offsets[-1] > last:
        raise ValueError(f"{row.cidr} has fewer than {count} free addresses")
    conn.execute(update(ranges).where(ranges.c.id == row.id).values(next_offset=offsets[-1] + 1))
    return [str(network.network_address + offset) for offset in offsets]


def _offsets(start: int, gateway: int, count: int) -> Iterator[int]:
    offset = max(start, 1)
    while count:
        if offset != gateway:
            yield offset
            count -= 1
        offset += 1


def _host_of(conn: Connection, location: str) -> int | None:
    """An enabled host of the location, if it has any (the simulator needs none)."""
    from vpsorg.hosts.models import Host

    hosts = Host.__table__
    return conn.execute(
        select(hosts.c.id)
        .where(hosts.c.location_code == location, hosts.c.enabled.is_(True))
        .order_by(hosts.c.id)
        .limit(1)
    ).scalar()
