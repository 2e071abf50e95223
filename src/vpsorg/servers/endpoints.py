"""The nine endpoints of shared/spec/servers-api.md. Routes parse, call a service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from vpsorg.actions.endpoints import action_out
from vpsorg.api import PageNumber, PathId, PerPage, error_responses, paginated
from vpsorg.deps import CurrentAccount, DbSession
from vpsorg.servers import repository, service
from vpsorg.servers.models import Server, ServerStatus
from vpsorg.servers.schemas import (
    OsRef,
    PlanDetail,
    PlanSummary,
    PowerActionResult,
    ResourceUsage,
    ServerCreate,
    ServerCreated,
    ServerDetail,
    ServerList,
    ServerPatch,
    ServerRef,
    ServerReplace,
    ServerSummary,
)

router = APIRouter(prefix="/api/v1/servers", tags=["servers"])


async def _owned_server(account: CurrentAccount, session: DbSession, server_id: PathId) -> Server:
    return await service.get_server(session, account, server_id)


OwnedServer = Annotated[Server, Depends(_owned_server)]


def _public_ip(server: Server, address: str | None) -> str | None:
    """Addresses are reserved at creation but shown once the machine is provisioned."""
    return address if server.provisioned_at is not None else None


def summary(server: Server) -> ServerSummary:
    plan = server.plan
    return ServerSummary(
        id=server.id, name=server.name, hostname=server.hostname, status=server.status,
        ip_address=_public_ip(server, server.ipv4_address), location=server.location_code,
        plan=PlanSummary(id=plan.id, name=plan.name, vcpus=plan.vcpus,
                         memory=plan.memory_mb, storage=plan.storage_gb),
        os=OsRef(id=server.os.id, name=server.os.name),
        created_at=server.created_at, updated_at=server.updated_at,
    )  # fmt: skip


def detail(server: Server) -> ServerDetail:
    plan = server.plan
    running = server.status in (ServerStatus.ACTIVE, ServerStatus.REBOOTING, ServerStatus.STOPPING)
    return ServerDetail(
        id=server.id, name=server.name, hostname=server.hostname, status=server.status,
        ip_address=_public_ip(server, server.ipv4_address),
        ipv6_address=_public_ip(server, server.ipv6_address),
        location=server.location_code,
        plan=PlanDetail(id=plan.id, name=plan.name, vcpus=plan.vcpus, memory=plan.memory_mb,
                        storage=plan.storage_gb, bandwidth=plan.bandwidth_gb),
        os=OsRef(id=server.os.id, name=server.os.name),
        backups_enabled=server.backups_enabled,
        resource_usage=ResourceUsage(
            cpu_percent=server.cpu_percent if running else 0.0,
            memory_used=server.memory_used_mb if running else 0,
            disk_used=server.disk_used_gb, bandwidth_used=server.bandwidth_used_gb,
        ),
        created_at=server.created_at, updated_at=server.updated_at,
    )  # fmt: skip


@router.get("/", response_model=ServerList, responses=error_responses(400, 401))
async def list_servers(
    request: Request,
    account: CurrentAccount,
    session: DbSession,
    status: Annotated[
        str | None, Query(description="Filter by status: active, stopped, suspended, ...")
    ] = None,
    location: Annotated[str | None, Query(description="Filter by location code")] = None,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> ServerList:
    """List all servers in your account."""
    service.check_status_filter(status)
    await service.check_location_filter(session, location)
    total, servers = await repository.list_owned(
        session, account.id, status=status, location=location,
        offset=(page - 1) * per_page, limit=per_page,
    )  # fmt: skip
    return paginated(ServerList, request, page, per_page, total, [summary(s) for s in servers])


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
    return ServerCreated(
        **dict(detail(server)), message=service.CREATE_MESSAGE, action=action_out(action)
    )


@router.get("/{server_id}/", response_model=ServerDetail, responses=error_responses(401, 404))
async def get_server(server: OwnedServer) -> ServerDetail:
    """Detailed information about one server, including resource usage."""
    return detail(server)


@router.put(
    "/{server_id}/", response_model=ServerDetail, responses=error_responses(400, 401, 404, 415)
)
async def replace_server(
    body: ServerReplace, server: OwnedServer, session: DbSession
) -> ServerDetail:
    """Update name, hostname and backups_enabled (all required)."""
    return detail(await service.update_server(session, server, body))


@router.patch(
    "/{server_id}/", response_model=ServerDetail, responses=error_responses(400, 401, 404, 415)
)
async def patch_server(body: ServerPatch, server: OwnedServer, session: DbSession) -> ServerDetail:
    """Update only the fields given."""
    return detail(await service.update_server(session, server, body))


@router.delete(
    "/{server_id}/", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401, 404)
)
async def delete_server(
    server: OwnedServer, account: CurrentAccount, session: DbSession
) -> Response:
    """Delete the server permanently. It disappears at once; its machine is destroyed by a worker."""
    await service.delete_server(session, account, server)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _power_route(name: str, doc: str):  # type: ignore[no-untyped-def]
    async def power(
        server: OwnedServer, account: CurrentAccount, session: DbSession
    ) -> PowerActionResult:
        server, action = await service.request_power(session, account, server, name)
        return PowerActionResult(
            message=service.POWER_COMMANDS[name].message,
            server=ServerRef(id=server.id, name=server.name, status=server.status),
            action=action_out(action),
        )

    power.__name__ = f"{name}_server"
    power.__doc__ = doc
    router.add_api_route(
        f"/{{server_id}}/{name}/", power, methods=["POST"], response_model=PowerActionResult,
        responses=error_responses(400, 401, 402, 404), name=f"{name}_server",
    )  # fmt: skip


_power_route("start", "Power on a stopped server.")
_power_route("stop", "Gracefully shut down a running server.")
_power_route("reboot", "Gracefully restart a running server.")
