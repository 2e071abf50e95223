"""The same-work reference: vpsorg's two server reads, hand-written on Starlette, asyncpg, orjson.

Run as ``python -m bench.same_work --port N --db URL``. It does what vpsorg does for
``GET /api/v1/servers/{id}/`` and ``GET /api/v1/servers/?page=&per_page=``, and nothing else:

- the Bearer token: its shape, its SHA-256 looked up with the account in one query, not revoked,
  not expired (``auth.tokens.find_credential``; GETs don't check suspension there either);
- in one read-only transaction (vpsorg's GETs run ``BEGIN READ ONLY`` on PostgreSQL): the
  caller's server, not deleted, joined with its plan and OS (``servers.repository.get_owned``);
  or the count of the caller's servers and one page of them by id (``list_owned``);
- the bodies of ``ServerDetail`` and ``ServerList``, byte for byte (the benchmark compares the
  two servers' bodies before measuring), with absolute ``next`` (carrying the cursor after the
  page's last server) and ``previous`` links.

It stays the plain hand-written way: a read-only transaction and a statement per step (four
round trips for a server, five for a page). vpsorg now reads a server in one statement with
the token check joined in, and a page's count and rows in one, outside any transaction: that
is part of what it does better, not a difference in the work (the same rows, the same checks).

What vpsorg costs beyond this app is what its framework, ORM and middleware add. On SQLite it
reads through aiosqlite, a few connections in a queue; the figures to quote are PostgreSQL's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.reference_app import GRACEFUL_SHUTDOWN_SECONDS, LOG_LEVEL

TOKEN_PATTERN = re.compile(r"vps_[A-Za-z0-9_-]{43}")
CANONICAL_ID = re.compile(r"[1-9][0-9]{0,9}")
MAX_ID = 2**31 - 1
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200
POOL_SIZE = 10  # vpsorg's PostgreSQL pool (db.create_engine)
SQLITE_CONNECTIONS = 4
RUNNING_STATUSES = frozenset({"active", "rebooting", "stopping"})

_CREDENTIAL = """
SELECT a.id FROM accounts a JOIN api_tokens t ON t.account_id = a.id
WHERE t.token_hash = {0} AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > {1})
"""
_COLUMNS = """
s.id, s.name, s.hostname, s.status, s.ipv4_address, s.ipv6_address, s.provisioned_at,
s.location_code, s.backups_enabled, s.cpu_percent, s.memory_used_mb, s.disk_used_gb,
s.bandwidth_used_gb, s.created_at, s.updated_at,
p.id AS plan_id, p.name AS plan_name, p.vcpus, p.memory_mb, p.storage_gb, p.bandwidth_gb,
o.id AS os_id, o.name AS os_name
FROM servers s JOIN plans p ON p.id = s.plan_id JOIN operating_systems o ON o.id = s.os_id
"""
_SERVER = f"SELECT {_COLUMNS} WHERE s.id = {{0}} AND s.account_id = {{1}} AND s.deleted_at IS NULL"
_COUNT = "SELECT count(*) FROM servers WHERE account_id = {0} AND deleted_at IS NULL"
_PAGE = (
    f"SELECT {_COLUMNS} WHERE s.account_id = {{0}} AND s.deleted_at IS NULL "
    "ORDER BY s.id LIMIT {1} OFFSET {2}"
)

Row = Mapping[str, Any]


class Reads(Protocol):
    """One read-only transaction's queries."""

    async def account_of(self, token_hash: str, now: datetime) -> int | None: ...
    async def server(self, account_id: int, server_id: int) -> Row | None: ...
    async def count(self, account_id: int) -> int: ...
    async def page(self, account_id: int, offset: int, limit: int) -> Sequence[Row]: ...


class Store(Protocol):
    def transaction(self) -> Any: ...  # an async context manager yielding Reads
    async def close(self) -> None: ...


# -- PostgreSQL: asyncpg ------------------------------------------------------------------


