"""The panel's server pages: the list (with a status feed for its script), create, one
server's page and its changes. The rules are the servers service's, as for the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from vpsorg.accounts.models import Account
from vpsorg.actions import repository as actions
from vpsorg.actions.schemas import ActionOut
from vpsorg.api import PathId
from vpsorg.backups import repository as backups
from vpsorg.billing import pricing
from vpsorg.catalog import repository as catalog
from vpsorg.deps import DbSession
from vpsorg.errors import ApiError, InvalidParameters, NotFound, validation_error
from vpsorg.panel import trail
from vpsorg.panel.forms import (
    checked,
    field_errors,
    form_token,
    integer_or_text,
    parse,
    submit_once,
    text,
)
from vpsorg.panel.pages import redirect, render
from vpsorg.panel.sessions import ChangingVisitor, CurrentVisitor, PageNotFound, Visitor
from vpsorg.servers import repository, service
from vpsorg.servers.models import BUSY_STATUSES, Server
from vpsorg.servers.schemas import ServerCreate, ServerDetail, ServerPatch, ServerSummary

router = APIRouter(include_in_schema=False)

MAX_LISTED = 200
HISTORY_LINES = 20


async def _owned(session: AsyncSession, visitor: Visitor, server_id: int) -> Server:
    """The account's server, or the panel's 404 (another account's server is simply absent)."""
    try:
        return await service.get_server(session, visitor.account, server_id)
    except NotFound:
        raise PageNotFound() from None


# -- the list ------------------------------------------------------------------------------


@router.get("/")
async def servers_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, done: str | None = None
) -> Response:
    total, rows = await repository.list_owned(
        session, visitor.account_id, status=None, location=None, offset=0, limit=MAX_LISTED
    )
    summaries = [ServerSummary.from_server(s) for s in rows]
    return render(
        request,
        "servers.html",
        visitor,
        servers=summaries,
        total=total,
        done=done,
        busy_statuses=BUSY_STATUSES,
    )


@router.get("/panel/servers.json")
async def server_statuses(visitor: CurrentVisitor, session: DbSession) -> JSONResponse:
    """What the pages' script polls while an action runs: each server's status and address."""
    _total, rows = await repository.list_owned(
        session, visitor.account_id, status=None, location=None, offset=0, limit=MAX_LISTED
    )
    body = [
        {
            "id": s.id,
            "status": s.status,
            "busy": s.status in BUSY_STATUSES,
            "ip_address": ServerSummary.from_server(s).ip_address,
        }
        for s in rows
    ]
    return JSONResponse({"servers": body}, headers={"Cache-Control": "no-store"})


# -- create --------------------------------------------------------------------------------


@router.get("/servers/new")
async def new_server_page(
    request: Request, visitor: CurrentVisitor, session: DbSession
) -> Response:
    return await _create_form(request, visitor, session, values={"backups_enabled": False})


async def _create_form(
    request: Request,
    visitor: Visitor,
    session: AsyncSession,
    status_code: int = 200,
    **context: Any,
) -> Response:
    account = await session.get(Account, visitor.account_id)
    assert account is not None
    plans = [p for p in await catalog.list_plans(session) if p.available]
    offers = [
        {
            "plan": plan,
            "hourly": pricing.hour_price_micros(plan, False),
            "monthly": pricing.monthly_price_micros(plan),
            "backups_hourly": pricing.hour_price_micros(plan, True)
            - pricing.hour_price_micros(plan, False),
        }
        for plan in plans
    ]
    return render(
        request,
        "server_new.html",
        visitor,
        status_code,
        offers=offers,
        account=account,
        systems=[o for o in await catalog.list_operating_systems(session) if o.available],
        locations=[loc for loc in await catalog.list_locations(session) if loc.available],
        keys=await catalog.list_ssh_keys(session, visitor.account_id),
        **context,
    )


def _create_values(form: FormData) -> dict[str, Any]:
    """The form as the API's create body: what is left empty is not sent."""
    values: dict[str, Any] = {
        "name": text(form, "name").strip(),
        "plan_id": integer_or_text(text(form, "plan_id")),
        "os_id": integer_or_text(text(form, "os_id")),
        "location": text(form, "location").strip(),
        "hostname": text(form, "hostname").strip(),
        "ssh_key_id": integer_or_text(text(form, "ssh_key_id")),
        "backups_enabled": checked(form, "backups_enabled"),
    }
    return {name: value for name, value in values.items() if value not in (None, "")}


