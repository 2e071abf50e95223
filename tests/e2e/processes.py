"""Real vpsorg processes for end-to-end tests: the ``vpsorg`` CLI, and ``vpsorg serve`` on TCP.

An ``Installation`` is what an operator has on disk: a database, a simulator state
directory, and the ``VPSORG_*`` environment that names them. Every command runs the
``vpsorg`` console script of the venv running the tests, in a child process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

VPSORG = Path(sys.executable).parent / "vpsorg"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0  # above the server's own graceful shutdown (worker grace 10 s)
CLI_TIMEOUT = 60.0
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def curl_headers(token: str) -> dict[str, str]:
    """The two headers every example in the spec sends."""
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@dataclass(frozen=True)
class User:
    account_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return curl_headers(self.token)


class VpsorgProcess:
    """One long-running ``vpsorg`` child process (``serve`` or ``worker``) and its log file."""

    def __init__(
        self, installation: Installation, args: list[str], log_path: Path, port: int | None = None
    ) -> None:
        self.args = args
        self.port = port
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(VPSORG), *args],
                env=installation.env,
                cwd=installation.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the port answers HTTP; fail with the log if the process dies first."""
        deadline = time.monotonic() + timeout
        name = f"vpsorg {self.args[0]}"
        while True:
            if not self.running:
                raise RuntimeError(
                    f"{name} exited with {self.process.returncode} before answering on "
                    f"{self.base_url}:\n{self.log()}"
                )
            try:
                httpx.get(f"{self.base_url}/api/v1/openapi.json", timeout=1.0, trust_env=False)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"{name} did not answer on {self.base_url} within {timeout}s:\n{self.log()}"
                    ) from None
                time.sleep(0.02)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``. Returns the exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to finish or release anything."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait()


class Installation:
    """A database and a simulator state directory, driven through the ``vpsorg`` command."""

    def __init__(self, database_url: str, workdir: Path, **settings: Any) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.processes: list[VpsorgProcess] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPSORG_")}
        env.update(
            PYTHONUNBUFFERED="1",
            VPSORG_DATABASE_URL=database_url,
            VPSORG_SIMULATOR_STATE_DIR=str(workdir / "sim"),
            VPSORG_SIMULATOR_DELAY="0",
            VPSORG_WORKER_POLL_INTERVAL="0.05",
            VPSORG_LOG_LEVEL="warning",
            VPSORG_RATE_LIMITS="",  # tests/ratelimit turn them on
        )
        env.update({f"VPSORG_{name.upper()}": str(value) for name, value in settings.items()})
        self.env = env

    @property
    def simulator_dir(self) -> Path:
        return Path(self.env["VPSORG_SIMULATOR_STATE_DIR"])

    # -- the CLI -------------------------------------------------------------------------

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``vpsorg ARGS`` (``stdin`` its input); with ``check``, a failure shows both streams."""
        feed: dict[str, Any] = (
            {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        )
        result = subprocess.run(
            [str(VPSORG), *args],
            **feed,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"vpsorg {' '.join(args)} exited with {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def create_user(self, name: str = "customer", credits: float = 100) -> User:
        """``accounts create`` then ``tokens create``, as an operator would."""
        account_id = int(self.run("accounts", "create", name, "--credits", f"{credits:g}").stdout)
        token = self.run("tokens", "create", str(account_id)).stdout.strip()
        return User(account_id, token)

    # -- serve ---------------------------------------------------------------------------

    def serve(self, *options: str) -> VpsorgProcess:
        """Start ``vpsorg serve`` on a free port and wait until it answers."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), *options]
        process = self._start(args, port)
        process.wait_until_ready()
        return process

    def worker(self, *options: str) -> VpsorgProcess:
        """Start a standalone ``vpsorg worker``."""
        return self._start(["worker", *options])

    def _start(self, args: list[str], port: int | None = None) -> VpsorgProcess:
        log_path = self.workdir / f"{args[0]}-{len(self.processes) + 1}.log"
        process = VpsorgProcess(self, args, log_path, port)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate()

    def logs(self) -> list[tuple[str, str]]:
        return [(f"vpsorg {' '.join(p.args)} (pid {p.pid}) log", p.log()) for p in self.processes]

    # -- looking behind the API ----------------------------------------------------------

    def actions(self, server_id: int) -> list[dict[str, Any]]:
        """The server's rows in the action queue, oldest first (read-only)."""
        url = self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = sa.create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT id, command, status, attempts, claimed_by, error_code "
                        "FROM actions WHERE server_id = :id ORDER BY id"
                    ),
                    {"id": server_id},
                )
                return [dict(row._mapping) for row in rows]
        finally:
            engine.dispose()


MakeInstallation = Callable[..., Installation]


@dataclass
class Deployment:
    """A served installation with one account: what a client of the API has."""

    installation: Installation
    process: VpsorgProcess
    user: User
    client: httpx.Client

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def token(self) -> str:
        return self.user.token


def wait_for_status(
    client: httpx.Client, user: User, server_id: int, status: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll GET /api/v1/servers/ID/ until the server has ``status``; return its detail."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/servers/{server_id}/", headers=user.headers)
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and body["status"] == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server_id} never reached {status!r}: {body}")
        time.sleep(0.01)


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll ``condition()`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return result