class PostgresReads:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def account_of(self, token_hash: str, now: datetime) -> int | None:
        value = await self.conn.fetchval(_CREDENTIAL.format("$1", "$2"), token_hash, now)
        return None if value is None else int(value)

    async def server(self, account_id: int, server_id: int) -> Row | None:
        row: Row | None = await self.conn.fetchrow(
            _SERVER.format("$1", "$2"), server_id, account_id
        )
        return row

    async def count(self, account_id: int) -> int:
        return int(await self.conn.fetchval(_COUNT.format("$1"), account_id))

    async def page(self, account_id: int, offset: int, limit: int) -> Sequence[Row]:
        rows: Sequence[Row] = await self.conn.fetch(
            _PAGE.format("$1", "$2", "$3"), account_id, limit, offset
        )
        return rows


class PostgresStore:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        import asyncpg

        dsn = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Reads]:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            yield PostgresReads(conn)

    async def close(self) -> None:
        await self.pool.close()


# -- SQLite: aiosqlite --------------------------------------------------------------------


def _sqlite_value(key: str, value: Any) -> Any:
    if isinstance(value, str) and key in ("provisioned_at", "created_at", "updated_at"):
        return datetime.fromisoformat(value)
    if key == "backups_enabled":
        return bool(value)
    return value


def _sqlite_row(row: Any) -> Row:
    return {key: _sqlite_value(key, row[key]) for key in row.keys()}  # noqa: SIM118


