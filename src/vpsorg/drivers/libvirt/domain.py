"""The libvirt XML vpsorg writes: pure functions of a MachineSpec, so they are easy to test.

Names of everything a machine owns on a host derive from the machine's name, so a retry
after a crash finds (and a delete removes) exactly what an earlier attempt made.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

from vpsorg.drivers.base import MachineSpec, NetworkAttachment, NetworkMode

GIB = 1024**3
DOMAIN_TYPES = ("kvm", "qemu")
IMAGE_FORMATS = ("qcow2", "raw")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def check_name(name: str) -> str:
    """Reject names that would escape the pool directory or confuse libvirt."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"invalid machine name {name!r}: use letters, digits, '-', '_' or '.'")
    return name


def disk_volume(name: str) -> str:
    return f"{name}.qcow2"


def seed_volume(name: str) -> str:
    return f"{name}-seed.iso"


def console_log_volume(name: str) -> str:
    return f"{name}-console.log"


def console_log_path(pool_path: str, name: str) -> str:
    return str(PurePosixPath(pool_path) / console_log_volume(name))


def mac_address(name: str) -> str:
    """A stable MAC from the name, so the seed's network-config can match the NIC by it.

    52:54:00 is QEMU's prefix; the rest is hashed from the name. The locally administered
    bit is already set in 52, so it never collides with a vendor's address.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return "52:54:00:" + ":".join(f"{byte:02x}" for byte in digest[:3])


def pool_xml(pool: str, path: str) -> str:
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = pool
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "path").text = path
    return _render(root)


def overlay_volume_xml(
    name: str, disk_gb: int, backing: str | None, backing_format: str = "qcow2"
) -> str:
    """The machine's disk: a qcow2 copy-on-write overlay of ``backing`` (never a copy).

    Without ``backing`` (a direct-kernel-boot machine with no image) it is an empty disk.
    """
    if backing_format not in IMAGE_FORMATS:
        raise ValueError(f"unsupported image format {backing_format!r}")
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = disk_volume(name)
    ET.SubElement(root, "capacity", unit="bytes").text = str(disk_gb * GIB)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type="qcow2")
    if backing is not None:
        store = ET.SubElement(root, "backingStore")
        ET.SubElement(store, "path").text = backing
        ET.SubElement(store, "format", type=backing_format)
    return _render(root)


def seed_volume_xml(name: str, size: int) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = seed_volume(name)
    ET.SubElement(root, "capacity", unit="bytes").text = str(size)
    ET.SubElement(root, "allocation", unit="bytes").text = str(size)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type="raw")
    return _render(root)


def domain_xml(
    spec: MachineSpec,
    *,
    domain_type: str,
    pool: str,
    pool_path: str,
    network: NetworkAttachment | None,
) -> str:
    """The persistent domain for ``spec``; its volumes must exist in ``pool`` (and its
    network on the host: ``network.ensure_network``). No ``network``: no NIC."""
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain type must be one of {DOMAIN_TYPES}, not {domain_type!r}")
    root = ET.Element("domain", type=domain_type)
    ET.SubElement(root, "name").text = check_name(spec.name)
    ET.SubElement(root, "title").text = spec.hostname
    ET.SubElement(root, "memory", unit="MiB").text = str(spec.memory_mb)
    ET.SubElement(root, "vcpu").text = str(spec.vcpus)
    root.append(_os(spec))
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    # KVM: the host's CPU. TCG: every feature QEMU can emulate (-cpu max), since its default
    # (qemu64) lacks the x86-64-v2 features that current distributions require.
    cpu_mode = "host-passthrough" if domain_type == "kvm" else "maximum"
    ET.SubElement(root, "cpu", mode=cpu_mode, check="none")
    ET.SubElement(root, "clock", offset="utc")
    ET.SubElement(root, "on_poweroff").text = "destroy"
    ET.SubElement(root, "on_reboot").text = "restart"
    ET.SubElement(root, "on_crash").text = "destroy"
    root.append(_devices(spec, pool=pool, pool_path=pool_path, network=network))
    return _render(root)


def _os(spec: MachineSpec) -> ET.Element:
    os_ = ET.Element("os")
    ET.SubElement(os_, "type", machine="pc").text = "hvm"
    if spec.kernel:
        ET.SubElement(os_, "kernel").text = spec.kernel
        if spec.initrd:
            ET.SubElement(os_, "initrd").text = spec.initrd
        if spec.cmdline:
            ET.SubElement(os_, "cmdline").text = spec.cmdline
    else:
        ET.SubElement(os_, "boot", dev="hd")
    return os_


def _devices(
    spec: MachineSpec, *, pool: str, pool_path: str, network: NetworkAttachment | None
) -> ET.Element:
    devices = ET.Element("devices")
    devices.append(_volume_disk(pool, disk_volume(spec.name), "vda", "qcow2"))
    # The seed is a read-only virtio disk, not a cdrom: no IDE/SATA controller needed, and
    # cloud-init finds NoCloud by the filesystem label, whatever the device.
    devices.append(_volume_disk(pool, seed_volume(spec.name), "vdb", "raw", readonly=True))
    if network is not None:
        devices.append(_interface(spec.name, network))
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "log", file=console_log_path(pool_path, spec.name), append="on")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    # Balloon statistics let usage() report what the guest uses, not what QEMU maps.
    balloon = ET.SubElement(devices, "memballoon", model="virtio")
    ET.SubElement(balloon, "stats", period="10")
    rng = ET.SubElement(devices, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    return devices


def bridge_name(network: str) -> str:
    """The bridge device of a network vpsorg makes: at most 15 characters (IFNAMSIZ), stable."""
    return "vpsbr-" + hashlib.sha256(network.encode()).hexdigest()[:9]


def _interface(name: str, network: NetworkAttachment) -> ET.Element:
    """A virtio NIC on a host bridge, or on an existing libvirt network (mode ``network``).

    A network vpsorg makes is joined by its bridge, not through libvirt's network: libvirt
    keeps a network's MAC list under /var/lib/libvirt/dnsmasq/, which only exists where
    dnsmasq is installed, and "no dnsmasq" is the point of these networks.
    """
    if network.mode == NetworkMode.NETWORK:
        kind, source = "network", network.name
    elif network.mode == NetworkMode.BRIDGE:
        kind, source = "bridge", network.name
    else:
        kind, source = "bridge", bridge_name(network.name)
    interface = ET.Element("interface", type=kind)
    ET.SubElement(interface, "mac", address=mac_address(name))
    ET.SubElement(interface, "source", {kind: source})
    ET.SubElement(interface, "model", type="virtio")
    return interface


def _volume_disk(
    pool: str, volume: str, target: str, fmt: str, *, readonly: bool = False
) -> ET.Element:
    disk = ET.Element("disk", type="volume", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=fmt)
    ET.SubElement(disk, "source", pool=pool, volume=volume)
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    if readonly:
        ET.SubElement(disk, "readonly")
    return disk


def _render(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def interface_devices(live_xml: str) -> list[str]:
    """The host-side device names (``vnet0``...) of a running domain's interfaces."""
    root = ET.fromstring(live_xml)
    return [
        target.attrib["dev"]
        for target in root.findall("./devices/interface/target")
        if target.attrib.get("dev")
    ]


