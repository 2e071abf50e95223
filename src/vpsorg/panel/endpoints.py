"""Logging in and out, and a user's own password."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from vpsorg.client_address import client_address
from vpsorg.db import transaction
from vpsorg.deps import DbSession
from vpsorg.errors import ApiError, InvalidParameters
from vpsorg.panel import trail
from vpsorg.panel.forms import field_errors, form_token, submit_once, text
from vpsorg.panel.pages import redirect, render
from vpsorg.panel.sessions import (
    COOKIE,
    ChangingVisitor,
    CurrentVisitor,
    clear_session_cookie,
    is_https,
    set_session_cookie,
)
from vpsorg.users import service as users
from vpsorg.users.models import User

if TYPE_CHECKING:
    from vpsorg.panel import Panel

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE = "vpsorg_login"
"""A random value the login form repeats: a login can't be forged from another site."""


# -- login, logout, password -------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_form(request)


def _login_form(
    request: Request, status_code: int = 200, email: str = "", error: str | None = None
) -> Response:
    token = secrets.token_urlsafe(16)
    errors = {"password": [error]} if error else {}
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_token=token,
        values={"email": email},
        errors=errors,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email, password = users.normalize_email(text(form, "email")), text(form, "password")
    sent = text(form, "login_token")
    if not sent or not secrets.compare_digest(sent, request.cookies.get(LOGIN_COOKIE, "")):
        return _login_form(request, 400, email, "The form expired; please log in again.")
    panel: Panel = request.app.state.panel
    address = client_address(request.scope, request.app.state.settings.trusted_proxies)
    wait = await panel.limits.login_wait(address, email)
    if wait is not None:
        response = _login_form(
            request, 429, email, f"Too many attempts; try again in {wait} seconds."
        )
        response.headers["Retry-After"] = str(wait)
        return response
    async with transaction(request.app.state.runtime.sessions) as session:
        user = await users.authenticate(session, email, password)
        raw = ""
        if user is not None:
            # A fresh id at every login (no fixation); a session this browser had ends.
            await users.end_session(session, request.cookies.get(COOKIE, ""))
            raw = await users.start_session(session, user, request.app.state.settings)
    if not raw:
        return _login_form(request, 400, email, "Wrong email or password.")
    response = redirect("/")
    set_session_cookie(response, request, raw, request.app.state.settings)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, visitor: ChangingVisitor, session: DbSession) -> Response:
    await users.end_session(session, request.cookies.get(COOKIE, ""))
    response = redirect("/login")
    clear_session_cookie(response, request)
    return response


@router.get("/password")
async def password_page(
    request: Request, visitor: CurrentVisitor, done: str | None = None
) -> Response:
    return render(request, "password.html", visitor, done=done)


@router.post("/password")
async def change_password(
    request: Request, visitor: ChangingVisitor, session: DbSession
) -> Response:
    form = await request.form()

    async def change() -> str:
        if text(form, "new_password") != text(form, "confirm_password"):
            raise InvalidParameters.field("confirm_password", "The two passwords differ.")
        user = await session.get(User, visitor.user_id)
        assert user is not None
        await users.change_own_password(
            session,
            user,
            text(form, "current_password"),
            text(form, "new_password"),
            visitor.session_id,
        )
        trail.record(session, request, visitor, resource=f"user:{visitor.user_id}")
        return "/password?done=password"

    try:
        return redirect(await submit_once(session, visitor.session_id, form_token(form), change))
    except ApiError as exc:
        trail.record(session, request, visitor, resource=f"user:{visitor.user_id}", error=exc)
        return render(request, "password.html", visitor, exc.status_code, errors=field_errors(exc))
