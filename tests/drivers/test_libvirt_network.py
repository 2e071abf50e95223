"""The networks vpsorg makes, on libvirt's in-memory test hypervisor (no QEMU involved)."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.drivers.test_libvirt import connection, make_test_driver, unique_spec
from tests.requirements import require_libvirt_binding
from vpsorg.drivers.base import NetworkAttachment, NetworkMode
from vpsorg.drivers.libvirt.domain import bridge_name
from vpsorg.drivers.libvirt.network import gateways_of


@pytest.fixture
def libvirt() -> Any:
    return require_libvirt_binding()


async def test_racing_creates_make_the_network_once_and_join_its_bridge(tmp_path: Path, libvirt):
    name = f"vpsorg-t{uuid.uuid4().hex[:8]}"
    attachment = NetworkAttachment(NetworkMode.ISOLATED, name, ("198.18.3.1/24", "fd00:3::1/64"))
    driver = make_test_driver(tmp_path / "pool", network=None)
    specs = [unique_spec(network=attachment) for _ in range(4)]
    conn = connection(libvirt)
    try:
        await asyncio.gather(*(driver.create(spec) for spec in specs))

        network = conn.networkLookupByName(name)
        assert network.isActive() and network.autostart()
        assert gateways_of(network.XMLDesc(0)) == {"198.18.3.1/24", "fd00:3::1/64"}
        for spec in specs:
            source = ET.fromstring(conn.lookupByName(spec.name).XMLDesc(0)).find(
                "devices/interface/source"
            )
            assert source.attrib == {"bridge": bridge_name(name)}

    finally:
        for spec in specs:
            await driver.delete(spec.name)
        await driver.close()
        network = conn.networkLookupByName(name)
        if network.isActive():
            network.destroy()
        network.undefine()
