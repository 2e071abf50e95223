"""The nine endpoints of docs/servers-api.md. Routes parse, call a service, render."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import WithJsonSchema
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.api import (
    PageNumber,
    PathId,
    PerPage,
    absolute_link,
    error_responses,
    last_page,
    strict_query,
)
from vpsorg.catalog.schemas import LocationCode
from vpsorg.db import single_statement_reads
from vpsorg.deps import (
    UNKNOWN_TOKEN,
    CurrentAccount,
    DbSession,
    ReadingCaller,
    bearer_token_hash,
    note_caller,
)
from vpsorg.errors import InvalidParameters, NotAuthenticated
from vpsorg.servers import repository, service
from vpsorg.servers.deps import OwnedServer, OwnedServerView, owned_server_view
from vpsorg.servers.models import VISIBLE_STATUSES, Server
from vpsorg.servers.schemas import (
    CURSOR_MAX_LENGTH,
    PowerActionResult,
    ServerCreate,
    ServerCreated,
    ServerDetail,
    ServerList,
    ServerPatch,
    ServerReplace,
    ServerSummary,
    decode_cursor,
    encode_cursor,
)

router = APIRouter(prefix="/api/v1/servers", tags=["servers"])


StatusFilter = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [s.value for s in VISIBLE_STATUSES]})
]
"""A ServerStatus to clients; a str here, so an unknown one gets check_status_filter's 400."""


Cursor = Annotated[
    str | None,
    Query(
        max_length=CURSOR_MAX_LENGTH,
        pattern="^[A-Za-z0-9_-]+$",  # base64url, as encode_cursor writes it
        description="Continue after the page whose `next` link gave this opaque cursor: "
        "follow `next` to walk every server once, even while servers are added or deleted",
    ),
]


def _json(body: dict[str, Any]) -> Response:
    """The hot reads render their bodies straight from rows (``body_from_row``), so the
    route's response model documents them but does not validate them a second time."""
    return Response(to_json(body), media_type="application/json")


@router.get("/", response_model=ServerList, responses=error_responses(400, 401))
async def list_servers(
    request: Request,
    caller: ReadingCaller,
    status: Annotated[
        StatusFilter | None,
        Query(description="Filter by status: active, stopped, suspended, ..."),
    ] = None,
    location: Annotated[LocationCode | None, Query(description="Filter by location code")] = None,
    page: PageNumber = 1,
    per_page: PerPage = 50,
    cursor: Cursor = None,
) -> Response:
    """List all servers in your account.

    `count` is always the number of servers the filters match; `next` carries a `cursor`
    (the page after it is read from there, not counted from the start), `previous` a page number.
    """
    service.check_status_filter(status)
    if location is not None:
        async with request.app.state.runtime.read_sessions() as session:
            await service.check_location_filter(session, location)
    after_id = None if cursor is None else decode_cursor(cursor)
    if cursor is not None and after_id is None:
        raise InvalidParameters.field("cursor", "Not a cursor from a `next` link of this list.")
    shown = repository.ServerFilter(status=status, location=location, after_id=after_id)
    # From a cursor, one row more than a page says whether another page follows.
    offset, limit = ((page - 1) * per_page, per_page) if cursor is None else (0, per_page + 1)
    total, rows = await single_statement_reads(
        request.app.state.runtime.read_engine,
        lambda connection: repository.list_owned_view(
            connection, caller.account_id, shown, offset, limit
        ),
    )
    more = len(rows) > per_page if cursor is not None else page * per_page < total
    rows = rows[:per_page]
    next_url = _list_link(request, page + 1, per_page, rows[-1].id) if more and rows else None
    last = last_page(total, per_page)
    previous_url = _list_link(request, min(page - 1, last), per_page) if page > 1 else None
    results = [ServerSummary.body_from_row(row) for row in rows]
    return _json({"count": total, "next": next_url, "previous": previous_url, "results": results})


def _list_link(request: Request, page: int, per_page: int, after_id: int | None = None) -> str:
    """An absolute link to a page of the list, keeping the filters: ``next`` with a cursor
    after the page's last server, ``previous`` with a page number only."""
    url = request.url.remove_query_params("cursor")
    url = url.include_query_params(page=page, per_page=per_page)
    if after_id is not None:
        url = url.include_query_params(cursor=encode_cursor(after_id))
    return absolute_link(request, url)


