"""The driver contract (drivers/base.py), run against every driver available here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.drivers.test_libvirt import make_test_driver
from tests.requirements import require_libvirt_binding
from vpsorg.drivers.base import (
    Driver,
    MachineSpec,
    MachineState,
    PermanentDriverError,
    RetriableDriverError,
)
from vpsorg.drivers.simulator import SimulatorDriver

SPEC = MachineSpec(
    name="vps-contract", hostname="contract.example.com", vcpus=1, memory_mb=512, disk_gb=5,
    os_slug="debian-12", ipv4_address="203.0.113.50", ipv4_gateway="203.0.113.1",
    ipv6_address="2001:db8:1::50", ipv6_gateway="2001:db8:1::1",
)  # fmt: skip


@pytest.fixture(params=["simulator", "libvirt"])
async def driver(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Driver]:
    instance: Driver
    if request.param == "libvirt":  # libvirt's in-memory test:///default hypervisor
        instance = make_test_driver(tmp_path / "pool")
    else:
        instance = SimulatorDriver(tmp_path / "sim", delay=0)
    await instance.probe()
    yield instance
    await instance.delete(SPEC.name)
    await instance.close()


async def test_create_leaves_the_machine_running_and_is_repeatable(driver):
    await driver.create(SPEC)
    assert await driver.state(SPEC.name) == MachineState.RUNNING
    await driver.create(SPEC)  # a retry after a crash
    assert await driver.state(SPEC.name) == MachineState.RUNNING


async def test_stop_start_reboot_and_their_repeats(driver):
    await driver.create(SPEC)
    await driver.stop(SPEC.name, timeout=5)
    assert await driver.state(SPEC.name) == MachineState.STOPPED
    await driver.stop(SPEC.name, timeout=5)
    assert await driver.state(SPEC.name) == MachineState.STOPPED
    await driver.start(SPEC.name)
    await driver.start(SPEC.name)
    assert await driver.state(SPEC.name) == MachineState.RUNNING
    await driver.reboot(SPEC.name)
    assert await driver.state(SPEC.name) == MachineState.RUNNING


def reboot_counter(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times the hypervisor has rebooted SPEC's machine since this call."""
    if isinstance(driver, SimulatorDriver):
        before = len(driver.journal())
        return lambda: [e["op"] for e in driver.journal()[before:]].count("reboot")
    libvirt = require_libvirt_binding()
    calls: list[str] = []
    reboot = libvirt.virDomain.reboot

    def counted(domain: Any, flags: int = 0) -> Any:
        calls.append(domain.name())
        return reboot(domain, flags)

    monkeypatch.setattr(libvirt.virDomain, "reboot", counted)
    return lambda: calls.count(SPEC.name)


async def test_reboot_is_done_once_per_operation_id(driver, monkeypatch):
    await driver.create(SPEC)
    reboots = reboot_counter(driver, monkeypatch)

    await driver.reboot(SPEC.name, operation_id="action-1")
    await driver.reboot(SPEC.name, operation_id="action-1")  # re-run after a crash
    assert reboots() == 1
    assert await driver.state(SPEC.name) == MachineState.RUNNING
    await driver.reboot(SPEC.name, operation_id="action-2")
    assert reboots() == 2
    await driver.reboot(SPEC.name)  # without an id, every call reboots
    await driver.reboot(SPEC.name)
    assert reboots() == 4

    # The record outlives the running machine: a re-run finds it done, whatever the state.
    await driver.stop(SPEC.name, timeout=5)
    await driver.reboot(SPEC.name, operation_id="action-2")
    with pytest.raises(PermanentDriverError, match="not running"):
        await driver.reboot(SPEC.name, operation_id="action-3")
    assert reboots() == 4


async def test_delete_removes_and_repeats_safely(driver):
    await driver.create(SPEC)
    await driver.delete(SPEC.name)
    assert await driver.state(SPEC.name) == MachineState.MISSING
    assert await driver.usage(SPEC.name) is None
    await driver.delete(SPEC.name)


async def test_missing_machine_is_reported_not_raised(driver):
    assert await driver.state("vps-never") == MachineState.MISSING
    assert await driver.usage("vps-never") is None
    with pytest.raises(PermanentDriverError):
        await driver.start("vps-never")


