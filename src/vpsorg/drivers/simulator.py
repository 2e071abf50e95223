"""The simulator: a hypervisor that runs no machines, and a product in its own right.

It is the default driver, so a fresh install works with nothing but Python, and users can
point their own clients at a vpsorg with the simulator to test them. It keeps each
machine's state as a small JSON file under ``state_dir/machines`` (so it survives restarts and is
shared by several worker processes on one machine, like a real hypervisor's state), takes
``delay`` seconds per transition, reports plausible usage that changes over time, and can
be told to fail (``inject_fault``) so failure handling can be tested end to end.

Every operation that takes effect is appended to ``journal.jsonl`` in the state directory
(one JSON object a line: operation, machine, process id, time): an audit trail of what the
"hypervisor" did, which tests use to prove no action ran twice. A repeat that changes
nothing (a create of a machine that exists, a start of a running one, a delete of a missing
one, a reboot with the operation id last recorded) is not an operation and is not written.

Each machine has a disk: a file under ``state_dir/disks`` that a test (or a user's test
harness) writes and reads as the guest would (``write_disk``, ``read_disk``). Backups are
copies of it under ``state_dir/backups``, each with a small JSON file of its size, so
backup, restore and delete behave as on a real host.

A reboot takes effect at once (the operation id recorded in the machine's file, then the
journal line) and then takes ``delay`` seconds, the guest coming back; the other
operations take their ``delay`` first.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vpsorg.drivers.base import (
    BackupInfo,
    Driver,
    HostCapacity,
    MachineSpec,
    MachineState,
    PermanentDriverError,
    RetriableDriverError,
    Usage,
)

OPERATIONS = ("create", "start", "stop", "reboot", "delete", "backup", "restore", "delete_backup")
BYTES_PER_GB = 1_000_000_000
SIMULATED_BYTES_PER_SECOND = 200_000  # about 0.7 GB an hour
SIMULATED_HOST = HostCapacity(vcpus=64, memory_mb=262_144, disk_gb=4_000)


class SimulatorDriver(Driver):
    name = "simulator"

    def __init__(self, state_dir: Path, delay: float = 3.0) -> None:
        self.state_dir = Path(state_dir)
        self.delay = delay

    async def probe(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return f"simulator (state in {self.state_dir}, {self.delay:g}s per transition)"

    # -- lifecycle -------------------------------------------------------------------

    async def create(self, spec: MachineSpec) -> None:
        await self._transition("create", spec.name)
        if self._read(spec.name) is not None:
            self._set_running(spec.name, True)  # a retry: the first attempt built it
            return
        self._journal("create", spec.name)
        now = time.time()
        record = {
            "spec": asdict(spec),
            "state": "running",
            "created": now,
            "booted": now,
            "uptime_before_boot": 0.0,
            "last_reboot": None,
        }
        self._write(spec.name, record)
        _atomic_write_bytes(self._disk(spec.name), f"{spec.name}: a fresh disk\n".encode())

    async def start(self, name: str, *, host_uri: str | None = None) -> None:
        await self._transition("start", name)
        if self._require(name)["state"] != "running":
            self._journal("start", name)
            self._set_running(name, True)

    async def stop(self, name: str, timeout: float, *, host_uri: str | None = None) -> None:
        await self._transition("stop", name)
        if self._require(name)["state"] == "running":
            self._journal("stop", name)
            self._set_running(name, False)

    async def reboot(
        self, name: str, *, host_uri: str | None = None, operation_id: str | None = None
    ) -> None:
        self._fail_if_told("reboot", name)
        record = self._require(name)
        if operation_id is not None and record.get("last_reboot") == operation_id:
            return  # done before a crash
        if record["state"] != "running":
            raise PermanentDriverError(f"machine {name} is not running", code="not_running")
        if operation_id is not None:
            record["last_reboot"] = operation_id
            self._write(name, record)
        self._journal("reboot", name)
        self._set_running(name, False)
        self._set_running(name, True)
        await self._pause()  # the guest coming back

    async def delete(self, name: str, *, host_uri: str | None = None) -> None:
        await self._transition("delete", name)
        if self._read(name) is not None:
            self._journal("delete", name)
            self._path(name).unlink(missing_ok=True)
        self._disk(name).unlink(missing_ok=True)

    # -- backups ---------------------------------------------------------------------

    async def backup(
        self, name: str, backup_name: str, *, host_uri: str | None = None
    ) -> BackupInfo:
        await self._transition("backup", name)
        meta = self._backup_path(backup_name, ".json")
        if meta.exists():
            return BackupInfo(**json.loads(meta.read_text()))
        self._require(name)
        usage = await self.usage(name)
        assert usage is not None
        info = BackupInfo(allocated_bytes=usage.disk_used_gb * BYTES_PER_GB)
        _atomic_write_bytes(self._backup_path(backup_name, ".disk"), self.read_disk(name))
        _atomic_write(meta, json.dumps(asdict(info)))  # last: the backup exists from here
        self._journal("backup", name)
        return info

    async def restore(self, name: str, backup_name: str, *, host_uri: str | None = None) -> None:
        await self._transition("restore", name)
        if self._require(name)["state"] == "running":
            raise PermanentDriverError(f"machine {name} is running", code="not_stopped")
        if not self._backup_path(backup_name, ".json").exists():
            raise PermanentDriverError(
                f"backup {backup_name} does not exist", code="backup_missing"
            )
        self.write_disk(name, self._backup_path(backup_name, ".disk").read_bytes())
        self._journal("restore", name)

    async def delete_backup(self, backup_name: str, *, host_uri: str | None = None) -> None:
        await self._transition("delete_backup", backup_name)
        meta = self._backup_path(backup_name, ".json")
        if meta.exists():
            self._journal("delete_backup", backup_name)
        meta.unlink(missing_ok=True)  # first: a half-deleted backup no longer exists
        self._backup_path(backup_name, ".disk").unlink(missing_ok=True)

    def backups(self) -> list[str]:
        """The names of the backups the "host" keeps."""
        return sorted(path.stem for path in (self.state_dir / "backups").glob("*.json"))

    async def state(self, name: str, *, host_uri: str | None = None) -> MachineState:
        record = self._read(name)
        if record is None:
            return MachineState.MISSING
        return MachineState(record["state"])

    async def usage(self, name: str, *, host_uri: str | None = None) -> Usage | None:
        record = self._read(name)
        if record is None:
            return None
        spec = record["spec"]
        running = record["state"] == "running"
        now = time.time()
        uptime = record["uptime_before_boot"] + (now - record["booted"] if running else 0.0)
        seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 1000
        wave = 0.5 + 0.5 * math.sin(now / 97.0 + seed)
        cpu = round(3.0 + 40.0 * wave, 1) if running else 0.0
        memory = int(spec["memory_mb"] * (0.25 + 0.35 * wave)) if running else 0
        disk = min(spec["disk_gb"], 2 + seed % 5 + int(uptime / 3600))
        since_boot = now - record["booted"] if running else 0.0
        network = int(since_boot * SIMULATED_BYTES_PER_SECOND)
        return Usage(cpu, memory, disk, network)

    async def machines(self, *, host_uri: str | None = None) -> dict[str, MachineState]:
        """The machines placed on ``host_uri`` (their spec's host; None is the default host):
        one state directory holds every simulated host, as one libvirt URI holds one host."""
        found: dict[str, MachineState] = {}
        for path in sorted((self.state_dir / "machines").glob("*.json")):
            record = self._read(path.stem)
            if record is not None and record["spec"].get("host_uri") == host_uri:
                found[path.stem] = MachineState(record["state"])
        return found

    async def capacity(self, *, host_uri: str | None = None) -> HostCapacity:
        return HostCapacity(vcpus=SIMULATED_HOST.vcpus, memory_mb=SIMULATED_HOST.memory_mb,
                            disk_gb=SIMULATED_HOST.disk_gb)  # fmt: skip

    # -- what happens inside a guest -------------------------------------------------

    def guest_power_off(self, name: str) -> None:
        """The guest shut itself down (``poweroff`` inside it, or it crashed)."""
        self._set_running(name, False)

    def write_disk(self, name: str, data: bytes) -> None:
        """The guest wrote ``data`` as its whole disk."""
        self._require(name)
        _atomic_write_bytes(self._disk(name), data)

    def read_disk(self, name: str) -> bytes:
        """What the machine's disk holds (empty for a machine made before disks existed)."""
        self._require(name)
        try:
            return self._disk(name).read_bytes()
        except FileNotFoundError:
            return b""

    # -- faults ----------------------------------------------------------------------

    def inject_fault(
        self,
        operation: str,
        message: str = "simulated failure",
        *,
        machine: str | None = None,
        times: int = 1,
        retriable: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``operation`` (optionally on one machine) fail."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        with self._faults() as faults:
            faults.append(
                {"operation": operation, "machine": machine, "message": message,
                 "times": times, "retriable": retriable}
            )  # fmt: skip

    def _take_fault(self, operation: str, name: str) -> dict[str, Any] | None:
        with self._faults() as faults:
            for fault in faults:
                if fault["operation"] == operation and fault["machine"] in (None, name):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        faults.remove(fault)
                    return fault
        return None

    @contextmanager
    def _faults(self) -> Iterator[list[dict[str, Any]]]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "faults.json"
        with open(self.state_dir / "faults.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            saved = path.read_text() if path.exists() else "[]"
            faults = json.loads(saved)
            yield faults
            if json.dumps(faults) != saved:  # most operations find no fault: nothing to write
                _atomic_write(path, json.dumps(faults))

    def journal(self) -> list[dict[str, Any]]:
        """Every operation that took effect, oldest first."""
        path = self.state_dir / "journal.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def _journal(self, operation: str, name: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"op": operation, "machine": name, "pid": os.getpid(), "at": time.time()})
        fd = os.open(
            self.state_dir / "journal.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
        try:
            os.write(fd, (line + "\n").encode())  # one write with O_APPEND: lines never interleave
        finally:
            os.close(fd)

    # -- internals -------------------------------------------------------------------

    async def _transition(self, operation: str, name: str) -> None:
        await self._pause()
        self._fail_if_told(operation, name)

    async def _pause(self) -> None:
        if self.delay > 0:
            await asyncio.sleep(self.delay)

    def _fail_if_told(self, operation: str, name: str) -> None:
        fault = self._take_fault(operation, name)
        if fault is not None:
            if fault["retriable"]:
                raise RetriableDriverError(fault["message"], retry_after=0.1)
            raise PermanentDriverError(fault["message"])

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise PermanentDriverError(f"invalid machine name {name!r}")
        return self.state_dir / "machines" / f"{name}.json"

    def _disk(self, name: str) -> Path:
        return self._path(name).parent.parent / "disks" / f"{name}.disk"

    def _backup_path(self, backup_name: str, suffix: str) -> Path:
        return self._path(backup_name).parent.parent / "backups" / f"{backup_name}{suffix}"

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(name).read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def _require(self, name: str) -> dict[str, Any]:
        record = self._read(name)
        if record is None:
            raise PermanentDriverError(f"machine {name} does not exist", code="machine_missing")
        return record

    def _write(self, name: str, record: dict[str, Any]) -> None:
        (self.state_dir / "machines").mkdir(parents=True, exist_ok=True)
        _atomic_write(self._path(name), json.dumps(record))

    def _set_running(self, name: str, running: bool) -> None:
        record = self._require(name)
        now = time.time()
        was_running = record["state"] == "running"
        if was_running and not running:
            record["uptime_before_boot"] += now - record["booted"]
        if running and not was_running:
            record["booted"] = now
        record["state"] = "running" if running else "stopped"
        self._write(name, record)


def _atomic_write(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
