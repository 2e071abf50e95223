"""``vpsorg hosts``, run as an operator runs it (``vpsorg os``: tests/catalog)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.processes import Installation

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider


@pytest.fixture
def installation(databases: DatabaseProvider, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation(databases.fresh(tmp_path), tmp_path, image_dir=tmp_path / "images")
    yield installation
    installation.stop_all()


def host_lines(installation: Installation) -> list[str]:
    return installation.run("hosts", "list").stdout.splitlines()[1:]


def test_hosts_add_with_given_capacity_then_list(installation: Installation) -> None:
    added = installation.run(
        "hosts", "add", "kvm1", "--location", "us-west", "--uri", "qemu+ssh://kvm1/system",
        "--vcpus", "16", "--memory-mb", "65536", "--disk-gb", "2000", "--cpu-overcommit", "2",
    )  # fmt: skip

    assert re.fullmatch(r"\d+\n", added.stdout)
    assert "16 vCPUs, 65536 MB, 2000 GB in us-west" in added.stderr
    [line] = host_lines(installation)
    assert line.split() == [added.stdout.strip(), "kvm1", "us-west", "enabled", "0", "0/32",
                            "0/65536", "0/2000", "qemu+ssh://kvm1/system"]  # fmt: skip


def test_hosts_list_prints_json(installation: Installation) -> None:
    added = installation.run(
        "hosts", "add", "kvm1", "--location", "us-west", "--uri", "qemu+ssh://kvm1/system",
        "--vcpus", "16", "--memory-mb", "65536", "--disk-gb", "2000",
    )  # fmt: skip

    [host] = json.loads(installation.run("hosts", "list", "--json").stdout)
    assert host == {
        "id": int(added.stdout), "name": "kvm1", "location": "us-west", "state": "enabled",
        "servers": 0, "vcpus": "0/64", "memory_mb": "0/65536", "disk_gb": "0/2000",
        "uri": "qemu+ssh://kvm1/system",
    }  # fmt: skip


def test_hosts_add_reads_capacity_from_the_driver(installation: Installation) -> None:
    added = installation.run("hosts", "add", "sim1", "--location", "us-east", "--uri", "sim://one")

    assert "simulated capacity" in added.stderr
    [line] = host_lines(installation)
    # The simulator's host: 64 vCPUs (x4 overcommit), 256 GiB, 4000 GB.
    assert line.split()[5:8] == ["0/256", "0/262144", "0/4000"]


def test_hosts_add_rejects_bad_input_and_changes_nothing(installation: Installation) -> None:
    bad = installation.run(
        "hosts", "add", "bad_name!", "--location", "mars", "--uri", "nope", "--vcpus", "1",
        "--memory-mb", "1", "--disk-gb", "1", check=False,
    )  # fmt: skip
    installation.run("hosts", "add", "kvm1", "--location", "us-west", "--uri", "test:///default")
    again = installation.run(
        "hosts", "add", "kvm1", "--location", "us-west", "--uri", "test:///default", check=False
    )

    assert bad.returncode == 1 and bad.stdout == ""
    for field in ("name", "location", "uri"):
        assert field in bad.stderr, bad.stderr
    assert again.returncode == 1 and "exists" in again.stderr
    assert len(host_lines(installation)) == 1


def test_disable_drain_enable(installation: Installation) -> None:
    for name in ("kvm1", "kvm2"):
        installation.run("hosts", "add", name, "--location", "us-west", "--uri", "test:///x")

    installation.run("hosts", "disable", "kvm1")
    installation.run("hosts", "drain", "kvm2")
    states = [line.split()[3] for line in host_lines(installation)]
    installation.run("hosts", "enable", "kvm1")
    missing = installation.run("hosts", "drain", "kvm9", check=False)

    assert states == ["disabled", "draining"]
    assert [line.split()[3] for line in host_lines(installation)] == ["enabled", "draining"]
    assert missing.returncode == 1 and "No host named 'kvm9'" in missing.stderr


def test_hosts_audit_lists_machines_no_server_owns(installation: Installation) -> None:
    clean = installation.run("hosts", "audit")
    stray = installation.simulator_dir / "machines" / "hand-made.json"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"spec": {}, "state": "stopped"}')

    found = installation.run("hosts", "audit")

    assert clean.stdout == "every host matches the database\n"
    assert found.stdout == "(default): machine hand-made (stopped) belongs to no server\n"
    assert stray.exists()


def test_hosts_audit_reports_a_machine_only_on_its_own_host(installation: Installation) -> None:
    for name in ("kvm1", "kvm2"):
        installation.run("hosts", "add", name, "--location", "us-west", "--uri", f"test:///{name}")
    stray = installation.simulator_dir / "machines" / "hand-made.json"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"spec": {"host_uri": "test:///kvm2"}, "state": "running"}')

    found = installation.run("hosts", "audit")

    assert found.stdout == "kvm2: machine hand-made (running) belongs to no server\n"
