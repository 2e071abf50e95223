"""A minimal HTTP/1.1 keep-alive client for the load generator.

httpx costs about 2 ms of client CPU per request, more than the trivial reference app costs the
server (under 1 ms): on a 2-core machine the client would set the pace, and every ratio to the
reference would shrink towards 1. This client writes a request and reads a ``Content-Length``
or chunked response on one asyncio connection, for a fraction of that. It speaks only to the
two servers of this benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 90.0  # above the longest long-poll (?wait=60)
NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server sent something this client does not understand, or an unexpected status."""


@dataclass(frozen=True)
class Response:
    method: str
    path: str
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def expect(self, status: int) -> Response:
        if self.status_code != status:
            raise ProtocolError(f"{self.method} {self.path} -> {self.status_code}: {self.text}")
        return self


class Connection:
    """One keep-alive connection to ``host:port``, opened on first use and reopened if closed."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect now rather than on the first request."""
        await self._connection()

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request("POST", path, body, headers)

    async def delete(self, path: str) -> Response:
        return await self.request("DELETE", path)

    async def request(
        self, method: str, path: str, body: Any = None, extra: dict[str, str] | None = None
    ) -> Response:
        """Send one request with an optional JSON body and headers beyond the connection's
        own; a broken connection is closed and raises."""
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                reader, writer = await self._connection()
                writer.write(self._encode(method, path, body, extra))
                await writer.drain()
                status, headers = await _read_head(reader)
                content = await _read_body(reader, method, status, headers)
        except BaseException:
            self._abort()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(method, path, status, content)

    def _abort(self) -> None:
        """Drop the connection at once: after an error its state is unknown."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server closed the idle connection (keep-alive timeout)
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def _encode(self, method: str, path: str, body: Any, extra: dict[str, str] | None) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        headers = self._headers + "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode("latin-1") + payload


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(rest[:3]), headers


async def _read_body(
    reader: asyncio.StreamReader, method: str, status: int, headers: dict[str, str]
) -> bytes:
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return b""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return await _read_chunks(reader)
    raise ProtocolError(f"a {status} response without a length")


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
        pass
    return b"".join(chunks)
