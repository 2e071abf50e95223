"""The outermost layer: every request is counted, timed and logged once, by route template."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpsorg import logs
from vpsorg.observability import metrics

access_log = logging.getLogger("vpsorg.access")

UNMATCHED = "(unmatched)"
"""The route label of a path no route matches: raw paths would make a label per URL."""

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapers call these every few seconds: their lines are DEBUG, not INFO."""


class ObserveRequests:
    """Sets the request's log context, then counts, times and logs the answered request.

    The route label is the template of the route the path matches (``/api/v1/servers/
    {server_id}/``), found before the request runs so that every line it logs names it.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.templates = RouteTemplates(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = self.templates.match(method, scope["path"])
        with logs.request_context(method, route) as context:

            async def send_noting_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    context.status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                context.duration = time.perf_counter() - context.started
                status = context.status or 500  # the client went away, or nothing answered
                context.status = status
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_DURATION.labels(method, route).observe(context.duration)
                level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
                access_log.log(
                    level, "%s %s %d %.1fms", method, scope["path"], status, context.duration * 1000
                )


@dataclass(frozen=True)
class RouteTemplate:
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str] | None  # None: any (a mount)


class RouteTemplates:
    """The app's path templates, matched against a request's path and method."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes
        self._templates: list[RouteTemplate] | None = None

    def match(self, method: str, path: str) -> str:
        """The template of the route ``method path`` goes to, or ``UNMATCHED``; a route
        that matches the path but not the method (a 405) still names the template."""
        method = "GET" if method == "HEAD" else method
        partial: str | None = None
        for route in self._load():
            if route.pattern.match(path):
                if route.methods is None or method in route.methods:
                    return route.template
                partial = partial or route.template
        return partial or UNMATCHED

    def _load(self) -> list[RouteTemplate]:
        # Built at the first request: routes are still being added when the app is made.
        if self._templates is None:
            self._templates = list(_templates(self.routes))
        return self._templates


def _templates(routes: Sequence[BaseRoute]) -> Iterator[RouteTemplate]:
    for route in iter_route_contexts(routes):
        path: str | None = route.path
        if path is None:
            continue
        if isinstance(route.original_route, Mount):
            path = f"{path.rstrip('/')}/{{path:path}}"
        pattern, template, _convertors = compile_path(path)
        methods: set[str] | None = route.methods
        yield RouteTemplate(template, pattern, frozenset(methods) if methods else None)
