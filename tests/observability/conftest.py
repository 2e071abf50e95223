"""Observability fixtures: settings a test chooses, a log capture through vpsorg's formatter,
and the /metrics document parsed.

``@pytest.mark.settings(metrics_token="...")`` overrides the app's settings.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from tests.e2e.conftest import installations, pytest_runtest_makereport
from vpsorg.config import Settings
from vpsorg.logs import make_handler

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

__all__ = ["installations", "pytest_runtest_makereport"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): the app's settings")


@pytest.fixture
def settings(
    databases: DatabaseProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    marker = request.node.get_closest_marker("settings")
    overrides = marker.kwargs if marker else {}
    return make_settings(databases.fresh(tmp_path), tmp_path, **overrides)


@dataclass
class JsonLog:
    """What vpsorg's JSON handler wrote while the test ran, one dict per line."""

    stream: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def by(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == logger]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield JsonLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the process has not produced it yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)
