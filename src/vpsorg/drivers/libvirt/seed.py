"""The cloud-init NoCloud seed: a small ISO labelled ``cidata`` that configures the guest.

It is built in Python (pycdlib), so hosts need no genisoimage and the bytes can be uploaded
to a remote host through libvirt. The three files are block-style YAML (``key: value``
lines, readable and greppable, which the test guest's shell ``/init`` relies on) from a
small emitter rather than a YAML dependency. A string is written plain only when it starts
with a letter and holds nothing but letters, digits and ``._/-``: YAML can then read it
only as a string (the words it reads as booleans or null are quoted too). Anything else is
written by ``json.dumps``: a JSON string is a valid YAML double-quoted scalar, so no value
can break out of its line.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pycdlib

from vpsorg.drivers.base import MachineSpec
from vpsorg.drivers.libvirt.domain import mac_address

LABEL = "cidata"
# Public resolvers until nameservers are configurable per location.
DEFAULT_NAMESERVERS = ("1.1.1.1", "9.9.9.9", "2606:4700:4700::1111", "2620:fe::fe")
# ISO 9660 level-1 names (8.3, upper case) for old readers; Rock Ridge and Joliet carry the
# real names, which is what Linux shows.
_ISO_NAMES = {"meta-data": "METADATA.;1", "user-data": "USERDATA.;1",
              "network-config": "NETWORKC.;1"}  # fmt: skip


def build_seed(spec: MachineSpec, nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS) -> bytes:
    """The seed ISO's bytes for ``spec``."""
    return _iso(seed_files(spec, nameservers))


def seed_files(
    spec: MachineSpec, nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS
) -> dict[str, bytes]:
    """The seed's files by name (``meta-data``, ``user-data``, ``network-config``)."""
    return {
        "meta-data": dump_yaml(meta_data(spec)).encode(),
        "user-data": ("#cloud-config\n" + dump_yaml(user_data(spec))).encode(),
        "network-config": dump_yaml(network_config(spec, nameservers)).encode(),
    }


def meta_data(spec: MachineSpec) -> dict[str, Any]:
    # instance-id is the machine name: stable across reboots, so cloud-init runs once.
    return {"instance-id": spec.name, "local-hostname": spec.hostname}


def user_data(spec: MachineSpec) -> dict[str, Any]:
    config: dict[str, Any] = {
        "hostname": spec.hostname.split(".", 1)[0],
        "fqdn": spec.hostname,
        "preserve_hostname": False,
    }
    if spec.ssh_public_key:
        keys = [line.strip() for line in spec.ssh_public_key.splitlines() if line.strip()]
        config["ssh_authorized_keys"] = keys
    return config


def network_config(
    spec: MachineSpec, nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS
) -> dict[str, Any]:
    """Netplan v2 for the one NIC: static addresses from the spec; DHCPv4 without an IPv4 address."""
    nic: dict[str, Any] = {
        # The MAC is what cloud-init's non-netplan renderers (ifupdown, sysconfig) match on;
        # netplan also requires the name to look like an ethernet device.
        "match": {"macaddress": mac_address(spec.name), "name": "e*"},
        "dhcp4": spec.ipv4_address is None,
        "dhcp6": False,
    }
    addresses, routes = _addresses_and_routes(spec)
    if addresses:
        nic["addresses"] = addresses
    if routes:
        nic["routes"] = routes
    if nameservers:
        nic["nameservers"] = {"addresses": list(nameservers)}
    return {"version": 2, "ethernets": {"eth0": nic}}


def _addresses_and_routes(spec: MachineSpec) -> tuple[list[str], list[dict[str, str]]]:
    addresses: list[str] = []
    routes: list[dict[str, str]] = []
    if spec.ipv4_address:
        addresses.append(f"{spec.ipv4_address}/{spec.ipv4_prefix}")
        if spec.ipv4_gateway:
            routes.append({"to": "0.0.0.0/0", "via": spec.ipv4_gateway})
    if spec.ipv6_address:
        addresses.append(f"{spec.ipv6_address}/{spec.ipv6_prefix}")
        if spec.ipv6_gateway:
            routes.append({"to": "::/0", "via": spec.ipv6_gateway})
    return addresses, routes


# -- a small YAML emitter ----------------------------------------------------------------

# Starting with a letter rules out YAML 1.1's numbers, dates and indicators...
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*")
# ...leaving the words it (PyYAML, which cloud-init uses) reads as booleans or null.
_RESERVED_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
# What JSON leaves raw but YAML must not see raw: C1 controls and DEL (not printable), the
# Unicode line separators (folded like newlines), and surrogates (not characters at all).
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def dump_yaml(document: dict[str, Any]) -> str:
    """Block-style YAML for nested dicts and lists of str, int, float, bool and None."""
    return "\n".join(_mapping(document, 0)) + "\n"


def _mapping(mapping: dict[str, Any], indent: int) -> list[str]:
    lines: list[str] = []
    for key, value in mapping.items():
        lines += _entry(" " * indent + _string(key) + ":", value, indent + 2)
    return lines


def _sequence(items: list[Any], indent: int) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict | list) and item:
            # "- " takes the place of the nested block's indentation on its first line.
            first, *rest = _block(item, indent + 2)
            lines += [" " * indent + "- " + first[indent + 2 :], *rest]
        else:
            lines.append(" " * indent + "- " + _scalar(item))
    return lines


def _entry(prefix: str, value: Any, indent: int) -> list[str]:
    if isinstance(value, dict | list) and value:
        return [prefix, *_block(value, indent)]
    return [f"{prefix} {_scalar(value)}"]


def _block(value: dict[str, Any] | list[Any], indent: int) -> list[str]:
    return _mapping(value, indent) if isinstance(value, dict) else _sequence(value, indent)


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED_WORDS:
        return text
    return _quoted(text)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's escapes, plus \\u for what YAML keeps out.

    Not ``ensure_ascii``: YAML has no surrogate pairs, so an emoji must stay one character.
    """
    quoted = json.dumps(text, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _iso(files: dict[str, bytes]) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=LABEL, joliet=3, rock_ridge="1.09")
    try:
        for name, data in files.items():
            iso.add_fp(
                io.BytesIO(data), len(data), f"/{_ISO_NAMES[name]}",
                rr_name=name, joliet_path=f"/{name}",
            )  # fmt: skip
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()
