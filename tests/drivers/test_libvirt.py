"""The libvirt driver against libvirt's in-memory ``test:///default`` hypervisor.

The contract suite (test_contract.py) also runs against it; these tests cover what is
particular to libvirt: volumes, image formats, clean-up of a failed create, error mapping.
``test:///default`` is shared by the whole process, so each test uses its own machine names
and deletes what it made. Without libvirt-python these tests skip, unless
``VPSORG_REQUIRE_LIBVIRT`` is set (CI), where a missing binding is a failure.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements import require_libvirt_binding
from vpsorg.config import Settings
from vpsorg.drivers.base import (
    Driver,
    MachineSpec,
    MachineState,
    PermanentDriverError,
    RetriableDriverError,
)

TEST_URI = "test:///default"
TEST_POOL = "vpsorg-test"


def make_test_driver(pool_path: Path, network: str | None = "default") -> Driver:
    """A LibvirtDriver on libvirt's in-memory test hypervisor (no QEMU involved)."""
    require_libvirt_binding()
    from vpsorg.drivers.libvirt import LibvirtDriver

    return LibvirtDriver(TEST_URI, pool=TEST_POOL, pool_path=pool_path, network=network,
                         poll_interval=0.01)  # fmt: skip


def unique_spec(**changes: Any) -> MachineSpec:
    fields: dict[str, Any] = {
        "name": f"vps-lv-{uuid.uuid4().hex[:10]}", "hostname": "lv.example.com", "vcpus": 1,
        "memory_mb": 512, "disk_gb": 5, "os_slug": "debian-12",
        "ipv4_address": "203.0.113.60", "ipv4_gateway": "203.0.113.1",
    }  # fmt: skip
    fields.update(changes)
    return MachineSpec(**fields)


@pytest.fixture
def libvirt() -> Any:
    return require_libvirt_binding()


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[Any]:
    instance = make_test_driver(tmp_path / "pool")
    made: list[str] = []
    instance.made = made  # type: ignore[attr-defined]
    yield instance
    for name in made:
        await instance.delete(name)
    await instance.close()


async def create(driver: Any, **changes: Any) -> MachineSpec:
    spec = unique_spec(**changes)
    driver.made.append(spec.name)
    await driver.create(spec)
    return spec


def connection(libvirt: Any) -> Any:
    return libvirt.open(TEST_URI)


def volume_names(libvirt: Any) -> set[str]:
    pool = connection(libvirt).storagePoolLookupByName(TEST_POOL)
    return {volume.name() for volume in pool.listAllVolumes()}


def volume_root(libvirt: Any, name: str) -> ET.Element:
    pool = connection(libvirt).storagePoolLookupByName(TEST_POOL)
    return ET.fromstring(pool.storageVolLookupByName(name).XMLDesc(0))


def image(tmp_path: Path, name: str, magic: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(magic + bytes(508))
    return str(path)


def magic_of(path: str) -> bytes:
    return Path(path).read_bytes()[:4]


def write_console_log(libvirt: Any, name: str, data: bytes) -> Path:
    """Stand in for virtlogd: write the log where the domain XML says it goes."""
    pool = connection(libvirt).storagePoolLookupByName(TEST_POOL)
    directory = Path(ET.fromstring(pool.XMLDesc(0)).findtext("target/path"))
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}-console.log"
    log.write_bytes(data)
    return log


# -- create and delete -------------------------------------------------------------------


async def test_create_makes_an_overlay_a_seed_and_a_persistent_domain(driver, libvirt, tmp_path):
    base = image(tmp_path, "debian.qcow2", b"QFI\xfb")
    spec = await create(driver, image=base)

    overlay = volume_root(libvirt, f"{spec.name}.qcow2")
    assert overlay.find("target/format").get("type") == "qcow2"
    assert int(overlay.findtext("capacity")) == 5 * 1024**3
    assert overlay.findtext("backingStore/path") == base
    assert overlay.find("backingStore/format").get("type") == "qcow2"
    assert f"{spec.name}-seed.iso" in volume_names(libvirt)

    domain = connection(libvirt).lookupByName(spec.name)
    assert domain.isPersistent()
    assert domain.isActive()
    root = ET.fromstring(domain.XMLDesc(0))
    assert root.get("type") == "qemu"  # the test hypervisor offers no KVM
    assert root.find("devices/interface/source").get("network") == "default"


