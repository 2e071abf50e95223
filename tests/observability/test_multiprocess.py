"""Several processes, one /metrics: with PROMETHEUS_MULTIPROC_DIR, the API process's /metrics
adds up what a separate ``vpsorg worker`` counted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import MakeInstallation, wait_for_status, wait_until
from tests.factories import SERVER

pytestmark = pytest.mark.e2e


def _created_by_actions(client: httpx.Client) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "vpsorg_actions_total" and sample.labels == {
                "command": "create",
                "outcome": "success",
            }:
                return sample.value
    return 0.0


def test_a_separate_worker_s_actions_show_in_the_api_s_metrics(
    installations: MakeInstallation, tmp_path: Path
) -> None:
    installation = installations()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    installation.env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    user = installation.create_user()
    api = installation.serve("--no-worker")
    installation.worker()

    with httpx.Client(base_url=api.base_url, timeout=10.0, trust_env=False) as client:
        created = client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
        assert created.status_code == 201, created.text
        wait_for_status(client, user, created.json()["id"], "active")

        assert wait_until(lambda: _created_by_actions(client) == 1, "the worker's count")
        assert "worker" not in client.get("/readyz").json()["checks"]