class SqliteReads:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def account_of(self, token_hash: str, now: datetime) -> int | None:
        query = _CREDENTIAL.format("?", "?")
        # SQLAlchemy stores DateTime on SQLite as text in this shape, so text order is time order.
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        async with self.conn.execute(query, (token_hash, stamp)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def server(self, account_id: int, server_id: int) -> Row | None:
        async with self.conn.execute(_SERVER.format("?", "?"), (server_id, account_id)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _sqlite_row(row)

    async def count(self, account_id: int) -> int:
        async with self.conn.execute(_COUNT.format("?"), (account_id,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def page(self, account_id: int, offset: int, limit: int) -> Sequence[Row]:
        query = _PAGE.format("?", "?", "?")
        async with self.conn.execute(query, (account_id, limit, offset)) as cursor:
            return [_sqlite_row(row) for row in await cursor.fetchall()]


class SqliteStore:
    def __init__(self, connections: asyncio.Queue[Any]) -> None:
        self.connections = connections

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        import aiosqlite

        connections: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(SQLITE_CONNECTIONS):
            conn = await aiosqlite.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            conn.row_factory = aiosqlite.Row
            connections.put_nowait(conn)
        return cls(connections)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Reads]:
        conn = await self.connections.get()
        try:
            await conn.execute("BEGIN")
            try:
                yield SqliteReads(conn)
            finally:
                await conn.execute("COMMIT")
        finally:
            self.connections.put_nowait(conn)

    async def close(self) -> None:
        while not self.connections.empty():
            await self.connections.get_nowait().close()


# -- the bodies ---------------------------------------------------------------------------


def _timestamp(value: datetime) -> str:
    return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _shown(row: Row, address: str | None) -> str | None:
    return address if row["provisioned_at"] is not None else None


def summary(row: Row) -> dict[str, Any]:
    """``ServerSummary.from_server``."""
    return {
        "id": row["id"],
        "name": row["name"],
        "hostname": row["hostname"],
        "status": row["status"],
        "ip_address": _shown(row, row["ipv4_address"]),
        "location": row["location_code"],
        "plan": {
            "id": row["plan_id"],
            "name": row["plan_name"],
            "vcpus": row["vcpus"],
            "memory": row["memory_mb"],
            "storage": row["storage_gb"],
        },
        "os": {"id": row["os_id"], "name": row["os_name"]},
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
    }


def detail(row: Row) -> dict[str, Any]:
    """``ServerDetail.from_server``."""
    running = row["status"] in RUNNING_STATUSES
    return {
        "id": row["id"],
        "name": row["name"],
        "hostname": row["hostname"],
        "status": row["status"],
        "ip_address": _shown(row, row["ipv4_address"]),
        "ipv6_address": _shown(row, row["ipv6_address"]),
        "location": row["location_code"],
        "plan": {
            "id": row["plan_id"],
            "name": row["plan_name"],
            "vcpus": row["vcpus"],
            "memory": row["memory_mb"],
            "storage": row["storage_gb"],
            "bandwidth": row["bandwidth_gb"],
        },
        "os": {"id": row["os_id"], "name": row["os_name"]},
        "backups_enabled": row["backups_enabled"],
        "resource_usage": {
            "cpu_percent": float(row["cpu_percent"]) if running else 0.0,
            "memory_used": row["memory_used_mb"] if running else 0,
            "disk_used": row["disk_used_gb"],
            "bandwidth_used": row["bandwidth_used_gb"],
        },
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
    }


def _cursor(last_id: int) -> str:
    """``servers.schemas.encode_cursor``."""
    return base64.urlsafe_b64encode(b"servers.after:%d" % last_id).decode().rstrip("=")


def page_links(
    request: Request, page: int, per_page: int, total: int, last_id: int | None
) -> tuple[Any, Any]:
    """``servers.endpoints._list_link`` without ``public_url`` (the benchmark does not set
    it): ``next`` carries a cursor after the page's last server, ``previous`` a page number."""
    last_page = max(1, -(-total // per_page))

    def link(number: int, after_id: int | None = None) -> str:
        url = request.url.remove_query_params("cursor")
        url = url.include_query_params(page=number, per_page=per_page)
        if after_id is not None:
            url = url.include_query_params(cursor=_cursor(after_id))
        return str(url)

    more = page < last_page and last_id is not None
    next_url = link(page + 1, last_id) if more else None
    previous_url = link(min(page - 1, last_page)) if page > 1 else None
    return next_url, previous_url


# -- the app ------------------------------------------------------------------------------


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def _error(status: int, code: str, detail: str) -> Response:
    return _json({"detail": detail, "code": code, "errors": {}}, status)


def _token_hash(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not TOKEN_PATTERN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode()).hexdigest()


def _int_param(request: Request, name: str, default: int, largest: int) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    return int(text) if CANONICAL_ID.fullmatch(text) and int(text) <= largest else None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


UNAUTHENTICATED = ("not_authenticated", "Invalid, expired or revoked API token.")


async def get_server(request: Request) -> Response:
    token_hash = _token_hash(request)
    text = request.path_params["server_id"]
    server_id = int(text) if CANONICAL_ID.fullmatch(text) else 0
    store: Store = request.app.state.store
    async with store.transaction() as reads:
        account_id = None if token_hash is None else await reads.account_of(token_hash, _now())
        if account_id is None:
            return _error(401, *UNAUTHENTICATED)
        row = await reads.server(account_id, server_id) if 0 < server_id <= MAX_ID else None
    if row is None:
        return _error(404, "not_found", f"Server {text} not found.")
    return _json(detail(row))


async def list_servers(request: Request) -> Response:
    token_hash = _token_hash(request)
    page = _int_param(request, "page", 1, MAX_PAGE)
    per_page = _int_param(request, "per_page", 50, MAX_PER_PAGE)
    store: Store = request.app.state.store
    async with store.transaction() as reads:
        account_id = None if token_hash is None else await reads.account_of(token_hash, _now())
        if account_id is None:
            return _error(401, *UNAUTHENTICATED)
        if page is None or per_page is None:
            return _error(400, "invalid_parameters", "Invalid query parameters.")
        total = await reads.count(account_id)
        rows = await reads.page(account_id, (page - 1) * per_page, per_page)
    last_id = rows[-1]["id"] if rows else None
    next_url, previous_url = page_links(request, page, per_page, total, last_id)
    results = [summary(row) for row in rows]
    return _json({"count": total, "next": next_url, "previous": previous_url, "results": results})


async def ready(request: Request) -> Response:
    return _json({"status": "ok", "service": "same-work"})


def create_app(url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opener = SqliteStore.open if url.startswith("sqlite") else PostgresStore.open
        app.state.store = await opener(url)
        yield
        await app.state.store.close()

    routes = [
        Route("/", ready),
        Route("/api/v1/servers/", list_servers),
        Route("/api/v1/servers/{server_id}/", get_server),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.same_work")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="vpsorg's VPSORG_DATABASE_URL")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.db),
        host=args.host,
        port=args.port,
        log_level=LOG_LEVEL,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
