"""The web control panel, served by ``vpsorg serve`` beside the API: server-rendered pages
for the users of an account (``vpsorg users``), logged in with a session cookie.

The API under /api/v1 never reads that cookie: it stays token-only. The panel calls the
same services as the API and records its changes in the same audit trail, as the user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from vpsorg.config import Settings
from vpsorg.panel import account, endpoints, servers
from vpsorg.panel.forms import StaleForm
from vpsorg.panel.limits import PanelLimits
from vpsorg.panel.pages import STATIC, STATIC_URL, make_templates, redirect, render
from vpsorg.panel.sessions import CsrfRefused, LoginRequired, PageNotFound, TooManyChanges

FEED_PREFIX = "/panel/"
"""Paths the pages' script reads: answered in JSON, never with a redirect."""


@dataclass
class Panel:
    templates: Jinja2Templates
    limits: PanelLimits


def install_panel(app: FastAPI, settings: Settings) -> None:
    """Serve the panel's pages and assets, left out of the API's OpenAPI document."""
    panel = Panel(make_templates(), PanelLimits.from_settings(settings))
    app.state.panel = panel
    app.include_router(servers.router)
    app.include_router(endpoints.router)
    app.include_router(account.router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="panel-static")
    _install_error_pages(app)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            await panel.limits.close()

    app.router.lifespan_context = lifespan


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith(FEED_PREFIX):
            body = {"detail": "Log in again.", "code": "not_authenticated", "errors": {}}
            return JSONResponse(body, status_code=401)
        return redirect("/login")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        return render(request, "refused.html", status_code=403, reason="csrf")

    @app.exception_handler(StaleForm)
    async def _stale(request: Request, _exc: StaleForm) -> Response:
        return render(request, "refused.html", status_code=400, reason="stale")

    @app.exception_handler(TooManyChanges)
    async def _too_many(request: Request, exc: TooManyChanges) -> Response:
        response = render(
            request, "refused.html", status_code=429, reason="rate", retry_after=exc.retry_after
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, _exc: PageNotFound) -> Response:
        return render(request, "refused.html", status_code=404, reason="not_found")
