"""End-to-end fixtures: set up an installation with the ``vpsorg`` CLI, serve it over TCP.

The database comes from the ``databases`` fixture of tests/conftest.py, so
``--db postgresql://...`` runs these tests on PostgreSQL too. When a test fails, the log
of every ``vpsorg`` process it started is attached to the report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from tests.e2e.processes import Deployment, Installation, MakeInstallation

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

INSTALLATIONS = pytest.StashKey[list[Installation]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for node in item.listchain():
            for installation in node.stash.get(INSTALLATIONS, []):
                for title, text in installation.logs():
                    report.sections.append((title, text or "(empty)"))
    return report


def _installations(
    databases: DatabaseProvider, directory: Path, node: pytest.Item | pytest.Collector
) -> Iterator[MakeInstallation]:
    made: list[Installation] = node.stash.setdefault(INSTALLATIONS, [])

    def make(**settings: Any) -> Installation:
        workdir = directory / f"installation-{len(made) + 1}"
        workdir.mkdir()
        installation = Installation(databases.fresh(workdir), workdir, **settings)
        made.append(installation)
        installation.run("db", "upgrade")
        return installation

    try:
        yield make
    finally:
        for installation in made:
            installation.stop_all()
    for installation in made:
        for title, text in installation.logs():
            assert "Traceback" not in text, f"{title} shows an unhandled error:\n{text}"


def _deploy(make: MakeInstallation, **settings: Any) -> Iterator[Deployment]:
    installation = make(**settings)
    user = installation.create_user()
    process = installation.serve()
    with httpx.Client(base_url=process.base_url, timeout=10.0, trust_env=False) as client:
        yield Deployment(installation, process, user, client)


@pytest.fixture
def installations(
    databases: DatabaseProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeInstallation]:
    """Make installations (``make(simulator_delay=2, ...)``); their processes stop afterwards."""
    yield from _installations(databases, tmp_path, request.node)


@pytest.fixture
def deployment(installations: MakeInstallation) -> Iterator[Deployment]:
    """A served installation (simulator delay 0) with an account holding 100 credits."""
    yield from _deploy(installations)


@pytest.fixture(scope="module")
def module_installations(
    databases: DatabaseProvider,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[MakeInstallation]:
    yield from _installations(databases, tmp_path_factory.mktemp("e2e"), request.node)


@pytest.fixture(scope="module")
def shared_deployment(module_installations: MakeInstallation) -> Iterator[Deployment]:
    """Like ``deployment``, but one for the whole module: start-up costs seconds."""
    yield from _deploy(module_installations)


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("VPSORG_REQUIRE_BROWSER"):
        pytest.fail(f"VPSORG_REQUIRE_BROWSER is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable(f"selenium is not installed ({exc}): pip install -e '.[dev]'")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        unavailable("chromium or chromedriver is missing (run scripts/ensure-chromium)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        # Offline: any name but 127.0.0.1 fails to resolve, so a CDN asset could not load.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--no-proxy-server",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()
