"""What every resource shares: calling the transport, binding results to their client,
and walking every page of a list.

A resource module builds ``Request``s and parses answers in plain functions; its sync and
async classes only send them, so the two clients cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from vpsorg_client._http import Request
from vpsorg_client.models import BoundModel, ServerCreation, SnapshotCreation

if TYPE_CHECKING:
    from vpsorg_client.client import AsyncClient, Client

T = TypeVar("T")
Parse = Callable[[Any], T]

DEFAULT_PER_PAGE = 100  # the API allows up to 200; fewer round trips, small answers


def page_request(request: Request, page: int, per_page: int) -> Request:
    params = {**(request.params or {}), "page": page, "per_page": per_page}
    return replace(request, params=params)


def page_items(body: Any, parse: Parse[T]) -> tuple[list[T], bool]:
    """The page's items and whether another page follows."""
    return [parse(item) for item in body["results"]], body.get("next") is not None


def drop_none(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def bind(value: T, client: Client | AsyncClient) -> T:
    if isinstance(value, BoundModel):
        value.bind(client)
    elif isinstance(value, ServerCreation):
        value.server.bind(client)
        value.action.bind(client)
    elif isinstance(value, SnapshotCreation):
        value.action.bind(client)
    return value


class SyncResource:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, request: Request, parse: Parse[T]) -> T:
        return bind(parse(self._client.transport.send(request)), self._client)

    def _send(self, request: Request) -> None:
        self._client.transport.send(request)

    def _items(self, request: Request, parse: Parse[T]) -> list[T]:
        """An unpaginated list (``{"count", "results"}``)."""
        body = self._client.transport.send(request)
        return [bind(parse(item), self._client) for item in body["results"]]

    def _pages(self, request: Request, parse: Parse[T], per_page: int) -> Iterator[T]:
        """Every item of every page, fetched a page at a time as the caller iterates."""
        page = 1
        while True:
            body = self._client.transport.send(page_request(request, page, per_page))
            items, more = page_items(body, parse)
            for item in items:
                yield bind(item, self._client)
            if not more:
                return
            page += 1


class AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, request: Request, parse: Parse[T]) -> T:
        return bind(parse(await self._client.transport.send(request)), self._client)

    async def _send(self, request: Request) -> None:
        await self._client.transport.send(request)

    async def _items(self, request: Request, parse: Parse[T]) -> list[T]:
        body = await self._client.transport.send(request)
        return [bind(parse(item), self._client) for item in body["results"]]

    async def _pages(self, request: Request, parse: Parse[T], per_page: int) -> AsyncIterator[T]:
        page = 1
        while True:
            body = await self._client.transport.send(page_request(request, page, per_page))
            items, more = page_items(body, parse)
            for item in items:
                yield bind(item, self._client)
            if not more:
                return
            page += 1
