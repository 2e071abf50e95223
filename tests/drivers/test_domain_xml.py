"""The libvirt XML vpsorg writes (pure functions: no libvirt needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from vpsorg.drivers.base import MachineSpec, NetworkAttachment, NetworkMode
from vpsorg.drivers.libvirt.domain import (
    GIB,
    bridge_name,
    check_name,
    domain_xml,
    interface_devices,
    mac_address,
    overlay_volume_xml,
    pool_target_path,
    pool_xml,
    seed_volume_xml,
    volume_format,
)

SPEC = MachineSpec(
    name="vps-xml", hostname="xml.example.com", vcpus=2, memory_mb=1024, disk_gb=10,
    os_slug="debian-12", image="/var/lib/vpsorg/base/debian-12.qcow2",
)  # fmt: skip
KERNEL_SPEC = replace(
    SPEC, image=None, kernel="/boot/vmlinuz", initrd="/boot/initrd.img",
    cmdline="console=ttyS0 panic=-1 quiet & 'x'",
)  # fmt: skip


NETWORK = NetworkAttachment(NetworkMode.NAT, "vpsorg-us-west", ("203.0.113.1/24",))


def build(spec: MachineSpec = SPEC, **overrides: object) -> ET.Element:
    options: dict[str, object] = {
        "domain_type": "qemu", "pool": "vpsorg", "pool_path": "/pool", "network": NETWORK,
    }  # fmt: skip
    options.update(overrides)
    return ET.fromstring(domain_xml(spec, **options))


def test_domain_has_the_machine_size_and_lifecycle():
    root = build()
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "vps-xml"
    assert root.find("memory").attrib == {"unit": "MiB"}
    assert root.findtext("memory") == "1024"
    assert root.findtext("vcpu") == "2"
    assert root.find("os/type").get("machine") == "pc"
    assert root.findtext("os/type") == "hvm"
    assert root.find("os/boot").get("dev") == "hd"
    assert {child.tag for child in root.find("features")} == {"acpi", "apic"}
    assert root.findtext("on_poweroff") == "destroy"
    assert root.findtext("on_reboot") == "restart"
    assert root.findtext("on_crash") == "destroy"
    assert root.find("cpu").get("mode") == "maximum"  # TCG: -cpu max, not qemu64


def test_kvm_passes_the_host_cpu_through():
    root = build(domain_type="kvm")
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"


def test_disks_are_the_overlay_and_a_readonly_virtio_seed():
    disks = build().findall("devices/disk")
    assert [disk.find("target").attrib for disk in disks] == [
        {"dev": "vda", "bus": "virtio"}, {"dev": "vdb", "bus": "virtio"},
    ]  # fmt: skip
    overlay, seed = disks
    assert overlay.get("device") == seed.get("device") == "disk"  # the seed is not a cdrom
    assert overlay.find("source").attrib == {"pool": "vpsorg", "volume": "vps-xml.qcow2"}
    assert overlay.find("driver").get("type") == "qcow2"
    assert overlay.find("readonly") is None
    assert seed.find("source").attrib == {"pool": "vpsorg", "volume": "vps-xml-seed.iso"}
    assert seed.find("driver").get("type") == "raw"
    assert seed.find("readonly") is not None


def test_network_interface_only_when_a_network_is_configured():
    interface = build().find("devices/interface")
    assert interface.get("type") == "bridge"
    assert interface.find("model").get("type") == "virtio"
    assert interface.find("mac").get("address") == mac_address("vps-xml")
    assert build(network=None).find("devices/interface") is None


def test_network_mode_attaches_to_the_existing_libvirt_network():
    interface = build(network=NetworkAttachment(NetworkMode.NETWORK, "lan")).find(
        "devices/interface"
    )
    assert interface.get("type") == "network"
    assert interface.find("source").attrib == {"network": "lan"}


@pytest.mark.parametrize("mode", [NetworkMode.ISOLATED, NetworkMode.ROUTE, NetworkMode.NAT])
def test_a_vpsorg_made_network_is_joined_by_its_bridge(mode):
    # Through libvirt's network, libvirt would write a MAC list where only dnsmasq's package
    # makes the directory: the first create on a fresh host failed that way.
    interface = build(network=NetworkAttachment(mode, "vpsorg-lab")).find("devices/interface")
    assert interface.get("type") == "bridge"
    assert interface.find("source").attrib == {"bridge": bridge_name("vpsorg-lab")}


def test_bridge_mode_attaches_to_the_host_bridge():
    interface = build(network=NetworkAttachment(NetworkMode.BRIDGE, "br0")).find(
        "devices/interface"
    )
    assert interface.get("type") == "bridge"
    assert interface.find("source").attrib == {"bridge": "br0"}
    assert interface.find("mac").get("address") == mac_address("vps-xml")


def test_serial_console_is_logged_into_the_pool_directory():
    devices = build(pool_path="/var/lib/vpsorg/images").find("devices")
    serial = devices.find("serial")
    assert serial.get("type") == "pty"
    assert serial.find("log").attrib == {
        "file": "/var/lib/vpsorg/images/vps-xml-console.log", "append": "on",
    }  # fmt: skip
    assert devices.find("console").get("type") == "pty"


def test_direct_kernel_boot_passes_kernel_initrd_and_escaped_cmdline():
    text = domain_xml(KERNEL_SPEC, domain_type="qemu", pool="p", pool_path="/p", network=None)
    assert "&amp;" in text
    os_ = ET.fromstring(text).find("os")
    assert os_.findtext("kernel") == "/boot/vmlinuz"
    assert os_.findtext("initrd") == "/boot/initrd.img"
    assert os_.findtext("cmdline") == "console=ttyS0 panic=-1 quiet & 'x'"
    assert os_.find("boot") is None


def test_unknown_domain_type_and_unsafe_names_are_refused():
    with pytest.raises(ValueError, match="domain type"):
        build(domain_type="xen")
    for name in ("", "../etc", "a/b", ".hidden", "x" * 64, "with space"):
        with pytest.raises(ValueError, match="invalid machine name"):
            check_name(name)
    assert check_name("vps-0a1b_2.c") == "vps-0a1b_2.c"


def test_mac_address_is_stable_local_and_distinct():
    mac = mac_address("vps-1")
    assert mac == mac_address("vps-1")
    assert mac != mac_address("vps-2")
    assert mac.startswith("52:54:00:")
    assert len(mac.split(":")) == 6


def test_overlay_volume_is_a_qcow2_backed_by_the_image():
    root = ET.fromstring(overlay_volume_xml("vps-xml", 10, "/base/debian.raw", "raw"))
    assert root.findtext("name") == "vps-xml.qcow2"
    assert root.find("capacity").get("unit") == "bytes"
    assert int(root.findtext("capacity")) == 10 * GIB
    assert root.find("target/format").get("type") == "qcow2"
    assert root.findtext("backingStore/path") == "/base/debian.raw"
    assert root.find("backingStore/format").get("type") == "raw"


def test_overlay_without_image_is_an_empty_disk():
    root = ET.fromstring(overlay_volume_xml("vps-xml", 1, None))
    assert root.find("backingStore") is None
    with pytest.raises(ValueError, match="format"):
        overlay_volume_xml("vps-xml", 1, "/base/x.vmdk", "vmdk")


def test_seed_and_pool_xml():
    seed = ET.fromstring(seed_volume_xml("vps-xml", 374784))
    assert seed.findtext("name") == "vps-xml-seed.iso"
    assert seed.findtext("capacity") == seed.findtext("allocation") == "374784"
    assert volume_format(seed_volume_xml("vps-xml", 1)) == "raw"
    pool = ET.fromstring(pool_xml("vpsorg", "/var/lib/vpsorg/images"))
    assert pool.get("type") == "dir"
    assert pool.findtext("name") == "vpsorg"
    assert pool_target_path(pool_xml("vpsorg", "/var/lib/vpsorg/images")) == (
        "/var/lib/vpsorg/images"
    )


def test_interface_devices_are_read_from_live_xml():
    live = (
        "<domain><devices><interface type='network'><target dev='vnet3'/></interface>"
        "<interface type='network'/></devices></domain>"
    )
    assert interface_devices(live) == ["vnet3"]
