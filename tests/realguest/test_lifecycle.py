"""A real guest through the HTTP API: libvirt, QEMU, a kernel that boots, cloud-init's seed.

The guest is built at test time from Debian's packages (tests/guest/image.py): Debian's
kernel with a busybox initramfs that mounts the NoCloud seed, prints the hostname it finds
on the serial console, and powers off on the ACPI power button. It is registered with
``vpsorg os add`` like any OS image, and everything else goes through the API of a real
``vpsorg serve`` with ``VPSORG_DRIVER=libvirt`` on ``qemu:///system``.

Skips on a machine without libvirt, saying why; fails instead when VPSORG_REQUIRE_LIBVIRT
is set (CI sets it: .ci/run).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.drivers.test_seed import FILES, read
from tests.e2e.processes import Installation, VpsorgProcess
from tests.guest.image import Guest
from tests.requirements import libvirt_driver, require_guest, require_libvirtd

pytestmark = pytest.mark.e2e

URI = "qemu:///system"
HOSTNAME = "e2e-guest.example.com"
BOOT = "vpsorg-guest: boot"
SEEN_HOSTNAME = f"vpsorg-guest: hostname={HOSTNAME}"
POWER_BUTTON = "vpsorg-guest: power button"
STOP_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def guest() -> Guest:
    require_libvirtd(URI)
    return require_guest()


@pytest.fixture
def installation(databases: Any, tmp_path: Path) -> Iterator[Installation]:
    pool = f"vpsorg-e2e-{uuid.uuid4().hex[:8]}"
    installation = Installation(
        databases.fresh(tmp_path), tmp_path, driver="libvirt", libvirt_uri=URI,
        libvirt_pool=pool, libvirt_pool_path=tmp_path / "pool", libvirt_network="",
        stop_timeout=STOP_TIMEOUT, usage_interval=1, log_level="info",
    )  # fmt: skip
    yield installation
    installation.stop_all()
    _remove_leftovers(pool, tmp_path / "pool")


async def test_a_real_guest_boots_with_its_seed_and_obeys_the_api(
    installation: Installation, guest: Guest, capsys: pytest.CaptureFixture[str]
) -> None:
    base_digest = _sha256(guest.disk)
    os_id = installation.run(
        "os", "add", "Tiny Linux", "--image", str(guest.disk), "--kernel", str(guest.kernel),
        "--initrd", str(guest.initrd), "--cmdline", guest.cmdline,
    ).stdout.strip()  # fmt: skip
    user = installation.create_user()
    api = installation.serve()
    driver = libvirt_driver(installation)
    timings: dict[str, float] = {}

    async with httpx.AsyncClient(base_url=api.base_url, headers=user.headers, timeout=90) as http:
        started = time.monotonic()
        created = await http.post("/api/v1/servers/", json={
            "name": "e2e-guest", "plan_id": 3, "os_id": int(os_id), "location": "us-west",
            "hostname": HOSTNAME,
        })  # fmt: skip
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        machine = f"vps-{server_id}"
        await _finish(http, api, created.json()["action"]["id"])
        timings["POST to active"] = time.monotonic() - started
        console = await _console_until(driver, machine, SEEN_HOSTNAME, count=1)
        timings["POST to hostname on the guest's console"] = time.monotonic() - started

        detail = (await http.get(f"/api/v1/servers/{server_id}/")).json()
        assert detail["status"] == "active"
        pool = installation.workdir / "pool"
        _check_disk_and_seed(pool, machine, guest, detail)

        clock = time.monotonic()
        stop = await http.post(f"/api/v1/servers/{server_id}/stop/")
        assert stop.json()["server"]["status"] == "stopping"
        await _finish(http, api, stop.json()["action"]["id"])
        timings["stop (graceful ACPI shutdown)"] = time.monotonic() - clock
        console = await driver.console_log(machine) or ""
        # The guest heard the power button and powered itself off: not forced off.
        assert POWER_BUTTON in console
        assert "reboot: Power down" in console.split(POWER_BUTTON)[-1]
        assert (await http.get(f"/api/v1/servers/{server_id}/")).json()["status"] == "stopped"

        clock = time.monotonic()
        start = await http.post(f"/api/v1/servers/{server_id}/start/")
        await _finish(http, api, start.json()["action"]["id"])
        await _console_until(driver, machine, SEEN_HOSTNAME, count=2)
        timings["start to hostname on the console"] = time.monotonic() - clock

        clock = time.monotonic()
        reboot = await http.post(f"/api/v1/servers/{server_id}/reboot/")
        await _finish(http, api, reboot.json()["action"]["id"])
        console = await _console_until(driver, machine, SEEN_HOSTNAME, count=3)
        timings["reboot to hostname on the console"] = time.monotonic() - clock
        assert console.count(BOOT) == 3

        usage = await _sampled_usage(http, server_id)
        assert 0 <= usage["cpu_percent"] <= 100
        assert 0 < usage["memory_used"] <= 1024

        deleted = await http.delete(f"/api/v1/servers/{server_id}/")
        assert deleted.status_code == 204
        await _until_gone(driver, machine)

    leftovers = sorted(p.name for p in pool.iterdir() if p.name.startswith(f"{machine}"))
    assert leftovers == []
    assert _sha256(guest.disk) == base_digest  # the base image is never written
    with capsys.disabled():
        print("\n  real guest (libvirt, " + _accel(api) + "):")
        for what, seconds in timings.items():
            print(f"    {what}: {seconds:.1f} s")


# -- helpers ---------------------------------------------------------------------------------


async def _finish(http: httpx.AsyncClient, api: VpsorgProcess, action_id: int) -> dict[str, Any]:
    """Long-poll the action until it has finished; it must succeed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        action = (await http.get(f"/api/v1/actions/{action_id}/", params={"wait": 30})).json()
        if action["status"] in ("success", "error"):
            assert action["status"] == "success", f"{action}\n{api.log()}"
            return dict(action)
    raise AssertionError(f"action {action_id} did not finish\n{api.log()}")