def interface_bridges(live_xml: str) -> list[str]:
    """The bridges a domain's interfaces are plugged into (live XML names them for every type)."""
    root = ET.fromstring(live_xml)
    return [
        source.attrib["bridge"]
        for source in root.findall("./devices/interface/source")
        if source.attrib.get("bridge")
    ]


def pool_target_path(pool_xml_text: str) -> str | None:
    path = ET.fromstring(pool_xml_text).findtext("./target/path")
    return path.strip() if path else None


def volume_format(volume_xml_text: str) -> str | None:
    element = ET.fromstring(volume_xml_text).find("./target/format")
    return None if element is None else element.attrib.get("type")


# The last reboot's operation id, kept in the domain's <metadata> (live and persistent) so a
# reboot re-run after a crash finds it done (the contract: at most once per operation id).
REBOOT_NAMESPACE = "https://vpsorg.org/xmlns/libvirt/last-reboot/1"
REBOOT_PREFIX = "vpsorg"


def last_reboot_xml(operation_id: str) -> str:
    """The metadata element naming the last reboot: ``<last-reboot operation="..."/>``."""
    return ET.tostring(ET.Element("last-reboot", operation=operation_id), encoding="unicode")


def last_reboot_operation(metadata_xml: str) -> str | None:
    """The operation id in ``last_reboot_xml``'s element as libvirt gives it back."""
    return ET.fromstring(metadata_xml).attrib.get("operation")
