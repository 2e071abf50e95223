"""``vpsorg locations``, run as an operator runs it: a child process, its output and exit code."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.processes import Installation

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider


@pytest.fixture
def installation(databases: DatabaseProvider, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation(databases.fresh(tmp_path), tmp_path)
    yield installation
    installation.stop_all()


def rows(installation: Installation) -> list[list[str]]:
    return [line.split() for line in installation.run("locations", "list").stdout.splitlines()]


def test_the_seeded_locations_are_on_networks_vpsorg_makes(installation: Installation) -> None:
    listing = rows(installation)

    assert listing[0] == ["LOCATION", "STATE", "MODE", "NETWORK", "RANGE", "GATEWAY", "USED",
                          "FREE"]  # fmt: skip
    assert listing[1:3] == [
        ["ap-southeast", "available", "nat", "vpsorg-ap-southeast", "192.0.2.128/25",
         "192.0.2.129", "0", "125"],
        ["2001:db8:4::/48", "2001:db8:4::1", "0", "~2^80"],
    ]  # fmt: skip
    assert ["us-west", "available", "nat", "vpsorg-us-west", "203.0.113.0/24", "203.0.113.1",
            "0", "253"] in listing  # fmt: skip


def test_add_a_location_with_ranges_then_list_used_and_free(installation: Installation) -> None:
    added = installation.run("locations", "add", "lab", "--name", "Lab", "--mode", "isolated")
    v4 = installation.run("locations", "add-range", "lab", "198.18.0.0/24")
    v6 = installation.run("locations", "add-range", "lab", "fd00:5f::/64", "--gateway",
                          "fd00:5f::fffe")  # fmt: skip
    more = installation.run("locations", "add-range", "lab", "198.18.1.0/29")

    assert added.stdout == "lab\n"
    assert "range 198.18.0.0/24, gateway 198.18.0.1" in v4.stderr
    assert "gateway fd00:5f::fffe" in v6.stderr
    assert more.returncode == 0
    listing = rows(installation)
    start = listing.index(["lab", "available", "isolated", "vpsorg-lab", "198.18.0.0/24",
                           "198.18.0.1", "0", "253"])  # fmt: skip
    assert listing[start + 1 : start + 3] == [
        ["fd00:5f::/64", "fd00:5f::fffe", "0", "~2^64"],
        ["198.18.1.0/29", "198.18.1.1", "0", "5"],
    ]


def test_bad_input_is_one_clean_line_and_changes_nothing(installation: Installation) -> None:
    installation.run("locations", "add", "lab", "--name", "Lab")
    installation.run("locations", "add-range", "lab", "198.18.0.0/24")
    before = rows(installation)
    attempts = {
        "overlap": ("add-range", "lab", "198.18.0.128/25"),
        "overlap elsewhere": ("add-range", "lab", "203.0.113.0/25"),
        "invalid CIDR": ("add-range", "lab", "198.18.300.0/24"),
        "unknown location": ("add-range", "mars", "198.18.7.0/24"),
        "gateway outside": ("add-range", "lab", "198.18.8.0/24", "--gateway", "198.18.9.1"),
        "existing code": ("add", "lab", "--name", "Again"),
        "bridge without its name": ("add", "new", "--name", "x", "--mode", "bridge"),
    }  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:  # ~3 s each, one at a time
        results = dict(zip(attempts, pool.map(
            lambda args: installation.run("locations", *args, check=False), attempts.values()
        ), strict=True))  # fmt: skip
    for what, result in results.items():
        assert result.returncode == 1, (what, result.stderr)
        assert result.stdout == "", what
        assert len(result.stderr.splitlines()) == 1, (what, result.stderr)
        assert result.stderr.startswith("vpsorg: "), (what, result.stderr)
    assert rows(installation) == before


def test_update_and_disable(installation: Installation) -> None:
    installation.run("locations", "update", "us-east", "--mode", "bridge", "--network-name", "br0")
    installation.run("locations", "update", "us-west", "--name", "US West (San José)")
    installation.run("locations", "disable", "eu-central")

    listing = {row[0]: row for row in rows(installation) if len(row) == 8}
    assert listing["us-east"][1:4] == ["available", "bridge", "br0"]
    assert listing["eu-central"][1] == "disabled"
    events = installation.run("audit", "--json").stdout
    for command in ("locations update us-east --mode bridge --network-name br0",
                    "locations disable eu-central"):  # fmt: skip
        assert command in events, events
