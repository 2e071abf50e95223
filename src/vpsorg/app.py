"""The FastAPI application: routers, error handlers, middleware and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from vpsorg import __version__
from vpsorg.accounts.endpoints import router as account_router
from vpsorg.actions.endpoints import router as actions_router
from vpsorg.api import BEARER, operation_id, strict_query
from vpsorg.audit.endpoints import router as audit_router
from vpsorg.auth.endpoints import router as tokens_router
from vpsorg.backups.endpoints import router as backups_router
from vpsorg.catalog.endpoints import router as catalog_router
from vpsorg.config import Settings, get_settings
from vpsorg.docs import install_docs
from vpsorg.errors import install_error_handlers
from vpsorg.idempotency.middleware import Idempotency
from vpsorg.logs import redact_access_log
from vpsorg.middleware import HeadAsGet, RequestGuard
from vpsorg.observability.endpoints import router as observability_router
from vpsorg.observability.middleware import ObserveRequests
from vpsorg.openapi import install_openapi
from vpsorg.openapi import router as openapi_router
from vpsorg.panel import install_panel
from vpsorg.ratelimit import Limiter, RateLimit
from vpsorg.runtime import Runtime
from vpsorg.servers.endpoints import router as servers_router
from vpsorg.transactions import RequestTransaction

log = logging.getLogger(__name__)

RATE_LIMIT_HEADERS = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"]

DESCRIPTION = """
The VPS.org Servers API: create, configure, control and monitor virtual private servers.

Authenticate with `Authorization: Bearer YOUR_API_TOKEN`. Every error is JSON:
`{"detail": "...", "code": "...", "errors": {"field": ["message"]}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    limiter = Limiter.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.probe_driver()
        runtime.listen_for_actions()
        redact_access_log()
        if settings.embedded_worker:
            runtime.start_worker()
        try:
            yield
        finally:
            await runtime.close()
            if limiter is not None:
                await limiter.close()

    app = FastAPI(
        title="vpsorg",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # served with the live catalog by vpsorg.openapi
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        generate_unique_id_function=operation_id,
        # BEARER only documents the scheme; CurrentAccount answers a missing token.
        dependencies=[Depends(strict_query), Depends(BEARER)],
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(servers_router)
    app.include_router(backups_router)
    app.include_router(actions_router)
    app.include_router(account_router)
    app.include_router(audit_router)
    app.include_router(catalog_router)
    app.include_router(tokens_router)
    app.include_router(openapi_router)
    app.include_router(observability_router)
    install_panel(app, settings)  # the web panel: its pages, assets and error pages
    # Innermost: sees screened bodies, never a 429; runs a key's first request in the
    # transaction RequestTransaction opened.
    app.add_middleware(Idempotency)
    # Owns each API write's one transaction: effect, stored response and audit event, one
    # commit before the response goes out; outside Idempotency, so its replays and refusals
    # are recorded too; inside RateLimit, so a flood of 429s costs no insert (see
    # vpsorg.transactions).
    app.add_middleware(RequestTransaction, trusted_proxies=settings.trusted_proxies)
    # Inside RequestGuard, so a 429 has its X-Request-ID; before any route, so it costs no query.
    app.add_middleware(RateLimit, limiter=limiter, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        allowed_hosts=None if settings.public_url else settings.allowed_hosts,
    )
    app.add_middleware(HeadAsGet)
    if settings.cors_origins:
        # Browsers may call the API with fetch(); tokens travel in a header, never in cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
            expose_headers=["X-Request-ID", "Idempotent-Replayed", *RATE_LIMIT_HEADERS],
            max_age=600,
        )
    # Outermost: counts and logs every request, CORS preflights and RequestGuard's 4xx too.
    app.add_middleware(ObserveRequests, routes=app.router.routes)
    install_openapi(app, rate_limited=limiter is not None)
    install_docs(app)
    return app