async def _creating(request: Request, session: DbSession) -> service.Creating:
    """The caller (401, or 403 for a read token), its account under its row lock and the
    references the body names, in one statement (``service.resolve_creating``).

    Runs before body validation: unknown plan/OS/location/key join any other 400 errors.
    The objects found are what the create then uses: each is read once per request.
    """
    token_hash = bearer_token_hash(request)
    try:
        raw = await request.json()
    except ValueError:
        raw = None
    creating = await service.resolve_creating(
        session, token_hash, raw if isinstance(raw, dict) else {}
    )
    if creating is None:
        raise NotAuthenticated(UNKNOWN_TOKEN)
    note_caller(request, creating.caller)
    request.state.extra_errors = creating.references.errors
    return creating


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=ServerCreated,
    responses=error_responses(400, 401, 402, 403, 413, 415, 503),
)
async def create_server(
    body: ServerCreate,
    session: DbSession,
    creating: Annotated[service.Creating, Depends(_creating)],
) -> ServerCreated:
    """Deploy a new server. It is `provisioning` until a worker has built it."""
    server, action = await service.create_server_locked(
        session, creating.standing, body, creating.references, creating.now
    )
    return ServerCreated.from_creation(server, action, service.CREATE_MESSAGE)


class DirectRoute(APIRoute):
    """A route documented from its function's signature as any other, but served by
    ``serve``, which makes the same checks in the same order by hand: FastAPI's dependency
    solving cost the hottest read, a server's detail, 100-150 us of its 400 (bench/README.md).
    Only for a read whose checks are few, each tested through HTTP (tests/servers/test_reads).
    """

    serve: Callable[[Request], Coroutine[Any, Any, Response]]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return type(self).serve


async def _serve_server(request: Request) -> Response:
    """``get_server`` as served: the app's query check, then the caller and the server."""
    await strict_query(request)
    server = await owned_server_view(request)
    return _json(ServerDetail.body_from_row(server))


class ServerDetailRoute(DirectRoute):
    serve = staticmethod(_serve_server)


async def get_server(server_id: PathId, server: OwnedServerView) -> Response:
    """Detailed information about one server, including resource usage."""
    return _json(ServerDetail.body_from_row(server))


router.add_api_route(
    "/{server_id}/",
    get_server,
    methods=["GET"],
    response_model=ServerDetail,
    responses=error_responses(401, 404),
    route_class_override=ServerDetailRoute,
)


@router.put(
    "/{server_id}/", response_model=ServerDetail, responses=error_responses(400, 401, 404, 415)
)
async def replace_server(
    body: ServerReplace, server: OwnedServer, session: DbSession
) -> ServerDetail:
    """Update name, hostname and backups_enabled (all required)."""
    return ServerDetail.from_server(await service.update_server(session, server, body))


@router.patch(
    "/{server_id}/", response_model=ServerDetail, responses=error_responses(400, 401, 404, 415)
)
async def update_server(body: ServerPatch, server: OwnedServer, session: DbSession) -> ServerDetail:
    """Update only the fields given."""
    return ServerDetail.from_server(await service.update_server(session, server, body))


@router.delete(
    "/{server_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 404)
)
async def delete_server(
    server: OwnedServer, account: CurrentAccount, session: DbSession
) -> Response:
    """Delete the server permanently. It disappears at once; its machine is destroyed by a worker."""
    await service.delete_server(session, account, server)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _power(
    name: str, server: Server, account: Account, session: AsyncSession
) -> PowerActionResult:
    server, action = await service.request_power(session, account, server, name)
    return PowerActionResult.from_power(server, action, service.POWER_COMMANDS[name].message)


POWER_ERRORS = error_responses(400, 401, 402, 404)


@router.post("/{server_id}/start/", response_model=PowerActionResult, responses=POWER_ERRORS)
async def start_server(
    server: OwnedServer, account: CurrentAccount, session: DbSession
) -> PowerActionResult:
    """Power on a stopped server. It is `starting` until the machine runs, then `active`."""
    return await _power("start", server, account, session)


@router.post("/{server_id}/stop/", response_model=PowerActionResult, responses=POWER_ERRORS)
async def stop_server(
    server: OwnedServer, account: CurrentAccount, session: DbSession
) -> PowerActionResult:
    """Gracefully shut down a running server. It is `stopping`, then `stopped`."""
    return await _power("stop", server, account, session)


@router.post("/{server_id}/reboot/", response_model=PowerActionResult, responses=POWER_ERRORS)
async def reboot_server(
    server: OwnedServer, account: CurrentAccount, session: DbSession
) -> PowerActionResult:
    """Gracefully restart a running server. It is `rebooting`, then `active` again."""
    return await _power("reboot", server, account, session)
