"""Real processes and sockets for the client's tests: ``vpsorg serve`` (the simulator
driver), the operator CLI that makes accounts, and a TCP proxy that misbehaves on cue."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0


def vpsorg_command() -> str:
    """The ``vpsorg`` of this venv (tests run in the server's venv), else the one on PATH."""
    local = BIN / "vpsorg"
    found = str(local) if local.exists() else shutil.which("vpsorg")
    if found is None:
        raise RuntimeError("these tests need the vpsorg server installed (`vpsorg serve`)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Installation:
    """A database and simulator directory, and the VPSORG_* environment naming them."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VPSORG_", "VPS_"))}
        env.update(
            PYTHONUNBUFFERED="1",
            VPSORG_DATABASE_URL=f"sqlite:///{self.workdir / 'vpsorg.db'}",
            VPSORG_SIMULATOR_STATE_DIR=str(self.workdir / "sim"),
            VPSORG_SIMULATOR_DELAY="0.2",
            VPSORG_WORKER_POLL_INTERVAL="0.05",
            VPSORG_LOG_LEVEL="warning",
            VPSORG_RATE_LIMITS="",
            VPSORG_DEMO_CREDITS="100",
        )
        self.env = env

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [vpsorg_command(), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise AssertionError(f"vpsorg {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout.strip()

    def create_user(self, name: str, credits: float = 100) -> str:
        """An account (operator CLI) and its token."""
        account_id = self.run("accounts", "create", name, "--credits", f"{credits:g}")
        return self.run("tokens", "create", account_id.split()[-1])

    def serve(self, *options: str, **settings: str) -> str:
        """Start ``vpsorg serve`` on a free port; its base URL once it answers."""
        port = free_port()
        env = {**self.env, **{f"VPSORG_{k.upper()}": v for k, v in settings.items()}}
        log = open(self.workdir / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed by exit)
        process = subprocess.Popen(
            [vpsorg_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                text = (self.workdir / f"serve-{port}.log").read_text(errors="replace")
                raise RuntimeError(f"vpsorg serve exited:\n{text}")
            try:
                httpx.get(f"{url}/api/v1/openapi.json", timeout=1.0, trust_env=False)
                return url
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("vpsorg serve did not answer in time") from None
                time.sleep(0.05)

    def fail_next(self, operation: str, server_id: int, message: str = "simulated failure") -> None:
        """Make the simulator fail the server's next ``operation`` (what ``vpsorg simulator
        fail`` does, in-process: the CLI takes seconds to start on a busy machine)."""
        from vpsorg.drivers.simulator import SimulatorDriver

        driver = SimulatorDriver(Path(self.env["VPSORG_SIMULATOR_STATE_DIR"]), 0.2)
        driver.inject_fault(operation, message, machine=f"vps-{server_id}", times=1)

    def demo_token(self, url: str) -> str:
        """The token ``serve --demo`` printed for the demo account it made."""
        log = (self.workdir / f"serve-{url.rpartition(':')[2]}.log").read_text()
        found = re.search(r"Its API token:\s+(vps_\S+)", log)
        if found is None:
            raise RuntimeError(f"no demo token in the log of vpsorg serve:\n{log}")
        return found.group(1)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


# Unanchored: a request may follow the previous one's JSON body on the same "line".
REQUEST_LINE = re.compile(rb"(GET|POST|PUT|PATCH|DELETE) (/\S*) HTTP/1\.1\r\n")
KEY_HEADER = re.compile(rb"(?im)^idempotency-key: *(\S+)\r$")
REPLAYED_HEADER = re.compile(rb"(?im)^idempotent-replayed: *true\r$")

Spoiler = Callable[[socket.socket, socket.socket], None]


class FlakyProxy:
    """A TCP proxy to ``upstream`` that spoils its first ``times`` connections:

    * ``drop_response``: the request reaches the API (which acts on it), then the client's
      connection is closed before any of the answer is sent back;
    * ``reply=b"HTTP/1.1 503 ..."``: the API is not reached, the client gets this answer.

    Later connections are forwarded intact. Everything sent each way is recorded.
    """

    def __init__(
        self, upstream: str, *, times: int = 1, drop_response: bool = False, reply: bytes = b""
    ) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.times = times
        self.drop_response = drop_response
        self.reply = reply
        self.connections = 0
        self.sent = bytearray()  # client -> API
        self.received = bytearray()  # API -> client
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def requests(self) -> list[tuple[str, str]]:
        return [(m.decode(), p.decode()) for m, p in REQUEST_LINE.findall(bytes(self.sent))]

    def idempotency_keys(self) -> list[str]:
        return [key.decode() for key in KEY_HEADER.findall(bytes(self.sent))]

    def replays(self) -> int:
        return len(REPLAYED_HEADER.findall(bytes(self.received)))

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                spoil = self.connections <= self.times
            threading.Thread(target=self._handle, args=(client, spoil), daemon=True).start()

    def _handle(self, client: socket.socket, spoil: bool) -> None:
        with client:
            if spoil and self.reply:
                self._record(self.sent, client.recv(65536))
                client.sendall(self.reply)
                return
            with socket.create_connection(self.upstream) as upstream:
                threading.Thread(
                    target=self._pump, args=(client, upstream, self.sent), daemon=True
                ).start()
                if spoil and self.drop_response:
                    upstream.recv(1)  # the API has answered, so it has acted: drop the answer
                    # shutdown, not just close: the pump thread's recv holds the socket open
                    client.shutdown(socket.SHUT_RDWR)
                    return
                self._pump(upstream, client, self.received)

    def _pump(self, source: socket.socket, target: socket.socket, log: bytearray) -> None:
        try:
            while data := source.recv(65536):
                self._record(log, data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def _record(self, log: bytearray, data: bytes) -> None:
        with self.lock:
            log.extend(data)


class CountingTransport(httpx.HTTPTransport):
    """Records each request the SDK sends: (method, path, query, status)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        query = request.url.query.decode()
        self.calls.append((request.method, request.url.path, query, response.status_code))
        return response