async def test_delete_removes_domain_and_volumes_but_not_the_image(driver, libvirt, tmp_path):
    base = image(tmp_path, "debian.qcow2", b"QFI\xfb")
    spec = await create(driver, image=base)
    await driver.delete(spec.name)
    assert await driver.state(spec.name) == MachineState.MISSING
    assert not {f"{spec.name}.qcow2", f"{spec.name}-seed.iso"} & volume_names(libvirt)
    assert magic_of(base) == b"QFI\xfb"


async def test_image_format_comes_from_the_magic_bytes_not_the_name(driver, libvirt, tmp_path):
    raw = image(tmp_path, "misleading.qcow2", b"\x00\x00\x00\x00")
    spec = await create(driver, image=raw)
    overlay = volume_root(libvirt, f"{spec.name}.qcow2")
    assert overlay.find("backingStore/format").get("type") == "raw"


async def test_missing_image_fails_permanently_and_leaves_nothing(driver, libvirt, tmp_path):
    with pytest.raises(PermanentDriverError) as failure:
        await create(driver, image=str(tmp_path / "nope.qcow2"))
    assert failure.value.code == "image_missing"
    assert await driver.state(driver.made[-1]) == MachineState.MISSING


async def test_relative_image_path_is_refused(driver):
    with pytest.raises(PermanentDriverError, match="absolute"):
        await create(driver, image="debian.qcow2")


async def test_failed_create_cleans_up_what_it_made(driver, libvirt, monkeypatch):
    from vpsorg.drivers.libvirt import driver as module

    monkeypatch.setattr(module, "domain_xml", lambda *args, **kwargs: "<domain type='qemu'/>")
    with pytest.raises(PermanentDriverError):
        await create(driver)
    name = driver.made[-1]
    assert await driver.state(name) == MachineState.MISSING
    assert not {f"{name}.qcow2", f"{name}-seed.iso"} & volume_names(libvirt)


async def test_create_again_boots_a_stopped_machine(driver):
    spec = await create(driver)
    await driver.stop(spec.name, timeout=1)
    await driver.create(spec)
    assert await driver.state(spec.name) == MachineState.RUNNING


async def test_without_network_there_is_no_interface(tmp_path, libvirt):
    quiet = make_test_driver(tmp_path / "pool", network="")
    spec = unique_spec()
    try:
        await quiet.create(spec)
        root = ET.fromstring(connection(libvirt).lookupByName(spec.name).XMLDesc(0))
        assert root.find("devices/interface") is None
        usage = await quiet.usage(spec.name)
        assert usage is not None
        assert usage.network_bytes == 0
    finally:
        await quiet.delete(spec.name)
        await quiet.close()


# -- lifecycle -----------------------------------------------------------------------


async def test_stop_forces_off_a_guest_that_ignores_acpi(driver, monkeypatch):
    from vpsorg.drivers.libvirt.driver import LibvirtDriver

    spec = await create(driver)
    asked: list[str] = []

    def ignored(self: Any, conn: Any, uri: str, name: str) -> bool:
        asked.append(name)
        return bool(conn.lookupByName(name).isActive())

    monkeypatch.setattr(LibvirtDriver, "_request_shutdown", ignored)
    driver.shutdown_resend = 0.05
    await driver.stop(spec.name, timeout=0.3)
    assert await driver.state(spec.name) == MachineState.STOPPED
    assert len(asked) >= 2  # asked again while waiting, then forced


async def test_reboot_of_a_stopped_machine_is_refused(driver):
    spec = await create(driver)
    await driver.stop(spec.name, timeout=1)
    with pytest.raises(PermanentDriverError) as failure:
        await driver.reboot(spec.name)
    assert failure.value.code == "not_running"


