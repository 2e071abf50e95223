"""The libvirt networks vpsorg makes (pure functions: no libvirt needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vpsorg.drivers.base import NetworkAttachment, NetworkMode
from vpsorg.drivers.libvirt.domain import bridge_name
from vpsorg.drivers.libvirt.network import (
    forward_mode_of,
    gateways_of,
    network_uuid,
    network_xml,
)

GATEWAYS = ("198.18.0.1/24", "198.18.1.1/24", "fd00:5f:1::1/64")


def build(mode: NetworkMode) -> ET.Element:
    return ET.fromstring(network_xml(NetworkAttachment(mode, "vpsorg-lab", GATEWAYS)))


def test_an_isolated_network_forwards_nothing_and_runs_no_dnsmasq():
    root = build(NetworkMode.ISOLATED)
    assert root.findtext("name") == "vpsorg-lab"
    assert root.find("forward") is None
    assert root.find("dns").attrib == {"enable": "no"}
    assert root.find(".//dhcp") is None
    assert [ip.attrib for ip in root.findall("ip")] == [
        {"address": "198.18.0.1", "prefix": "24"},
        {"address": "198.18.1.1", "prefix": "24"},
        {"family": "ipv6", "address": "fd00:5f:1::1", "prefix": "64"},
    ]


@pytest.mark.parametrize("mode", [NetworkMode.ROUTE, NetworkMode.NAT])
def test_route_and_nat_forward(mode):
    assert build(mode).find("forward").attrib == {"mode": mode.value}


def test_the_bridge_name_fits_an_interface_name_and_is_stable():
    name = bridge_name("vpsorg-a-location-with-a-very-long-code-indeed")
    assert len(name) <= 15
    assert name == bridge_name("vpsorg-a-location-with-a-very-long-code-indeed")
    assert build(NetworkMode.NAT).find("bridge").get("name") == bridge_name("vpsorg-lab")


def test_a_redefinition_is_an_update_not_a_conflict():
    # The UUID derives from the name, so two workers defining the network agree on it.
    assert build(NetworkMode.NAT).findtext("uuid") == network_uuid("vpsorg-lab")
    assert network_uuid("vpsorg-lab") != network_uuid("vpsorg-lab2")


def test_reading_back_what_a_network_has():
    xml = network_xml(NetworkAttachment(NetworkMode.ROUTE, "x", GATEWAYS))
    assert gateways_of(xml) == set(GATEWAYS)
    assert forward_mode_of(xml) == "route"


def test_vpsorg_makes_no_bridge_or_foreign_network():
    with pytest.raises(ValueError):
        network_xml(NetworkAttachment(NetworkMode.BRIDGE, "br0"))
