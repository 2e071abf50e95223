"""Actions: what a create or a power command started, and waiting for them to finish.

``wait`` long-polls ``GET /actions/{id}/?wait=S``: the API answers the moment the action
finishes, so a wait ends within a round trip of the action, never a sleep interval later.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator, Iterator, Sequence

from vpsorg_client._http import Request
from vpsorg_client.errors import ActionFailed, WaitTimeout
from vpsorg_client.models import Action, ActionCallback, ActionStatus
from vpsorg_client.resources._base import (
    DEFAULT_PER_PAGE,
    AsyncResource,
    SyncResource,
    page_items,
    page_request,
)

MAX_POLL = 60.0  # the API's longest ?wait=
POLL_WITH_UPDATES = 2.0  # with a progress callback: a fresh progress every 2 s at most
NETWORK_MARGIN = 15.0  # the read timeout of a long-poll is its wait plus this


def get_request(action_id: int) -> Request:
    return Request("GET", f"/actions/{action_id}/")


def list_request(ids: Sequence[int] | None = None) -> Request:
    return Request("GET", "/actions/", params={"id": list(ids)} if ids else None)


def server_actions_request(server_id: int) -> Request:
    return Request("GET", f"/servers/{server_id}/actions/")


def recent_request(server_id: int, count: int) -> Request:
    return page_request(server_actions_request(server_id), 1, count)


def parse_first_page(body: object) -> list[Action]:
    return page_items(body, parse)[0]


def poll_request(action_id: int, remaining: float, with_updates: bool) -> Request:
    seconds = max(0.0, min(remaining, POLL_WITH_UPDATES if with_updates else MAX_POLL))
    return Request(
        "GET",
        f"/actions/{action_id}/",
        params={"wait": round(seconds, 3)},
        timeout=seconds + NETWORK_MARGIN,
    )


def parse(body: object) -> Action:
    return Action.model_validate(body)


def finished(action: Action, raise_on_error: bool) -> Action:
    """The action as the wait returns it: raise ``ActionFailed`` when it ended in error."""
    if raise_on_error and action.status is ActionStatus.ERROR:
        error = action.error
        message = error.message if error else "no reason given"
        raise ActionFailed(
            f"Action {action.id} ({action.command}) failed: {message}",
            code=error.code if error else None,
            action=action,
        )
    return action


def timed_out(action: Action, timeout: float) -> WaitTimeout:
    return WaitTimeout(
        f"Action {action.id} ({action.command}) is still {action.status} "
        f"({action.progress}%) after {timeout:g}s."
    )


class Actions(SyncResource):
    def get(self, action_id: int) -> Action:
        return self._call(get_request(action_id), parse)

    def list(
        self, ids: Sequence[int] | None = None, *, per_page: int = DEFAULT_PER_PAGE
    ) -> Iterator[Action]:
        """The account's actions, newest first (or exactly those with ``ids``)."""
        return self._pages(list_request(ids), parse, per_page)

    def list_for_server(
        self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE
    ) -> Iterator[Action]:
        return self._pages(server_actions_request(server_id), parse, per_page)

    def recent_for_server(self, server_id: int, count: int = 10) -> builtins.list[Action]:
        """The server's latest ``count`` actions (one request)."""
        return self._call(recent_request(server_id, count), parse_first_page)

    def wait(
        self,
        action_id: int,
        *,
        timeout: float = 600.0,
        on_update: ActionCallback | None = None,
        raise_on_error: bool = True,
    ) -> Action:
        """Long-poll until the action finishes; ``on_update`` sees each state on the way."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            action = self._call(poll_request(action_id, remaining, on_update is not None), parse)
            if on_update is not None:
                on_update(action)
            if action.finished:
                return finished(action, raise_on_error)
            if deadline - time.monotonic() <= 0:
                raise timed_out(action, timeout)


class AsyncActions(AsyncResource):
    async def get(self, action_id: int) -> Action:
        return await self._call(get_request(action_id), parse)

    def list(
        self, ids: Sequence[int] | None = None, *, per_page: int = DEFAULT_PER_PAGE
    ) -> AsyncIterator[Action]:
        return self._pages(list_request(ids), parse, per_page)

    def list_for_server(
        self, server_id: int, *, per_page: int = DEFAULT_PER_PAGE
    ) -> AsyncIterator[Action]:
        return self._pages(server_actions_request(server_id), parse, per_page)

    async def recent_for_server(self, server_id: int, count: int = 10) -> builtins.list[Action]:
        return await self._call(recent_request(server_id, count), parse_first_page)

    async def wait(
        self,
        action_id: int,
        *,
        timeout: float = 600.0,
        on_update: ActionCallback | None = None,
        raise_on_error: bool = True,
    ) -> Action:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            request = poll_request(action_id, remaining, on_update is not None)
            action = await self._call(request, parse)
            if on_update is not None:
                on_update(action)
            if action.finished:
                return finished(action, raise_on_error)
            if deadline - time.monotonic() <= 0:
                raise timed_out(action, timeout)