async def test_usage_is_plausible(driver):
    await driver.create(SPEC)
    usage = await driver.usage(SPEC.name)
    assert usage is not None
    assert 0 <= usage.cpu_percent <= 100
    assert 0 < usage.memory_used_mb <= SPEC.memory_mb
    assert 0 <= usage.disk_used_gb <= SPEC.disk_gb
    assert usage.network_bytes >= 0


async def test_simulator_faults_are_consumed(tmp_path):
    sim = SimulatorDriver(tmp_path, delay=0)
    sim.inject_fault("create", "boom", times=2)
    for _ in range(2):
        with pytest.raises(PermanentDriverError, match="boom"):
            await sim.create(SPEC)
    assert await sim.state(SPEC.name) == MachineState.MISSING
    await sim.create(SPEC)
    assert await sim.state(SPEC.name) == MachineState.RUNNING
    with pytest.raises(ValueError, match="unknown operation"):
        sim.inject_fault("explode")


async def test_simulator_state_survives_a_new_instance(tmp_path):
    await SimulatorDriver(tmp_path, delay=0).create(SPEC)
    assert await SimulatorDriver(tmp_path, delay=0).state(SPEC.name) == MachineState.RUNNING


async def test_simulator_journal_records_each_operation_once(tmp_path):
    sim = SimulatorDriver(tmp_path, delay=0)
    for _ in range(2):  # each repeat, as after a crash, changes nothing
        await sim.create(SPEC)
    for _ in range(2):
        await sim.stop(SPEC.name, timeout=1)
    for _ in range(2):
        await sim.start(SPEC.name)
    for _ in range(2):
        await sim.reboot(SPEC.name, operation_id="action-7")
    for _ in range(2):
        await sim.delete(SPEC.name)

    assert [(e["op"], e["machine"]) for e in sim.journal()] == [
        (op, SPEC.name) for op in ("create", "stop", "start", "reboot", "delete")
    ]


async def test_simulator_reboot_refused_may_be_tried_again_with_its_id(tmp_path):
    sim = SimulatorDriver(tmp_path, delay=0)
    await sim.create(SPEC)
    sim.inject_fault("reboot", "guest agent busy", retriable=True)
    with pytest.raises(RetriableDriverError):
        await sim.reboot(SPEC.name, operation_id="action-8")
    await sim.reboot(SPEC.name, operation_id="action-8")
    assert [e["op"] for e in sim.journal()] == ["create", "reboot"]


BACKUP = "vps-contract-backup-1"


async def test_backup_restore_and_delete_backup_are_repeatable(driver):
    await driver.create(SPEC)
    try:
        info = await driver.backup(SPEC.name, BACKUP)
        assert await driver.state(SPEC.name) == MachineState.RUNNING  # taken without a stop
        assert await driver.backup(SPEC.name, BACKUP) == info  # a repeat returns the same
        with pytest.raises(PermanentDriverError) as running:
            await driver.restore(SPEC.name, BACKUP)
        assert running.value.code == "not_stopped"
        await driver.stop(SPEC.name, timeout=5)
        await driver.restore(SPEC.name, BACKUP)
        await driver.restore(SPEC.name, BACKUP)
        await driver.start(SPEC.name)
        assert await driver.state(SPEC.name) == MachineState.RUNNING
        await driver.stop(SPEC.name, timeout=5)
        with pytest.raises(PermanentDriverError) as missing:
            await driver.restore(SPEC.name, "vps-contract-no-such-backup")
        assert missing.value.code == "backup_missing"
    finally:
        await driver.delete_backup(BACKUP)
    await driver.delete_backup(BACKUP)  # a missing one: nothing to do
    with pytest.raises(PermanentDriverError):
        await driver.restore(SPEC.name, BACKUP)


async def test_a_backup_outlives_its_machine_until_deleted(driver):
    await driver.create(SPEC)
    await driver.backup(SPEC.name, BACKUP)
    await driver.delete(SPEC.name)
    await driver.create(SPEC)
    await driver.stop(SPEC.name, timeout=5)
    await driver.restore(SPEC.name, BACKUP)
    await driver.delete_backup(BACKUP)