async def _console_until(driver: Any, machine: str, line: str, count: int) -> str:
    deadline = time.monotonic() + 90
    console = ""
    while time.monotonic() < deadline:
        console = await driver.console_log(machine) or ""
        if console.count(line) >= count:
            return str(console)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{line!r} not seen {count} times on the console:\n{console}")


async def _sampled_usage(http: httpx.AsyncClient, server_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        usage = (await http.get(f"/api/v1/servers/{server_id}/")).json()["resource_usage"]
        if usage["memory_used"] > 0 or time.monotonic() > deadline:
            return dict(usage)
        await asyncio.sleep(0.5)


async def _until_gone(driver: Any, machine: str) -> None:
    from vpsorg.drivers.base import MachineState

    deadline = time.monotonic() + 60
    while await driver.state(machine) != MachineState.MISSING:
        assert time.monotonic() < deadline, f"{machine} still exists"
        await asyncio.sleep(0.2)


def _check_disk_and_seed(pool: Path, machine: str, guest: Guest, server: dict[str, Any]) -> None:
    """The disk is a copy-on-write overlay of the OS image; the seed carries the server."""
    from pycdlib import PyCdlib  # type: ignore[import-untyped]

    info = json.loads(subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", str(pool / f"{machine}.qcow2")],
        check=True, capture_output=True, text=True,
    ).stdout)  # fmt: skip
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(guest.disk)
    assert info["virtual-size"] == 25 * 1024**3  # plan 3's disk
    iso = PyCdlib()
    iso.open(str(pool / f"{machine}-seed.iso"))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        files = {name: read(iso, name).decode() for name in FILES}
    finally:
        iso.close()
    assert f"local-hostname: {HOSTNAME}" in files["meta-data"]
    assert server["ip_address"] in files["network-config"]
    assert server["ipv6_address"] in files["network-config"]


def _accel(api: VpsorgProcess) -> str:
    found = re.search(r"domain type (\w+)[^\n]*", api.log())
    return found.group(0) if found else "domain type not logged"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remove_leftovers(pool: str, pool_path: Path) -> None:
    """After a failure: destroy this test's machines and pool, so no QEMU keeps running."""
    listing = subprocess.run(["virsh", "-c", URI, "list", "--all", "--name"],
                             capture_output=True, text=True).stdout.split()  # fmt: skip
    for name in listing:
        xml = subprocess.run(["virsh", "-c", URI, "dumpxml", name],
                             capture_output=True, text=True).stdout  # fmt: skip
        if str(pool_path) in xml:
            subprocess.run(["virsh", "-c", URI, "destroy", name], capture_output=True)
            subprocess.run(["virsh", "-c", URI, "undefine", name], capture_output=True)
    subprocess.run(["virsh", "-c", URI, "pool-destroy", pool], capture_output=True)
    subprocess.run(["virsh", "-c", URI, "pool-undefine", pool], capture_output=True)
