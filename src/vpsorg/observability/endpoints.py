"""``/healthz``, ``/readyz`` and ``/metrics``: outside /api/v1, no API token, not in OpenAPI."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from vpsorg.errors import NotAuthenticated
from vpsorg.observability import collectors, health

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and answers; touches nothing else (a liveness probe)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when this process can serve; 503 naming what failed (a readiness probe)."""
    checks = await health.readiness(request.app.state.runtime)
    failed = [check.name for check in checks if not check.ok]
    body: dict[str, Any] = {
        "status": "unavailable" if failed else "ok",
        "failed": failed,
        "checks": {check.name: check.problem or "ok" for check in checks},
    }
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format; with ``VPSORG_METRICS_TOKEN`` set, only for that Bearer token."""
    _check_metrics_token(request)
    body = await collectors.render(request.app.state.runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_metrics_token(request: Request) -> None:
    expected: str | None = request.app.state.settings.metrics_token
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise NotAuthenticated("Use 'Authorization: Bearer METRICS_TOKEN' (VPSORG_METRICS_TOKEN).")
