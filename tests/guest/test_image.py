"""The test guest boots under plain QEMU (TCG, no libvirt), reads its seed and powers off.

Skips when this machine cannot build or run the guest, unless VPSORG_REQUIRE_LIBVIRT is set
(as in CI), in which case it fails.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guest.image import (
    BOOT_LINE,
    HOSTNAME_PREFIX,
    NO_SEED_LINE,
    POWER_BUTTON_LINE,
    Guest,
    GuestUnavailable,
    build_guest,
    write_seed_iso,
)
from tests.requirements import unavailable

QEMU = "qemu-system-x86_64"
META_DATA = "instance-id: i-test\nlocal-hostname: guest-test.example.com\n"


@pytest.fixture(scope="session")
def guest() -> Guest:
    if shutil.which(QEMU) is None:
        unavailable(f"{QEMU} is not installed")
    started = time.monotonic()
    try:
        built = build_guest()
    except GuestUnavailable as exc:
        unavailable(f"the test guest cannot be built: {exc.reason}")
    print(
        f"\ntest guest ready in {time.monotonic() - started:.1f} s: kernel {built.kernel_version}"
    )
    return built


class Qemu:
    """One qemu-system-x86_64 run of the guest, its serial console in a file, QMP on a socket."""

    def __init__(self, guest: Guest, workdir: Path, seed: Path | None) -> None:
        self.log = workdir / "serial.log"
        self.qmp_path = workdir / "qmp.sock"
        overlay = workdir / "overlay.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                str(guest.disk),
                str(overlay),
            ],
            check=True,
        )
        cmd = [
            QEMU,
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nographic",
            "-no-reboot",
            "-kernel",
            str(guest.kernel),
            "-initrd",
            str(guest.initrd),
            "-append",
            guest.cmdline,
            "-drive",
            f"file={overlay},if=virtio,format=qcow2",
        ]
        if seed is not None:
            cmd += ["-drive", f"file={seed},if=virtio,format=raw,readonly=on"]
        cmd += [
            "-serial",
            f"file:{self.log}",
            "-qmp",
            f"unix:{self.qmp_path},server,nowait",
            "-display",
            "none",
        ]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def console(self) -> str:
        try:
            return self.log.read_text(errors="replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The first console line starting with ``prefix``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.console().splitlines():
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"no {prefix!r} line within {timeout} s; console:\n{self.console()}")

    def qmp(self, command: str) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_path))
            stream = sock.makefile("rwb")

            def execute(name: str) -> dict[str, Any]:
                stream.write(json.dumps({"execute": name}).encode() + b"\n")
                stream.flush()
                while True:  # skip asynchronous events until the command's answer
                    reply: dict[str, Any] = json.loads(stream.readline())
                    if "return" in reply or "error" in reply:
                        return reply

            json.loads(stream.readline())  # the greeting
            execute("qmp_capabilities")
            return execute(command)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate()
        return out.decode(errors="replace")


@pytest.fixture
def run_qemu(guest: Guest, tmp_path: Path) -> Iterator[Callable[[Path | None], Qemu]]:
    runs: list[Qemu] = []

    def start(seed: Path | None) -> Qemu:
        runs.append(Qemu(guest, tmp_path, seed))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def test_guest_boots_reads_its_seed_and_powers_off_on_the_power_button(
    run_qemu: Callable[[Path | None], Qemu], tmp_path: Path
) -> None:
    seed = tmp_path / "seed.iso"
    write_seed_iso(seed, META_DATA)
    vm = run_qemu(seed)

    line = vm.wait_for_line(HOSTNAME_PREFIX, timeout=60)
    booted = time.monotonic() - vm.started
    print(f"\nguest booted under TCG in {booted:.1f} s (qemu start -> hostname line)")
    assert line == f"{HOSTNAME_PREFIX}guest-test.example.com"

    assert "return" in vm.qmp("system_powerdown")
    code = vm.wait_exit(timeout=30)
    console = vm.console()
    assert code is not None, f"QEMU still runs 30 s after system_powerdown; console:\n{console}"
    assert code == 0, vm.kill()
    lines = console.splitlines()
    assert POWER_BUTTON_LINE in lines, console
    assert lines.count(BOOT_LINE) == 1, console


def test_guest_without_seed_says_so(run_qemu: Callable[[Path | None], Qemu]) -> None:
    vm = run_qemu(None)
    assert vm.wait_for_line("vpsorg-guest: no seed", timeout=60) == NO_SEED_LINE
    assert HOSTNAME_PREFIX not in vm.console()
