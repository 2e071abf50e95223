"""The account's pages: SSH keys, API tokens (shown once), and the balance and ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from vpsorg.accounts import repository as accounts
from vpsorg.accounts.models import Account
from vpsorg.api import PathId
from vpsorg.auth import tokens
from vpsorg.auth.models import TokenScope
from vpsorg.auth.schemas import TokenCreate
from vpsorg.billing import service as billing
from vpsorg.catalog import repository as catalog
from vpsorg.catalog import service as catalog_service
from vpsorg.catalog.schemas import SshKeyCreate
from vpsorg.clock import utcnow
from vpsorg.deps import DbSession
from vpsorg.errors import ApiError, InvalidParameters
from vpsorg.panel import trail
from vpsorg.panel.forms import field_errors, form_token, parse, submit_once, text
from vpsorg.panel.pages import redirect, render
from vpsorg.panel.sessions import ChangingVisitor, CurrentVisitor, Visitor
from vpsorg.servers import repository as servers

router = APIRouter(include_in_schema=False)

LEDGER_LINES = 100


# -- SSH keys ------------------------------------------------------------------------------


@router.get("/ssh-keys")
async def ssh_keys_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, done: str | None = None
) -> Response:
    return await _ssh_keys(request, visitor, session, done=done)


async def _ssh_keys(
    request: Request,
    visitor: Visitor,
    session: AsyncSession,
    status_code: int = 200,
    **context: Any,
) -> Response:
    keys = await catalog.list_ssh_keys(session, visitor.account_id)
    return render(request, "ssh_keys.html", visitor, status_code, keys=keys, **context)


@router.post("/ssh-keys")
async def add_ssh_key(request: Request, visitor: ChangingVisitor, session: DbSession) -> Response:
    form = await request.form()
    values = {"name": text(form, "name").strip(), "public_key": text(form, "public_key").strip()}

    async def change() -> str:
        key = await catalog_service.create_ssh_key(
            session, visitor.account, parse(SshKeyCreate, values)
        )
        trail.record(session, request, visitor, resource=f"ssh_key:{key.id}")
        return "/ssh-keys?done=key-added"

    try:
        return redirect(await submit_once(session, visitor.session_id, form_token(form), change))
    except ApiError as exc:
        trail.record(session, request, visitor, resource="ssh_key", error=exc)
        return await _ssh_keys(
            request, visitor, session, exc.status_code, errors=field_errors(exc), values=values
        )


@router.post("/ssh-keys/{key_id}/delete")
async def delete_ssh_key(
    request: Request, key_id: PathId, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()

    async def change() -> str:
        key = await catalog_service.get_ssh_key(session, visitor.account, key_id)
        await catalog_service.delete_ssh_key(session, key)
        trail.record(session, request, visitor, resource=f"ssh_key:{key_id}")
        return "/ssh-keys?done=key-deleted"

    try:
        return redirect(await submit_once(session, visitor.session_id, form_token(form), change))
    except ApiError as exc:
        trail.record(session, request, visitor, resource=f"ssh_key:{key_id}", error=exc)
        return await _ssh_keys(request, visitor, session, exc.status_code, errors=field_errors(exc))


# -- API tokens ----------------------------------------------------------------------------

LIFETIMES = {
    "": None,
    "1d": timedelta(days=1),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


@router.get("/tokens")
async def tokens_page(
    request: Request, visitor: CurrentVisitor, session: DbSession, done: str | None = None
) -> Response:
    return await _tokens(request, visitor, session, done=done)


async def _tokens(
    request: Request,
    visitor: Visitor,
    session: AsyncSession,
    status_code: int = 200,
    **context: Any,
) -> Response:
    _total, rows = await tokens.list_tokens(session, visitor.account_id, 0, 200)
    return render(request, "tokens.html", visitor, status_code, tokens=rows, **context)


@router.post("/tokens")
async def create_token(request: Request, visitor: ChangingVisitor, session: DbSession) -> Response:
    form = await request.form()
    lifetime = text(form, "expires_in")
    values: dict[str, Any] = {"name": text(form, "name").strip(), "scope": text(form, "scope")}
    if lifetime not in LIFETIMES:
        values["expires_in"] = lifetime  # refused by the schema, beside the field
    elif LIFETIMES[lifetime] is not None:
        values["expires_in"] = int(LIFETIMES[lifetime].total_seconds())  # type: ignore[union-attr]
    created: list[str] = []

    async def change() -> str:
        data: TokenCreate = parse(TokenCreate, values)
        expires_at = utcnow() + timedelta(seconds=data.expires_in) if data.expires_in else None
        row, token = await tokens.create_token(
            session,
            visitor.account_id,
            data.name,
            scope=TokenScope(data.scope),
            expires_at=expires_at,
        )
        trail.record(session, request, visitor, resource=f"token:{row.id}")
        created.append(token)
        return "/tokens?done=token-created"

    try:
        path = await submit_once(session, visitor.session_id, form_token(form), change)
    except ApiError as exc:
        trail.record(session, request, visitor, resource="token", error=exc)
        return await _tokens(
            request, visitor, session, exc.status_code, errors=field_errors(exc), values=values
        )
    if not created:  # the same form again: the token was shown the first time only
        return redirect(path)
    await session.flush()
    return await _tokens(request, visitor, session, 201, new_token=created[0])


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: PathId, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()

    async def change() -> str:
        if not await tokens.revoke_token_id(session, token_id, visitor.account_id):
            raise InvalidParameters(f"Token {token_id} is not a live token of the account.")
        trail.record(session, request, visitor, resource=f"token:{token_id}")
        return "/tokens?done=token-revoked"

    try:
        return redirect(await submit_once(session, visitor.session_id, form_token(form), change))
    except ApiError as exc:
        trail.record(session, request, visitor, resource=f"token:{token_id}", error=exc)
        return await _tokens(request, visitor, session, exc.status_code, errors=field_errors(exc))


# -- account -------------------------------------------------------------------------------


@router.get("/account")
async def account_page(request: Request, visitor: CurrentVisitor, session: DbSession) -> Response:
    account = await session.get(Account, visitor.account_id)
    assert account is not None
    total, entries = await accounts.ledger(session, account.id, 0, LEDGER_LINES)
    return render(
        request,
        "account.html",
        visitor,
        account=account,
        entries=entries,
        entries_total=total,
        burn_micros=await billing.burn_micros(session, account.id),
        servers_used=await servers.count_live(session, account.id),
    )
