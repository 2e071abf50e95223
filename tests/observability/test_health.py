"""/healthz and /readyz through HTTP: no token, not in OpenAPI, 503 naming what failed."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import text

from vpsorg.db import transaction
from vpsorg.observability import health


async def test_healthz_answers_without_a_token(client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_is_200_when_everything_is_fine(client):
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "migrations": "ok", "driver": "ok", "worker": "ok"},
    }


@pytest.mark.settings(embedded_worker=False)
async def test_readyz_does_not_ask_for_a_worker_when_none_is_embedded(client):
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert "worker" not in response.json()["checks"]


async def test_readyz_is_503_when_the_database_is_behind_the_code(client, app):
    async with transaction(app.state.runtime.sessions) as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'"))

    response = await client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["migrations"]
    assert "a1b2c3d4e5f6" in body["checks"]["migrations"]
    assert "vpsorg db upgrade" in body["checks"]["migrations"]
    assert body["checks"]["database"] == "ok"


async def test_readyz_is_503_when_the_database_was_never_migrated(client, app):
    async with transaction(app.state.runtime.sessions) as session:
        await session.execute(text("DROP TABLE alembic_version"))

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["migrations"]
    assert "revision none" in response.json()["checks"]["migrations"]


async def test_readyz_is_503_when_the_driver_probe_failed(client, app, monkeypatch):
    runtime = app.state.runtime

    async def broken_probe() -> str:
        raise RuntimeError("cannot connect to qemu:///system")

    monkeypatch.setattr(runtime.driver, "probe", broken_probe)
    with pytest.raises(RuntimeError):
        await runtime.probe_driver()

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["driver"]
    assert "cannot connect to qemu:///system" in response.json()["checks"]["driver"]
    monkeypatch.undo()
    await runtime.probe_driver()
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_the_worker_stopped_beating(client, app, monkeypatch):
    an_hour_later = time.monotonic() + 3600
    monkeypatch.setattr(health, "monotonic", lambda: an_hour_later)

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["worker"]
    # The worker may beat between reading the clock above and the request: 3599 s, then.
    assert re.search(r"no heartbeat for 3(599|600) s", response.json()["checks"]["worker"])


async def test_readyz_is_503_when_the_worker_has_stopped(client, app):
    await app.state.runtime.worker.stop()

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == "the embedded worker is not running"


async def test_probes_and_metrics_are_not_api_operations(client):
    document = (await client.get("/api/v1/openapi.json")).json()

    for path in ("/healthz", "/readyz", "/metrics"):
        assert path not in document["paths"]