async def test_reboot_records_its_operation_in_the_domain_metadata(driver, libvirt):
    spec = await create(driver)
    await driver.reboot(spec.name, operation_id="action-42-x")

    domain = connection(libvirt).lookupByName(spec.name)
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):  # live, and kept in the definition
        metadata = ET.fromstring(domain.XMLDesc(flags)).find("./metadata")
        assert metadata is not None
        record = metadata.find("{https://vpsorg.org/xmlns/libvirt/last-reboot/1}last-reboot")
        assert record is not None and record.get("operation") == "action-42-x"


async def test_a_refused_reboot_is_forgotten_so_a_retry_reboots(driver, libvirt, monkeypatch):
    spec = await create(driver)
    await driver.reboot(spec.name, operation_id="action-1")
    reboot = libvirt.virDomain.reboot
    refusals = [libvirt.libvirtError("the guest agent is busy")]

    def refused_once(domain: Any, flags: int = 0) -> Any:
        if refusals:
            raise refusals.pop()
        return reboot(domain, flags)

    monkeypatch.setattr(libvirt.virDomain, "reboot", refused_once)
    with pytest.raises(PermanentDriverError):
        await driver.reboot(spec.name, operation_id="action-2")
    domain = connection(libvirt).lookupByName(spec.name)
    assert 'operation="action-1"' in domain.XMLDesc(0)  # the earlier record, restored
    await driver.reboot(spec.name, operation_id="action-2")
    assert 'operation="action-2"' in domain.XMLDesc(0)


async def test_operations_on_a_missing_machine(driver):
    for operation in (driver.start, driver.reboot):
        with pytest.raises(PermanentDriverError) as failure:
            await operation("vps-lv-never")
        assert failure.value.code == "machine_missing"
    await driver.delete("vps-lv-never")


async def test_invalid_names_are_refused_permanently(driver):
    with pytest.raises(PermanentDriverError) as failure:
        await driver.state("../etc/passwd")
    assert failure.value.code == "invalid_name"


# -- what the host reports -----------------------------------------------------------


async def test_machines_lists_every_domain_including_others(driver):
    spec = await create(driver)
    await driver.stop(spec.name, timeout=1)
    machines = await driver.machines()
    assert machines[spec.name] == MachineState.STOPPED
    assert machines["test"] == MachineState.RUNNING  # the test hypervisor's own domain


async def test_capacity_reads_the_node_and_the_pool(driver):
    capacity = await driver.capacity()
    assert (capacity.vcpus, capacity.memory_mb) == (16, 3072)  # test:///default's node
    assert capacity.disk_gb > 0


async def test_usage_samples_cpu_and_forgets_deleted_machines(driver):
    spec = await create(driver)
    first = await driver.usage(spec.name)
    second = await driver.usage(spec.name)
    for usage in (first, second):
        assert usage is not None
        assert 0 <= usage.cpu_percent <= 100
    assert (driver.uri, spec.name) in driver._cpu_samples
    await driver.stop(spec.name, timeout=1)
    stopped = await driver.usage(spec.name)
    assert stopped is not None
    assert (stopped.cpu_percent, stopped.memory_used_mb) == (0.0, 0)
    await driver.delete(spec.name)
    assert await driver.usage(spec.name) is None
    assert (driver.uri, spec.name) not in driver._cpu_samples


async def test_console_log_is_read_from_the_pool_directory(driver, libvirt):
    spec = await create(driver)
    assert await driver.console_log(spec.name) is None
    log = write_console_log(libvirt, spec.name, b"Linux version 6.1\nlogin: \xff\n")
    assert (await driver.console_log(spec.name)).startswith("Linux version 6.1\nlogin: ")
    await driver.delete(spec.name)
    assert not await asyncio.to_thread(log.exists)


async def test_probe_describes_the_host(driver):
    description = await driver.probe()
    assert "test:///default" in description
    assert "domain type qemu" in description


# -- choosing KVM or TCG ---------------------------------------------------------------


class FakeConnection:
    def __init__(self, kvm: bool, libvirt: Any, cpu_features: tuple[str, ...] = ()) -> None:
        self.kvm = kvm
        self.libvirt = libvirt
        self.cpu_features = cpu_features

    def getDomainCapabilities(self, *args: Any) -> str:
        if not self.kvm:
            raise self.libvirt.libvirtError("KVM is not supported here")
        return "<domainCapabilities/>"

    def getCapabilities(self) -> str:
        features = "".join(f"<feature name='{name}'/>" for name in self.cpu_features)
        return (
            f"<capabilities><host><cpu><model>kvm64</model>{features}</cpu></host></capabilities>"
        )


