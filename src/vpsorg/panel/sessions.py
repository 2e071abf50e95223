"""Who is looking at the panel: the session cookie, checked on every request.

The cookie holds the session's random id (the database only its hash): ``HttpOnly`` (no
script reads it), ``SameSite=Strict`` (no other site's page sends it, the first guard
against cross-site requests; the CSRF token is the second) and ``Secure`` when the request
came over HTTPS, as uvicorn sees it through the trusted proxies (``cli/serve.py`` passes
them as ``forwarded_allow_ips``). It lives as long as the session may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Response

from vpsorg.accounts.models import Account
from vpsorg.clock import utcnow
from vpsorg.config import Settings
from vpsorg.db import transaction
from vpsorg.panel import forms
from vpsorg.users import service as users

if TYPE_CHECKING:
    from vpsorg.panel import Panel
    from vpsorg.runtime import Runtime

COOKIE = "vpsorg_session"


class PanelError(Exception):
    """An answer the panel renders itself (a redirect to the login, a refusal page)."""


class LoginRequired(PanelError):
    """No live session: log in first."""


class CsrfRefused(PanelError):
    """A change without this session's CSRF token (or with a stale form): refused."""


class TooManyChanges(PanelError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class PageNotFound(PanelError):
    """Not there, or not the account's: the same answer either way."""


@dataclass(frozen=True)
class Visitor:
    """A logged-in request: who, for which account, and the session's CSRF token."""

    session_id: int
    user_id: int
    email: str
    account: Account
    csrf_token: str

    @property
    def account_id(self) -> int:
        return self.account.id


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, raw: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        raw,
        max_age=settings.panel_session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )


async def _visitor(request: Request) -> Visitor:
    """The session's visitor, in a short transaction of its own (pages that wait, such as
    the status poll, hold no connection); its idle expiry moves on at most once a minute."""
    raw = request.cookies.get(COOKIE, "")
    runtime: Runtime = request.app.state.runtime
    async with runtime.read_sessions() as session:
        live = await users.find_session(session, raw)
    if live is None:
        raise LoginRequired()
    now = utcnow()
    if live.due_for_touch(now):
        async with transaction(runtime.sessions) as session:
            await users.touch_session(session, live, request.app.state.settings, now)
    return Visitor(
        session_id=live.session.id,
        user_id=live.user.id,
        email=live.user.email,
        account=live.account,
        csrf_token=forms.csrf_token(raw),
    )


async def _changing_visitor(
    request: Request, visitor: Annotated[Visitor, Depends(_visitor)]
) -> Visitor:
    """A visitor making a change: the form carries the session's CSRF token, and the user
    is within their rate limit."""
    form = await request.form()
    if not forms.same_token(form.get("csrf_token"), visitor.csrf_token):
        raise CsrfRefused()
    panel: Panel = request.app.state.panel
    wait = await panel.limits.change_wait(visitor.user_id)
    if wait is not None:
        raise TooManyChanges(wait)
    return visitor


CurrentVisitor = Annotated[Visitor, Depends(_visitor)]
"""The logged-in user, or a redirect to /login."""
ChangingVisitor = Annotated[Visitor, Depends(_changing_visitor)]
"""The logged-in user, with the CSRF token checked and a change counted against their limit."""
