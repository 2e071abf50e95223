"""Real guests on a network vpsorg makes: they answer ping and HTTP on their addresses.

A test location on an *isolated* vpsorg-made libvirt network (a bridge holding the ranges'
gateways, no forwarding, no DHCP, no DNS, so no dnsmasq) with a /24 from 198.18.0.0/15 (set
aside for lab testing) and a unique-local IPv6 /64. Two guests are created through the HTTP
API of a real ``vpsorg serve`` on ``qemu:///system``; each configures its NIC from the seed's
network-config (busybox ``ip``) and serves its hostname with busybox ``httpd``.

From the host: ping each ``ip_address`` and ``ipv6_address`` and GET its page; guest A reaches
guest B (A's ``/cgi-bin/peer?ADDR`` pings B and fetches B's page); after a stop A's addresses
stop answering, after a start they answer again, after delete they never answer. The network
stays up throughout and is removed at the end. Traffic goes only to the test's own guests,
through the test's bridge (``ping -I``, and the route is checked), a bounded number of times.
"""

from __future__ import annotations

import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Installation, VpsorgProcess
from tests.guest.image import HTTPD_LINE, Guest
from tests.realguest.test_lifecycle import _console_until, _finish, _remove_leftovers, _until_gone
from tests.requirements import libvirt_driver, require_guest, require_libvirtd, unavailable
from vpsorg.drivers.libvirt.domain import bridge_name

pytestmark = pytest.mark.e2e

URI = "qemu:///system"
PING_TRIES = 15  # one second each: a guest answers a few seconds after its console says so
SILENT_TRIES = 3


@pytest.fixture(scope="module")
def guest() -> Guest:
    require_libvirtd(URI)
    if subprocess.run(["which", "ping"], capture_output=True).returncode != 0:
        unavailable("ping is not installed (Debian: iputils-ping; see .ci/setup-libvirt)")
    return require_guest()


@pytest.fixture
def lab() -> dict[str, str]:
    """A location code and ranges no other run on this host is likely to hold at once."""
    suffix = uuid.uuid4().hex[:6]
    third = random.randrange(0, 256)
    return {
        "code": f"lab-{suffix}",
        "ipv4": f"198.{18 + random.randrange(2)}.{third}.0/24",
        "ipv6": f"fd00:5f:{suffix[:4]}:{third:x}::/64",
    }


@pytest.fixture
def installation(databases: Any, tmp_path: Path, lab: dict[str, str]) -> Iterator[Installation]:
    pool = f"vpsorg-net-{uuid.uuid4().hex[:8]}"
    installation = Installation(
        databases.fresh(tmp_path), tmp_path, driver="libvirt", libvirt_uri=URI,
        libvirt_pool=pool, libvirt_pool_path=tmp_path / "pool", stop_timeout=30,
        usage_interval=3600, log_level="info",
    )  # fmt: skip
    yield installation
    installation.stop_all()
    _remove_leftovers(pool, tmp_path / "pool")
    _remove_network(f"vpsorg-{lab['code']}")


