"""The libvirt networks vpsorg makes for a location (modes ``isolated``, ``route``, ``nat``).

A one-host install needs nothing from the host but libvirtd: the first create in a location
defines the network ``vpsorg-<location>`` (persistent, autostarted) and starts it. Its bridge
(``bridge_name``) holds each range's gateway address; DHCP and DNS are off, so libvirt runs
no dnsmasq: guests configure their static addresses from the cloud-init seed, and join the
bridge directly (``domain._interface`` says why). libvirt's ``default`` network
(which needs dnsmasq, and is inactive on a fresh Debian host) is never used.

Defining is idempotent and safe when creates race for it: the network's UUID derives from its
name, so a second definition of the same network is an update, not a conflict, and a start
that finds the network already active is what was wanted.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from vpsorg.drivers.base import NetworkAttachment, NetworkMode
from vpsorg.drivers.libvirt.domain import bridge_name, interface_bridges

log = logging.getLogger(__name__)

FORWARD_MODES = {NetworkMode.ROUTE: "route", NetworkMode.NAT: "nat"}  # isolated: no <forward>
_NAMESPACE = uuid.UUID("6f1c2f8e-3b4a-4f55-9d2e-7a0c5e1b9d40")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def network_uuid(network: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, network))


def network_xml(attachment: NetworkAttachment) -> str:
    """A vpsorg-made network: a bridge with the gateways, no DHCP, no DNS."""
    if not attachment.mode.made_by_vpsorg:
        raise ValueError(f"vpsorg does not make networks of mode {attachment.mode}")
    root = ET.Element("network")
    ET.SubElement(root, "name").text = attachment.name
    ET.SubElement(root, "uuid").text = network_uuid(attachment.name)
    forward = FORWARD_MODES.get(attachment.mode)
    if forward is not None:
        ET.SubElement(root, "forward", mode=forward)
    ET.SubElement(root, "bridge", name=bridge_name(attachment.name), stp="off", delay="0")
    ET.SubElement(root, "dns", enable="no")
    for gateway in attachment.gateways:
        interface = ipaddress.ip_interface(gateway)
        attributes = {"address": str(interface.ip), "prefix": str(interface.network.prefixlen)}
        if interface.version == 6:
            attributes = {"family": "ipv6", **attributes}
        ET.SubElement(root, "ip", attributes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def gateways_of(xml: str) -> set[str]:
    """The ``address/prefix`` of each ``<ip>`` of a network's XML."""
    found = set()
    for element in ET.fromstring(xml).findall("./ip"):
        address = element.get("address")
        prefix = element.get("prefix")
        if address and prefix:
            found.add(str(ipaddress.ip_interface(f"{address}/{prefix}")))
    return found


def forward_mode_of(xml: str) -> str | None:
    element = ET.fromstring(xml).find("./forward")
    return None if element is None else element.get("mode")


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def ensure_network(conn: Any, uri: str, attachment: NetworkAttachment, libvirt: Any) -> None:
    """Make sure a vpsorg-made network exists as ``attachment`` says, and runs.

    A network that lacks a gateway (a range was added since it started) is redefined; it
    takes the new addresses at once when no guest uses it, else at its next start (libvirt
    cannot add an address to a running network).
    """
    wanted = {str(ipaddress.ip_interface(g)) for g in attachment.gateways}
    with _lock(f"{uri} {attachment.name}"):
        network = _lookup(conn, attachment.name, libvirt)
        if network is None:
            network = _define(conn, attachment, libvirt)
        else:
            defined = _defined_xml(network, libvirt)
            outdated = gateways_of(defined) != wanted or forward_mode_of(
                defined
            ) != FORWARD_MODES.get(attachment.mode)
            if outdated:
                network = _define(conn, attachment, libvirt)
                if network.isActive() and not _has_guests(conn, attachment.name, libvirt):
                    log.info("restarting network %s for its new addresses", attachment.name)
                    network.destroy()
        if not network.isActive():
            try:
                network.create()
            except libvirt.libvirtError:
                if not network.isActive():  # else another worker started it just now
                    raise
        if not network.autostart():
            network.setAutostart(1)


def _lookup(conn: Any, name: str, libvirt: Any) -> Any | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise


def _defined_xml(network: Any, libvirt: Any) -> str:
    """The persistent definition (the running one lags behind a redefinition)."""
    try:
        return str(network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return str(network.XMLDesc(0))  # libvirt's test driver knows no flags


def _define(conn: Any, attachment: NetworkAttachment, libvirt: Any) -> Any:
    network = conn.networkDefineXML(network_xml(attachment))
    log.info("defined network %s (%s)", attachment.name, attachment.mode)
    return network


def _has_guests(conn: Any, network: str, libvirt: Any) -> bool:
    """Whether a running machine is plugged into the network's bridge."""
    bridge = bridge_name(network)
    try:
        domains = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        return any(bridge in interface_bridges(d.XMLDesc(0)) for d in domains)
    except libvirt.libvirtError:
        return True  # cannot tell: do not cut anyone off
