"""The nine endpoints of docs/servers-api.md. Routes parse, call a service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts.models import Account
from vpsorg.api import PageNumber, PerPage, error_responses, paginated
from vpsorg.catalog.schemas import LocationCode
from vpsorg.deps import CurrentAccount, DbSession
from vpsorg.servers import repository, service
from vpsorg.servers.deps import OwnedServer
from vpsorg.servers.models import VISIBLE_STATUSES, Server
from vpsorg.servers.schemas import (
    PowerActionResult,
    ServerCreate,
    ServerCreated,
    ServerDetail,
    ServerList,
    ServerPatch,
    ServerReplace,
    ServerSummary,
)

router = APIRouter(prefix="/api/v1/servers", tags=["servers"])


StatusFilter = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [s.value for s in VISIBLE_STATUSES]})
]
"""A ServerStatus to clients; a str here, so an unknown one gets check_status_filter's 400."""


@router.get("/", response_model=ServerList, responses=error_responses(400, 401))
async def list_servers(
    request: Request,
    account: CurrentAccount,
    session: DbSession,
    status: Annotated[
        StatusFilter | None,
        Query(description="Filter by status: active, stopped, suspended, ..."),
    ] = None,
    location: Annotated[LocationCode | None, Query(description="Filter by location code")] = None,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> ServerList:
    """List all servers in your account."""
    service.check_status_filter(status)
    await service.check_location_filter(session, location)
    offset = (page - 1) * per_page
    total, servers = await repository.list_owned(
        session, account.id, status=status, location=location, offset=offset, limit=per_page
    )
    results = [ServerSummary.from_server(s) for s in servers]
    return paginated(ServerList, request, page, per_page, total, results)


async def _references(
    request: Request, account: CurrentAccount, session: DbSession
) -> service.References:
    """Runs before body validation: unknown plan/OS/location/key join any other 400 errors.

    The objects found are what the create then uses: each is read once per request.
    """
    try:
        raw = await request.json()
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        return service.NO_REFERENCES
    references = await service.resolve_references(session, account, raw)
    request.state.extra_errors = references.errors
    return references


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=ServerCreated,
    responses=error_responses(400, 401, 402, 403, 413, 415, 503),
)
async def create_server(
    body: ServerCreate,
    account: CurrentAccount,
    session: DbSession,
    references: Annotated[service.References, Depends(_references)],
) -> ServerCreated:
    """Deploy a new server. It is `provisioning` until a worker has built it."""
    server, action = await service.create_server(session, account, body, references)
    return ServerCreated.from_creation(server, action, service.CREATE_MESSAGE)


@router.get("/{server_id}/", response_model=ServerDetail, responses=error_responses(401, 404))
async def get_server(server: OwnedServer) -> ServerDetail:
    """Detailed information about one server, including resource usage."""
    return ServerDetail.from_server(server)


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
