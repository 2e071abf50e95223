"""/readyz of a real ``vpsorg serve`` follows its database: 503 when PostgreSQL stops, 200
when it is back. The cluster is the test's own (initdb on a free port), never a shared one."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import Installation, free_port

pytestmark = pytest.mark.e2e

PROBE_TIMEOUT = 5.0  # /readyz must answer within its 2 s database timeout, and then some


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster, run as the ``postgres`` user when the test is root."""

    bin: Path
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.run(
            "initdb",
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "postgres.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb is not installed")
    # Not under pytest's tmp_path: its parents are private to root, and postgres runs the server.
    directory = Path(tempfile.mkdtemp(prefix="vpsorg-readyz-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    made = Cluster(bin_dir, directory, free_port())
    made.init()
    made.start()
    try:
        yield made
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            made.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_readyz(client: httpx.Client, status: int, within: float) -> dict[str, object]:
    deadline = time.monotonic() + within
    while True:
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < PROBE_TIMEOUT, "a readiness probe must never hang"
        if response.status_code == status:
            body: dict[str, object] = response.json()
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz never answered {status}: {response.text}")
        time.sleep(0.1)


def test_readyz_follows_the_database_down_and_back(cluster: Cluster, tmp_path: Path) -> None:
    installation = Installation(cluster.url, tmp_path)
    installation.run("db", "upgrade")
    server = installation.serve()
    try:
        with httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False) as client:
            assert _wait_for_readyz(client, 200, within=5)["failed"] == []

            cluster.stop("fast")
            down = _wait_for_readyz(client, 503, within=5)
            assert "database" in down["failed"], down
            assert client.get("/healthz").status_code == 200, "alive, only not ready"

            cluster.start()
            assert _wait_for_readyz(client, 200, within=15)["failed"] == []
    finally:
        installation.stop_all()
