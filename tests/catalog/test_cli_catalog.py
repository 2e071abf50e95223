"""``vpsorg plans`` and ``vpsorg os``, run as an operator runs them, checked through the API."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.processes import Installation
from tests.factories import SERVER

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider
    from tests.factories import Factory, User
    from vpsorg.config import Settings

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

RAW = b"\xeb\x63\x90" + b"\0" * (1024 * 1024 - 3)  # a 1 MiB raw disk: boot jump, zeros


@pytest.fixture
def installation(databases: DatabaseProvider, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation(databases.fresh(tmp_path), tmp_path, image_dir=tmp_path / "images")
    yield installation
    installation.stop_all()


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1, and its base URL."""
    served = tmp_path / "www"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def qcow2(path: Path) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "10M"], check=True)
    return path


def as_json(installation: Installation, *args: str) -> Any:
    return json.loads(installation.run(*args, "--json").stdout)


def plan(installation: Installation, plan_id: int) -> dict[str, Any]:
    [found] = [p for p in as_json(installation, "plans", "list") if p["id"] == plan_id]
    return found


ADD_PLAN = ("--vcpus", "2", "--memory-mb", "2048", "--disk-gb", "40", "--bandwidth-gb", "2000",
            "--price", "0.02")  # fmt: skip


# -- plans -----------------------------------------------------------------------------------


def test_plans_add_update_disable_and_list(installation: Installation) -> None:
    added = installation.run("plans", "add", "Standard 2", *ADD_PLAN)
    plan_id = int(added.stdout)

    installation.run("plans", "update", str(plan_id), "--memory-mb", "4096", "--name", "Std 2")
    installation.run("plans", "price", str(plan_id), "0.03")
    installation.run("plans", "disable", str(plan_id))
    table = installation.run("plans", "list").stdout.splitlines()

    assert plan(installation, plan_id) == {
        "id": plan_id, "name": "Std 2", "vcpus": 2, "memory_mb": 4096, "storage_gb": 40,
        "bandwidth_gb": 2000, "price_hourly": 0.03, "price_monthly": 21.9, "available": False,
    }  # fmt: skip
    assert table[0].split()[:3] == ["ID", "NAME", "VCPUS"]
    assert table[-1].split()[0] == str(plan_id) and table[-1].split()[-1] == "no"


def test_plans_refuse_bad_input_in_one_line(installation: Installation) -> None:
    zero = installation.run("plans", "add", "Tiny", *ADD_PLAN[:-2], "--price", "-1", check=False)
    missing = installation.run("plans", "update", "999", "--price", "1", check=False)
    nothing = installation.run("plans", "update", "1", check=False)
    unknown = installation.run("plans", "disable", "999", check=False)

    assert zero.returncode != 0 and "Traceback" not in zero.stderr
    for result in (missing, unknown):
        assert result.returncode == 1
        assert result.stderr == "vpsorg: Plan 999 not found.\n"
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr


async def test_a_used_plan_keeps_its_size_but_not_its_price(
    settings: Settings, factory: Factory, user: User
) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    await factory.server(user)  # on plan 1

    resized = await run(installation, "plans", "update", "1", "--vcpus", "64", check=False)
    repriced = await run(installation, "plans", "update", "1", "--price", "0.5", "--name", "S")

    assert resized.returncode == 1
    assert resized.stderr.count("\n") == 1
    assert "is used by 1 server(s)" in resized.stderr and "add a new plan" in resized.stderr
    assert repriced.returncode == 0
    shown = await factory.client.get("/api/v1/plans/", headers=user.headers)
    [one] = [p for p in shown.json()["results"] if p["id"] == 1]
    assert (one["vcpus"], one["price_hourly"], one["name"]) == (2, 0.5, "S")


async def test_a_disabled_plan_is_refused_and_a_new_one_is_usable(
    settings: Settings, factory: Factory, user: User
) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    new_plan = int((await run(installation, "plans", "add", "Fresh", *ADD_PLAN)).stdout)
    await run(installation, "plans", "disable", "1")

    refused = await factory.client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    created = await factory.server(user, plan_id=new_plan)
    listed = await factory.client.get("/api/v1/plans/", headers=user.headers)

    assert refused.status_code == 400, refused.text
    assert "plan_id" in refused.json()["errors"]
    assert created["plan"]["id"] == new_plan
    # Disabled plans stay listed, marked unavailable (as the spec's `available` field says).
    availability = {p["id"]: p["available"] for p in listed.json()["results"]}
    assert availability[1] is False and availability[new_plan] is True


# -- operating systems ---------------------------------------------------------------------


def test_os_add_a_path_then_list(installation: Installation, tmp_path: Path) -> None:
    image = qcow2(tmp_path / "debian-12.qcow2")

    added = installation.run("os", "add", "Debian 12 (cloud)", "--image", str(image))
    listing = as_json(installation, "os", "list")

    os_id = int(added.stdout)
    assert os_id > 7  # after the default catalog
    assert listing[-1] == {
        "id": os_id, "name": "Debian 12 (cloud)", "slug": "debian-12-cloud", "available": True,
        "image": str(image), "kernel": None, "initrd": None, "cmdline": None,
    }  # fmt: skip
    assert str(image) in installation.run("os", "list").stdout


