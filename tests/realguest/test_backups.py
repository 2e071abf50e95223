"""A real guest's disk backed up while it runs and restored: the backed-up marker comes back.

At each boot the test guest (tests/guest/image.py) prints the random token an earlier boot
left on its disk (``MARKER-OLD``), then writes a fresh one (``MARKER-NEW``). Through the API
of a real ``vpsorg serve`` on ``qemu:///system``: boot (token A), snapshot the running guest,
reboot (the console shows A, the disk now holds B), restore the snapshot; the restored disk's
boot shows A again, not B. Deleting the snapshot removes its copy from the backup pool, and
deleting the server removes the server's other snapshot with it.

Skips on a machine without libvirt; fails instead when VPSORG_REQUIRE_LIBVIRT is set (.ci/run).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Installation, VpsorgProcess
from tests.guest.image import BOOT_LINE, MARKER_NEW_PREFIX, MARKER_OLD_PREFIX, Guest
from tests.realguest.test_lifecycle import _console_until, _finish, _remove_leftovers, _until_gone
from tests.requirements import libvirt_driver, require_guest, require_libvirtd

pytestmark = pytest.mark.e2e

URI = "qemu:///system"
TOKEN = re.compile(r"[0-9a-f]{16}")
MARKER_OFFSET = 2048 * 512  # where the guest keeps its marker (tests/guest/image.py)
HEX_LINE = re.compile(r"^[0-9a-f]{8}:  ((?:[0-9a-f]{2} )+)", re.M)


@pytest.fixture(scope="module")
def guest() -> Guest:
    require_libvirtd(URI)
    return require_guest()


@pytest.fixture
def installation(databases: Any, tmp_path: Path) -> Iterator[Installation]:
    suffix = uuid.uuid4().hex[:8]
    pool, backup_pool = f"vpsorg-bk-{suffix}", f"vpsorg-bk-{suffix}-backups"
    installation = Installation(
        databases.fresh(tmp_path), tmp_path, driver="libvirt", libvirt_uri=URI,
        libvirt_pool=pool, libvirt_pool_path=tmp_path / "pool", libvirt_network="",
        libvirt_backup_pool=backup_pool, libvirt_backup_pool_path=tmp_path / "backups",
        stop_timeout=60, usage_interval=3600, log_level="info",
    )  # fmt: skip
    yield installation
    installation.stop_all()
    _remove_leftovers(pool, tmp_path / "pool")
    subprocess.run(["virsh", "-c", URI, "pool-destroy", backup_pool], capture_output=True)
    subprocess.run(["virsh", "-c", URI, "pool-undefine", backup_pool], capture_output=True)


async def test_a_restored_disk_holds_the_backed_up_marker(
    installation: Installation, guest: Guest, capsys: pytest.CaptureFixture[str]
) -> None:
    os_id = installation.run(
        "os", "add", "Tiny Linux", "--image", str(guest.disk), "--kernel", str(guest.kernel),
        "--initrd", str(guest.initrd), "--cmdline", guest.cmdline,
    ).stdout.strip()  # fmt: skip
    user = installation.create_user()
    api = installation.serve()
    driver = libvirt_driver(installation)
    backup_pool = installation.env["VPSORG_LIBVIRT_BACKUP_POOL"]
    timings: dict[str, float] = {}

    async with httpx.AsyncClient(base_url=api.base_url, headers=user.headers, timeout=90) as http:
        created = await http.post("/api/v1/servers/", json={
            "name": "backup-guest", "plan_id": 3, "os_id": int(os_id), "location": "us-west",
        })  # fmt: skip
        assert created.status_code == 201, created.text
        server_id = created.json()["id"]
        machine = f"vps-{server_id}"
        await _finish(http, api, created.json()["action"]["id"])
        console = await _console_until(driver, machine, MARKER_NEW_PREFIX, count=1)
        first = _markers(console)
        assert first["old"] == [], console  # a new server's disk holds no marker yet
        marker_a = first["new"][0]

        clock = time.monotonic()
        snapshot = await _snapshot(http, api, server_id, "before-reboot")
        timings["snapshot of the running guest"] = time.monotonic() - clock
        listed = (await http.get(f"/api/v1/servers/{server_id}/backups/")).json()["results"]
        assert [(b["id"], b["status"]) for b in listed] == [(snapshot["id"], "available")]
        assert listed[0]["size_gb"] >= 1  # whole GB, rounded up

        reboot = await http.post(f"/api/v1/servers/{server_id}/reboot/")
        await _finish(http, api, reboot.json()["action"]["id"])
        console = await _console_until(driver, machine, MARKER_NEW_PREFIX, count=2)
        second = _markers(console)
        assert second["old"] == [marker_a], console
        marker_b = second["new"][1]
        assert marker_b != marker_a

        clock = time.monotonic()
        restore = await http.post(
            f"/api/v1/servers/{server_id}/restore/", json={"backup_id": snapshot["id"]}
        )
        assert restore.status_code == 200, restore.text
        assert restore.json()["server"]["status"] == "rebooting"
        await _finish(http, api, restore.json()["action"]["id"])
        timings["restore (stop, replace the disk, start)"] = time.monotonic() - clock
        console = await _console_until(driver, machine, MARKER_NEW_PREFIX, count=3)
        timings["restore to the marker on the console"] = time.monotonic() - clock
        third = _markers(console)
        # The restored disk holds what the snapshot copied, A, not what the reboot wrote, B.
        assert third["old"] == [marker_a, marker_a], console
        assert console.count(BOOT_LINE) == 3
        detail = (await http.get(f"/api/v1/servers/{server_id}/")).json()
        assert detail["status"] == "active"

        volumes = _volumes(backup_pool)
        assert len(volumes) == 2  # the copy and its completion marker
        copy = (
            installation.workdir / "backups" / next(v for v in volumes if not v.endswith(".done"))
        )
        assert _marker_in(copy) == marker_a  # the copy's own bytes
        deleted = await http.delete(f"/api/v1/servers/{server_id}/backups/{snapshot['id']}/")
        assert deleted.status_code == 204
        assert (await http.get(f"/api/v1/servers/{server_id}/backups/")).json()["results"] == []
        await _until_volumes(backup_pool, [])

        # Deleting the server takes its remaining snapshots with it.
        await _snapshot(http, api, server_id, "kept-until-delete")
        assert len(_volumes(backup_pool)) == 2
        deleted = await http.delete(f"/api/v1/servers/{server_id}/")
        assert deleted.status_code == 204
        await _until_gone(driver, machine)
        await _until_volumes(backup_pool, [])

    with capsys.disabled():
        print("\n  real guest backups (libvirt):")
        for what, seconds in timings.items():
            print(f"    {what}: {seconds:.1f} s")


# -- helpers ---------------------------------------------------------------------------------


def _markers(console: str) -> dict[str, list[str]]:
    """The tokens each boot found (``old``) and wrote (``new``), in boot order."""
    found: dict[str, list[str]] = {"old": [], "new": []}
    for line in console.splitlines():
        line = line.strip()
        for key, prefix in (("old", MARKER_OLD_PREFIX), ("new", MARKER_NEW_PREFIX)):
            if line.startswith(prefix):
                token = line.removeprefix(prefix)
                assert TOKEN.fullmatch(token), line
                found[key].append(token)
    return found


async def _snapshot(
    http: httpx.AsyncClient, api: VpsorgProcess, server_id: int, name: str
) -> dict[str, Any]:
    taken = await http.post(f"/api/v1/servers/{server_id}/snapshots/", json={"name": name})
    assert taken.status_code == 201, taken.text
    await _finish(http, api, taken.json()["action"]["id"])
    return dict(taken.json()["backup"])


def _marker_in(image: Path) -> str:
    """The token the guest wrote at sector 2048 of ``image`` (qcow2), read from its bytes."""
    dump = subprocess.run(
        ["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -v {MARKER_OFFSET} 64", str(image)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    data = b"".join(
        bytes.fromhex(found.group(1)) for found in HEX_LINE.finditer(dump)
    )  # qemu-io's hex dump: "00100000:  76 70 73 ...  vpsorg.m..."
    line = data.split(b"\n")[0].decode(errors="replace")
    assert line.startswith("vpsorg-marker "), dump
    return line.removeprefix("vpsorg-marker ")


def _volumes(pool: str) -> list[str]:
    import libvirt

    conn = libvirt.open(URI)
    try:
        found = conn.storagePoolLookupByName(pool)
        found.refresh(0)
        return sorted(found.listVolumes())
    finally:
        conn.close()


async def _until_volumes(pool: str, expected: list[str]) -> None:
    deadline = time.monotonic() + 30
    while (volumes := _volumes(pool)) != expected:
        assert time.monotonic() < deadline, f"the backup pool {pool} holds {volumes}"
        await asyncio.sleep(0.2)