@router.post("/servers/new")
async def create_server(request: Request, visitor: ChangingVisitor, session: DbSession) -> Response:
    form = await request.form()
    values = _create_values(form)

    async def change() -> str:
        references = await service.resolve_references(session, visitor.account, values)
        try:
            data = ServerCreate.model_validate(values)
        except ValidationError as exc:
            raise validation_error(exc.errors(), references.errors) from None
        server, action = await service.create_server(session, visitor.account, data, references)
        trail.record(session, request, visitor, resource=f"server:{server.id}", action_id=action.id)
        return f"/servers/{server.id}?done=created"

    try:
        return redirect(await submit_once(session, visitor.session_id, form_token(form), change))
    except ApiError as exc:
        trail.record(session, request, visitor, resource="server", error=exc)
        return await _create_form(
            request, visitor, session, exc.status_code, values=values, errors=field_errors(exc)
        )


# -- one server ----------------------------------------------------------------------------


@router.get("/servers/{server_id}")
async def server_page(
    request: Request,
    server_id: PathId,
    visitor: CurrentVisitor,
    session: DbSession,
    done: str | None = None,
) -> Response:
    return await _server_page(request, visitor, session, server_id, done=done)


async def _server_page(
    request: Request,
    visitor: Visitor,
    session: AsyncSession,
    server_id: int,
    status_code: int = 200,
    **context: Any,
) -> Response:
    server = await _owned(session, visitor, server_id)
    _count, history = await actions.history(
        session, visitor.account_id, server.id, 0, HISTORY_LINES
    )
    _total, copies = await backups.list_of_server(session, server.id, offset=0, limit=100)
    return render(
        request,
        "server.html",
        visitor,
        status_code,
        server=ServerDetail.from_server(server),
        busy=server.status in BUSY_STATUSES,
        actions=[ActionOut.from_action(a) for a in history],
        backups=copies,
        **context,
    )


async def _change_server(
    request: Request,
    visitor: Visitor,
    session: AsyncSession,
    server_id: int,
    form: FormData,
    change: Callable[[], Awaitable[str]],
) -> Response:
    """Run one change of the server once per form; its refusal is shown on the server's page."""
    try:
        path = await submit_once(session, visitor.session_id, form_token(form), change)
        return redirect(path)
    except ApiError as exc:
        trail.record(session, request, visitor, resource=f"server:{server_id}", error=exc)
        session.expire_all()  # the savepoint's changes are gone; read the server afresh
        return await _server_page(
            request,
            visitor,
            session,
            server_id,
            exc.status_code,
            errors=field_errors(exc),
            values={k: v for k, v in form.items() if isinstance(v, str)},
        )


@router.post("/servers/{server_id}/power/{command}")
async def power(
    request: Request,
    server_id: PathId,
    command: str,
    visitor: ChangingVisitor,
    session: DbSession,
) -> Response:
    if command not in service.POWER_COMMANDS:
        raise PageNotFound()
    form = await request.form()

    async def change() -> str:
        server = await _owned(session, visitor, server_id)
        server, action = await service.request_power(session, visitor.account, server, command)
        trail.record(session, request, visitor, resource=f"server:{server.id}", action_id=action.id)
        return f"/servers/{server.id}?done={command}"

    return await _change_server(request, visitor, session, server_id, form, change)


@router.post("/servers/{server_id}/rename")
async def rename(
    request: Request, server_id: PathId, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()
    values = {"name": text(form, "name").strip(), "hostname": text(form, "hostname").strip()}

    async def change() -> str:
        server = await _owned(session, visitor, server_id)
        patch = parse(ServerPatch, {k: v for k, v in values.items() if v})
        await service.update_server(session, server, patch)
        trail.record(session, request, visitor, resource=f"server:{server.id}")
        return f"/servers/{server.id}?done=renamed"

    return await _change_server(request, visitor, session, server_id, form, change)


@router.post("/servers/{server_id}/backups")
async def set_backups(
    request: Request, server_id: PathId, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()
    enabled = checked(form, "backups_enabled")

    async def change() -> str:
        server = await _owned(session, visitor, server_id)
        await service.update_server(session, server, ServerPatch(backups_enabled=enabled))
        trail.record(session, request, visitor, resource=f"server:{server.id}")
        return f"/servers/{server.id}?done=backups-{'on' if enabled else 'off'}"

    return await _change_server(request, visitor, session, server_id, form, change)


@router.post("/servers/{server_id}/delete")
async def delete(
    request: Request, server_id: PathId, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()

    async def change() -> str:
        server = await _owned(session, visitor, server_id)
        if text(form, "confirm_name").strip() != server.name:
            raise InvalidParameters.field(
                "confirm_name", f"Type the server's name, {server.name}, to delete it."
            )
        action = await service.delete_server(session, visitor.account, server)
        trail.record(session, request, visitor, resource=f"server:{server.id}", action_id=action.id)
        return "/?done=deleted"

    return await _change_server(request, visitor, session, server_id, form, change)