def test_os_add_needs_kernel_and_initrd_together(installation: Installation) -> None:
    result = installation.run(
        "os", "add", "Tiny", "--image", "/x.qcow2", "--kernel", "/vmlinuz", check=False
    )

    assert result.returncode == 1
    assert "initrd" in result.stderr
    assert "Tiny" not in installation.run("os", "list").stdout


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "/etc/passwd"),  # whatever its size, it is refused
        (b"#cloud-config\n" * 64 + b"#" * 128, "looks like a text file"),  # 1024 bytes
        (b"QFI\xfb", "not a whole number of 512-byte sectors"),
        (b"", "0 bytes"),
    ],
)
def test_os_add_refuses_what_is_not_a_disk_image(
    installation: Installation, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    image = Path("/etc/passwd")
    if content is not None:
        image = tmp_path / "fake.qcow2"
        image.write_bytes(content)

    result = installation.run("os", "add", "Fake", "--image", str(image), check=False)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and reason in result.stderr, result.stderr
    assert "Fake" not in installation.run("os", "list").stdout


def test_os_add_downloads_by_content_with_progress(
    installation: Installation, tmp_path: Path, www: tuple[Path, str]
) -> None:
    served, base = www
    qcow2(served / "cloud.img")
    first_digest = hashlib.sha256((served / "cloud.img").read_bytes()).hexdigest()

    first = installation.run("os", "add", "Cloud One", "--image", f"{base}/cloud.img")
    (served / "cloud.img").write_bytes(RAW)  # another file, the same URL
    second = installation.run("os", "add", "Cloud Two", "--image", f"{base}/cloud.img")
    (served / "cloud.img").unlink()  # with --sha256, a stored image needs no download
    third = installation.run(
        "os", "add", "Cloud Three", "--image", f"{base}/cloud.img", "--sha256", first_digest
    )

    images = tmp_path / "images"
    raw = images / f"{hashlib.sha256(RAW).hexdigest()}.raw"
    assert sorted(images.iterdir()) == sorted([images / f"{first_digest}.qcow2", raw])
    assert raw.read_bytes() == RAW
    assert "downloading" in first.stderr and "/196.6 kB" in first.stderr  # the bar: its size
    images_by_name = {o["name"]: o["image"] for o in as_json(installation, "os", "list")}
    assert images_by_name["Cloud One"] == images_by_name["Cloud Three"]
    assert images_by_name["Cloud Two"] == str(raw)
    assert len({first.stdout, second.stdout, third.stdout}) == 3


def test_os_add_checks_the_sha256(
    installation: Installation, tmp_path: Path, www: tuple[Path, str]
) -> None:
    served, base = www
    (served / "disk.raw").write_bytes(RAW)
    good = hashlib.sha256(RAW).hexdigest()

    wrong = installation.run(
        "os", "add", "Bad", "--image", f"{base}/disk.raw", "--sha256", "0" * 64, check=False
    )
    stored_after_wrong = list((tmp_path / "images").glob("*"))
    right = installation.run("os", "add", "Good", "--image", f"{base}/disk.raw", "--sha256", good)

    assert wrong.returncode == 1 and "nothing was stored" in wrong.stderr
    assert stored_after_wrong == []
    assert right.returncode == 0
    assert [p.name for p in (tmp_path / "images").iterdir()] == [f"{good}.raw"]


def test_os_add_from_a_url_that_is_not_there(
    installation: Installation, www: tuple[Path, str]
) -> None:
    _served, base = www

    result = installation.run("os", "add", "Gone", "--image", f"{base}/gone.img", check=False)

    assert result.returncode == 1 and "cannot download" in result.stderr
    assert "Traceback" not in result.stderr


async def test_os_update_disable_and_remove(
    settings: Settings, factory: Factory, user: User, tmp_path: Path
) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    image = qcow2(tmp_path / "new.qcow2")
    spare = int((await run(installation, "os", "add", "Spare", "--image", str(image))).stdout)
    await factory.server(user)  # made from os 5

    used = await run(installation, "os", "remove", "5", check=False)
    await run(installation, "os", "update", str(spare), "--name", "Spare Two")
    await run(installation, "os", "disable", "5")
    refused = await factory.client.post("/api/v1/servers/", json=SERVER, headers=user.headers)
    removed = await run(installation, "os", "remove", str(spare))
    missing = await run(installation, "os", "remove", str(spare), check=False)

    assert used.returncode == 1 and "disable it instead" in used.stderr
    assert used.stderr.count("\n") == 1
    assert refused.status_code == 400 and "os_id" in refused.json()["errors"]
    assert "Spare Two" in removed.stderr
    assert missing.returncode == 1 and "not found" in missing.stderr
    listed = json.loads((await run(installation, "os", "list", "--json")).stdout)
    assert [o["available"] for o in listed if o["id"] == 5] == [False]
    assert spare not in [o["id"] for o in listed]


async def run(
    installation: Installation, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The CLI off the event loop: the app under test shares the database and the loop."""
    return await asyncio.to_thread(installation.run, *args, check=check)