def test_the_domain_type_setting_wins(libvirt):
    from vpsorg.drivers.libvirt.driver import choose_domain_type

    assert choose_domain_type(FakeConnection(False, libvirt), "kvm")[0] == "kvm"
    assert choose_domain_type(FakeConnection(True, libvirt, ("vmx",)), "qemu")[0] == "qemu"


def test_auto_takes_kvm_only_with_hardware_virtualization(libvirt):
    from vpsorg.drivers.libvirt.driver import choose_domain_type

    absent = choose_domain_type(FakeConnection(False, libvirt), "auto")
    paravirtual = choose_domain_type(FakeConnection(True, libvirt, ("lm", "sse4_2")), "auto")
    intel = choose_domain_type(FakeConnection(True, libvirt, ("lm", "vmx")), "auto")
    amd = choose_domain_type(FakeConnection(True, libvirt, ("svm",)), "auto")

    assert absent[0] == "qemu" and "no KVM" in absent[1]
    assert paravirtual[0] == "qemu" and "neither vmx nor svm" in paravirtual[1]
    assert "VPSORG_LIBVIRT_DOMAIN_TYPE=kvm" in paravirtual[1]
    assert intel == ("kvm", "KVM with hardware virtualization (vmx)")
    assert amd == ("kvm", "KVM with hardware virtualization (svm)")


# -- errors ----------------------------------------------------------------------------


def libvirt_error(libvirt: Any, code: int, domain: int, message: str) -> Any:
    error = libvirt.libvirtError(message)
    error.err = (code, domain, message, libvirt.VIR_ERR_ERROR, None, None, None, 0, 0)
    return error


def test_error_mapping(libvirt):
    from vpsorg.drivers.libvirt.driver import translate_error

    cases = [
        (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, RetriableDriverError),
        (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC, RetriableDriverError),
        (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_NONE, RetriableDriverError),
        (libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_FROM_QEMU, RetriableDriverError),
        (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU, PermanentDriverError),
        (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_STORAGE, PermanentDriverError),
    ]
    for code, domain, expected in cases:
        error = translate_error(libvirt_error(libvirt, code, domain, "boom"), "qemu:///x")
        assert type(error) is expected, (code, domain)
        assert "boom" in str(error)


async def test_unreachable_host_is_retriable(driver):
    with pytest.raises(RetriableDriverError, match="cannot reach libvirt"):
        await driver.state("vps-x", host_uri="qemu+unix:///system?socket=/nonexistent/sock")


async def test_a_broken_connection_is_reopened(driver):
    assert await driver.state("vps-lv-never") == MachineState.MISSING
    connection = driver._connections[driver.uri]
    connection.close()
    assert await driver.state("vps-lv-never") == MachineState.MISSING
    assert driver._connections[driver.uri] is not connection


# -- the registry ----------------------------------------------------------------------


def test_registry_builds_the_driver_from_settings(libvirt, tmp_path):
    from vpsorg.drivers.libvirt import LibvirtDriver
    from vpsorg.drivers.registry import create_driver

    settings = Settings(driver="libvirt", libvirt_uri=TEST_URI, libvirt_pool=TEST_POOL,
                        libvirt_pool_path=tmp_path, libvirt_network="",
                        libvirt_domain_type="qemu")  # fmt: skip
    built = create_driver(settings)
    assert isinstance(built, LibvirtDriver)
    assert (built.uri, built.pool, built.network, built.domain_type) == (
        TEST_URI, TEST_POOL, "", "qemu",
    )  # fmt: skip


def test_registry_names_the_fix_when_the_binding_is_missing(monkeypatch):
    from vpsorg.drivers.registry import DriverUnavailable, create_driver

    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now fails
    for module in ("vpsorg.drivers.libvirt.driver",):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(DriverUnavailable) as failure:
        create_driver(Settings(driver="libvirt"))
    assert "pip install -e '.[libvirt]'" in str(failure.value)
    assert "libvirt-dev pkg-config" in str(failure.value)
