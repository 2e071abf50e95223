"""The servers under test, as real child processes on TCP ports, and the ``vpsorg`` CLI."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.errors import BenchError
from bench.reference_app import LOG_LEVEL

VPSORG = Path(sys.executable).parent / "vpsorg"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0  # above vpsorg's own graceful shutdown (worker grace 10 s)
CLI_TIMEOUT = 60.0
LOG_TAIL_LINES = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BENCH_RATE_LIMITS = "1000000/minute,60000000/hour"


def vpsorg_environment(database_url: str, workdir: Path) -> dict[str, str]:
    """The environment an operator would set: database, simulator, log level; rate limits on,
    raised so that the benchmark's one token and one address are never refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSORG_")}
    env.update(
        PYTHONUNBUFFERED="1",
        VPSORG_DATABASE_URL=database_url,
        VPSORG_SIMULATOR_DELAY="0",
        VPSORG_SIMULATOR_STATE_DIR=str(workdir / "simulator"),
        VPSORG_LOG_LEVEL=LOG_LEVEL,
        # Counted on every request as in production (the cost does not grow with the limit);
        # raised, not removed: the benchmark's clients share one address and few tokens.
        VPSORG_RATE_LIMITS=BENCH_RATE_LIMITS,
    )
    return env


def run_cli(env: dict[str, str], workdir: Path, *args: str) -> str:
    """Run ``vpsorg ARGS`` and return its stdout, stripped; a failure is a BenchError."""
    command = f"vpsorg {' '.join(args)}"
    try:
        result = subprocess.run(
            [str(VPSORG), *args],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{command} failed: {exc}") from exc
    if result.returncode != 0:
        raise BenchError(
            f"{command} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout.strip()


class Service:
    """A server child process on a TCP port of 127.0.0.1, logging to a file.

    It runs in a session of its own, so a Ctrl-C in the terminal reaches only the benchmark,
    which then stops it in order (servers first, then the database they use).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        port: int,
        ready_path: str,
        workdir: Path,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.ready_path = ready_path
        self.log_path = workdir / f"{name}.log"
        if cpu is not None:
            argv = ["taskset", "--cpu-list", str(cpu), *argv]  # threads and children too
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``ready_path`` answers 200; a BenchError with the log if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not answer on {self.base_url} within {timeout:g} s; "
                    f"its log ends with:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
        try:
            connection.request("GET", self.ready_path)
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def resident_mb(self) -> float | None:
        """The process's resident memory (VmRSS), in MB."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def check_alive(self) -> None:
        if not self.running:
            raise BenchError(
                f"{self.name} (pid {self.process.pid}) exited with {self.process.returncode}; "
                f"its log ends with:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            self.process.kill()
            self.process.wait()


def start_reference(workdir: Path, cpu: int | None = None) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "bench.reference_app", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": _pythonpath_with_bench()}
    return Service("reference", argv, port=port, ready_path="/", workdir=workdir, env=env, cpu=cpu)


def start_same_work(database_url: str, workdir: Path, cpu: int | None = None) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "bench.same_work", "--port", str(port), "--db", database_url]
    env = {**os.environ, "PYTHONPATH": _pythonpath_with_bench()}
    return Service("same-work", argv, port=port, ready_path="/", workdir=workdir, env=env, cpu=cpu)


def start_vpsorg(
    env: dict[str, str], workdir: Path, cpu: int | None = None, *, worker: bool = True
) -> Service:
    port = free_port()
    argv = [str(VPSORG), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    return Service(
        "vpsorg-serve" if worker else "vpsorg-serve-no-worker",
        argv,
        port=port,
        ready_path="/api/v1/openapi.json",
        workdir=workdir,
        env=env,
        cpu=cpu,
    )


def start_worker(
    env: dict[str, str], workdir: Path, name: str, concurrency: int, cpu: int | None = None
) -> Service:
    """``vpsorg worker``: no port to ask, so nobody calls ``wait_until_ready`` on it."""
    argv = [str(VPSORG), "worker", "--concurrency", str(concurrency)]
    return Service(name, argv, port=0, ready_path="", workdir=workdir, env=env, cpu=cpu)


def _pythonpath_with_bench() -> str:
    """PYTHONPATH with the directory holding ``bench``: the reference runs in the temp dir."""
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
