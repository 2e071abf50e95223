"""Test fixtures: a fresh database per test, the app with its lifespan, an HTTP client.

The database is SQLite by default. ``--db postgresql://postgres@127.0.0.1:5432/postgres``
(or ``VPSORG_TEST_DATABASE_URL``) runs the same suite on PostgreSQL: migrations build a
template database once, and each test gets ``CREATE DATABASE ... TEMPLATE`` of it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from tests.factories import Factory
from vpsorg import migrate
from vpsorg.app import create_app
from vpsorg.config import Settings

ONCE = ("tests/realguest/", "tests/guest/")
"""Real QEMU guests prove the driver, not the database: they run in the SQLite pass only."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--db") == "sqlite":
        return
    root = config.rootpath
    once = [item for item in items if item.path.relative_to(root).as_posix().startswith(ONCE)]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if item not in once]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--schemathesis",
        action="store_true",
        help="also run tests/e2e/test_schemathesis.py: Schemathesis against a live server, for minutes",
    )
    parser.addoption(
        "--db",
        default=os.environ.get("VPSORG_TEST_DATABASE_URL", "sqlite"),
        help="'sqlite' (default) or a PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1/postgres",
    )


class DatabaseProvider:
    """Hands out fresh, migrated databases."""

    def __init__(self, target: str, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir
        self.created: list[str] = []
        if target == "sqlite":
            self.template = workdir / "template.db"
            migrate.upgrade(f"sqlite:///{self.template}")
        else:
            self.admin_url = target.split("://", 1)[1].join(("postgresql://", ""))
            self.url_scheme = target.split("://", 1)[0]
            self.template_name = f"vpsorg_tpl_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{self.template_name}"')
            migrate.upgrade(self._url(self.template_name))

    @property
    def is_postgres(self) -> bool:
        return self.target != "sqlite"

    def _url(self, name: str) -> str:
        base, _, _db = self.admin_url.rpartition("/")
        return f"{base}/{name}".replace("postgresql://", f"{self.url_scheme}://", 1)

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh(self, directory: Path) -> str:
        if not self.is_postgres:
            path = directory / "vpsorg.db"
            shutil.copy(self.template, path)
            return f"sqlite:///{path}"
        name = f"vpsorg_t_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"')
        self.created.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        if self.is_postgres:
            for name in [*self.created, self.template_name]:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseProvider]:
    provider = DatabaseProvider(request.config.getoption("--db"), tmp_path_factory.mktemp("db"))
    yield provider
    provider.drop_all()


@pytest.fixture
def settings(databases: DatabaseProvider, tmp_path: Path) -> Settings:
    return make_settings(databases.fresh(tmp_path), tmp_path)


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "simulator_delay": 0.0,
        "simulator_state_dir": tmp_path / "simulator",
        "worker_poll_interval": 0.05,
        "usage_interval": 3600.0,
        "reconcile_interval": 3600.0,
        "action_lease_seconds": 5.0,
        "log_level": "warning",
        "rate_limits": "",  # tests/ratelimit turn them on
        "allowed_hosts": ["testserver", "localhost", "127.0.0.1"],  # httpx's ASGI client
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def factory(app: FastAPI, client: httpx.AsyncClient) -> Factory:
    return Factory(app.state.runtime, client)


@pytest.fixture
async def user(factory: Factory) -> Any:
    """An account with 100 credits and a token: the usual caller."""
    return await factory.account(credits=100)