async def test_guests_on_an_isolated_network_answer_ping_and_http(
    installation: Installation, guest: Guest, lab: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code = lab["code"]
    network = f"vpsorg-{code}"
    bridge = bridge_name(network)
    os_id = installation.run(
        "os", "add", "Tiny Linux", "--image", str(guest.disk), "--kernel", str(guest.kernel),
        "--initrd", str(guest.initrd), "--cmdline", guest.cmdline,
    ).stdout.strip()  # fmt: skip
    installation.run("locations", "add", code, "--name", "Lab", "--mode", "isolated")
    installation.run("locations", "add-range", code, lab["ipv4"])
    installation.run("locations", "add-range", code, lab["ipv6"])
    user = installation.create_user()
    api = installation.serve()
    driver = libvirt_driver(installation)
    timings: dict[str, float] = {}

    async with httpx.AsyncClient(base_url=api.base_url, headers=user.headers, timeout=90) as http:
        started = time.monotonic()
        servers = [await _create(http, api, name, int(os_id), code) for name in ("net-a", "net-b")]
        for server in servers:
            await _console_until(driver, f"vps-{server['id']}", HTTPD_LINE, count=1)
        timings["two creates to httpd up on both"] = time.monotonic() - started
        a, b = servers
        assert _network_state(network) == {"Active": "yes", "Autostart": "yes"}
        assert _forward_mode(network) is None  # isolated: no forwarding
        assert not _dnsmasq_for(network)
        for server in servers:
            for address in (server["ip_address"], server["ipv6_address"]):
                assert f"dev {bridge}" in _route(address), _route(address)

        clock = time.monotonic()
        for server in servers:
            for address in (server["ip_address"], server["ipv6_address"]):
                assert _answers(address, bridge), f"{address} does not answer ping"
                assert _page(address) == server["hostname"]
        timings["ping + HTTP on 4 addresses"] = time.monotonic() - clock

        for address in (b["ip_address"], b["ipv6_address"]):
            probe = _peer_probe(a["ip_address"], address)
            assert f"ping {address}: answered" in probe, probe
            assert f"page {address}: {b['hostname']}" in probe, probe

        clock = time.monotonic()
        await _power(http, api, a["id"], "stop")
        assert not _answers(a["ip_address"], bridge, tries=SILENT_TRIES)
        assert not _answers(a["ipv6_address"], bridge, tries=SILENT_TRIES)
        assert _answers(b["ip_address"], bridge)
        timings["stop, then silence checked"] = time.monotonic() - clock

        clock = time.monotonic()
        await _power(http, api, a["id"], "start")
        await _console_until(driver, f"vps-{a['id']}", HTTPD_LINE, count=2)
        assert _answers(a["ip_address"], bridge)
        assert _answers(a["ipv6_address"], bridge)
        assert _page(a["ip_address"]) == a["hostname"]
        timings["start to answering again"] = time.monotonic() - clock

        for server in servers:
            assert (await http.delete(f"/api/v1/servers/{server['id']}/")).status_code == 204
        for server in servers:
            await _until_gone(driver, f"vps-{server['id']}")
        for server in servers:
            for address in (server["ip_address"], server["ipv6_address"]):
                assert not _answers(address, bridge, tries=SILENT_TRIES), address
        assert _network_state(network)["Active"] == "yes"  # up for the whole test
        await driver.close()

    _remove_network(network)
    assert network not in _networks()
    with capsys.disabled():
        print(f"\n  two guests on isolated network {network} ({lab['ipv4']}, {lab['ipv6']}):")
        for what, seconds in timings.items():
            print(f"    {what}: {seconds:.1f} s")


# -- helpers ---------------------------------------------------------------------------------


async def _create(
    http: httpx.AsyncClient, api: VpsorgProcess, name: str, os_id: int, location: str
) -> dict[str, Any]:
    created = await http.post("/api/v1/servers/", json={
        "name": name, "plan_id": 3, "os_id": os_id, "location": location,
        "hostname": f"{name}.lab.example",
    })  # fmt: skip
    assert created.status_code == 201, created.text
    await _finish(http, api, created.json()["action"]["id"])
    detail = (await http.get(f"/api/v1/servers/{created.json()['id']}/")).json()
    assert detail["status"] == "active"
    return dict(detail)


async def _power(http: httpx.AsyncClient, api: VpsorgProcess, server_id: int, verb: str) -> None:
    response = await http.post(f"/api/v1/servers/{server_id}/{verb}/")
    assert response.status_code == 200, response.text
    await _finish(http, api, response.json()["action"]["id"])


def _answers(address: str, bridge: str, tries: int = PING_TRIES) -> bool:
    """One echo request a second through the test's bridge, at most ``tries``."""
    for _ in range(tries):
        ping = subprocess.run(
            ["ping", "-c", "1", "-W", "1", "-I", bridge, address], capture_output=True
        )
        if ping.returncode == 0:
            return True
    return False


def _url(address: str, path: str = "/") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}{path}"


def _page(address: str) -> str:
    response = httpx.get(_url(address), timeout=5, trust_env=False)
    response.raise_for_status()
    return response.text.strip()


def _peer_probe(via: str, peer: str) -> str:
    response = httpx.get(_url(via, f"/cgi-bin/peer?{peer}"), timeout=15, trust_env=False)
    response.raise_for_status()
    return response.text


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True)


def _network_state(network: str) -> dict[str, str]:
    info = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in _virsh("net-info", network).stdout.splitlines())
        if value
    )  # fmt: skip
    return {key: info.get(key, "") for key in ("Active", "Autostart")}


def _forward_mode(network: str) -> str | None:
    import xml.etree.ElementTree as ET

    forward = ET.fromstring(_virsh("net-dumpxml", network).stdout).find("forward")
    return None if forward is None else forward.get("mode")


def _dnsmasq_for(network: str) -> bool:
    found = subprocess.run(["pgrep", "-af", "dnsmasq"], capture_output=True, text=True).stdout
    return f"{network}.conf" in found


def _route(address: str) -> str:
    return subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout


def _networks() -> list[str]:
    return _virsh("net-list", "--all", "--name").stdout.split()


def _remove_network(network: str) -> None:
    if network in _networks():
        _virsh("net-destroy", network)
        _virsh("net-undefine", network)
