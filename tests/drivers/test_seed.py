"""The cloud-init NoCloud seed ISO, read back with pycdlib as a guest's kernel would."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pycdlib
import pytest

from vpsorg.drivers.base import MachineSpec
from vpsorg.drivers.libvirt.domain import mac_address
from vpsorg.drivers.libvirt.seed import (
    DEFAULT_NAMESERVERS,
    build_seed,
    dump_yaml,
    network_config,
)

SPEC = MachineSpec(
    name="vps-seed", hostname="web1.example.com", vcpus=1, memory_mb=512, disk_gb=5,
    os_slug="debian-12", ssh_public_key="ssh-ed25519 AAAAC3Nza user@laptop\n",
    ipv4_address="203.0.113.50", ipv4_prefix=24, ipv4_gateway="203.0.113.1",
    ipv6_address="2001:db8:1::50", ipv6_prefix=64, ipv6_gateway="2001:db8:1::1",
)  # fmt: skip
FILES = ("meta-data", "user-data", "network-config")


@pytest.fixture
def iso() -> Any:
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(build_seed(SPEC)))
    yield image
    image.close()


def read(image: Any, name: str, *, joliet: bool = False) -> bytes:
    out = io.BytesIO()
    where = {"joliet_path": f"/{name}"} if joliet else {"rr_path": f"/{name}"}
    image.get_file_from_iso_fp(out, **where)
    return out.getvalue()


def files_of(spec: MachineSpec) -> dict[str, bytes]:
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(build_seed(spec)))
    try:
        return {name: read(image, name) for name in FILES}
    finally:
        image.close()


def test_label_is_cidata_with_rock_ridge_and_joliet(iso):
    assert iso.pvd.volume_identifier.decode().strip() == "cidata"
    assert iso.has_rock_ridge()
    assert iso.has_joliet()
    assert iso.joliet_vd.volume_identifier.decode("utf-16-be").strip() == "cidata"


def test_files_carry_their_real_names_under_rock_ridge_and_joliet(iso):
    for name in FILES:
        assert read(iso, name) == read(iso, name, joliet=True)
        assert read(iso, name)


def test_meta_data_names_the_instance_and_host(iso):
    assert read(iso, "meta-data").decode() == (
        "instance-id: vps-seed\n"
        "local-hostname: web1.example.com\n"
    )  # fmt: skip


def test_user_data_is_cloud_config_with_hostname_and_keys(iso):
    assert read(iso, "user-data").decode() == (
        "#cloud-config\n"
        "hostname: web1\n"
        "fqdn: web1.example.com\n"
        "preserve_hostname: false\n"
        "ssh_authorized_keys:\n"
        '  - "ssh-ed25519 AAAAC3Nza user@laptop"\n'
    )


def test_user_data_without_key_has_no_keys():
    assert b"ssh_authorized_keys" not in files_of(replace(SPEC, ssh_public_key=None))["user-data"]


def test_network_config_is_static_netplan_v2(iso):
    mac = mac_address("vps-seed")
    nameservers = "".join(f'        - "{server}"\n' for server in DEFAULT_NAMESERVERS)
    assert read(iso, "network-config").decode() == (
        "version: 2\n"
        "ethernets:\n"
        "  eth0:\n"
        "    match:\n"
        f'      macaddress: "{mac}"\n'
        '      name: "e*"\n'
        "    dhcp4: false\n"
        "    dhcp6: false\n"
        "    addresses:\n"
        '      - "203.0.113.50/24"\n'
        '      - "2001:db8:1::50/64"\n'
        "    routes:\n"
        '      - to: "0.0.0.0/0"\n'
        '        via: "203.0.113.1"\n'
        '      - to: "::/0"\n'
        '        via: "2001:db8:1::1"\n'
        "    nameservers:\n"
        "      addresses:\n"
        f"{nameservers}"
    )


def test_network_config_without_addresses_uses_dhcp():
    bare = replace(SPEC, ipv4_address=None, ipv4_gateway=None, ipv6_address=None,
                   ipv6_gateway=None)  # fmt: skip
    config = network_config(bare)["ethernets"]["eth0"]
    assert config["dhcp4"] is True
    assert "addresses" not in config
    assert "routes" not in config
    assert b"dhcp4: true" in files_of(bare)["network-config"]


def test_values_are_quoted_so_nothing_can_be_injected():
    odd = replace(SPEC, hostname='evil"\nroot: x #.example.com', ssh_public_key="a: {b}\n\n")
    files = files_of(odd)
    assert files["meta-data"].decode().splitlines() == [
        "instance-id: vps-seed",
        'local-hostname: "evil\\"\\nroot: x #.example.com"',
    ]
    assert '  - "a: {b}"' in files["user-data"].decode().splitlines()


def test_yaml_plain_strings_are_only_those_yaml_reads_as_strings():
    words = ["web1.example.com", "eth0", "a/b", "yes", "Off", "NULL", "y", "1e3", "0x1f",
             "2002-12-14", "1:20", ".5", "~", "e*", "-a", "a b", ""]  # fmt: skip
    lines = dump_yaml({"v": words}).splitlines()[1:]
    assert lines == [
        "  - web1.example.com", "  - eth0", "  - a/b", '  - "yes"', '  - "Off"', '  - "NULL"',
        '  - "y"', '  - "1e3"', '  - "0x1f"', '  - "2002-12-14"', '  - "1:20"', '  - ".5"',
        '  - "~"', '  - "e*"', '  - "-a"', '  - "a b"', '  - ""',
    ]  # fmt: skip


def test_yaml_emitter_nests_and_escapes():
    document = {
        "on": [1, 2.5, None, True, [], {}, [[1, [2]], {"a": {"b": [{"c": "d"}]}}]],
        "plain-key_1": "caf\u00e9 \U0001f600\u2028\x85\x00",
        "with space": {"": "x"},
    }
    assert dump_yaml(document) == (
        '"on":\n'
        "  - 1\n"
        "  - 2.5\n"
        "  - null\n"
        "  - true\n"
        "  - []\n"
        "  - {}\n"
        "  - - - 1\n"
        "      - - 2\n"
        "    - a:\n"
        "        b:\n"
        "          - c: d\n"
        'plain-key_1: "caf\u00e9 \U0001f600\\u2028\\u0085\\u0000"\n'
        '"with space":\n'
        '  "": x\n'
    )
    with pytest.raises(TypeError):
        dump_yaml({"x": object()})
