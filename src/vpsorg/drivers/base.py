"""The hypervisor driver contract.

A driver turns lifecycle commands into real (or simulated) machines. The worker calls it;
API requests never do. Every method is ``async`` and is identified by the machine's
*name* (``vps-<server id>``), which is stable across retries and crashes.

Post-conditions every driver must meet (the contract tests in ``tests/drivers`` check them):

* ``create`` leaves the machine running, or raises and leaves nothing behind. Calling it
  again for a machine that already exists (a retry after a crash) is a no-op that makes
  sure the machine is running. A network the spec's ``NetworkAttachment`` asks vpsorg to
  make is made (and started) first if missing, safely when several creates race for it; it
  stays when the machine goes.
* ``start`` on a running machine, ``stop`` on a stopped machine and ``delete`` of a
  missing machine all succeed: every operation is safe to repeat.
* ``stop`` is graceful first and forced after ``timeout`` seconds.
* ``reboot`` is the one operation whose repeat is not harmless (the guest would restart
  twice), so it is done at most once per ``operation_id`` (the worker passes one per
  action): before rebooting, the driver records the id on the machine, where the
  hypervisor keeps it (the simulator's state file; libvirt's domain metadata), and a
  later call with the id last recorded returns without rebooting, whatever the machine's
  state. So a reboot re-run after a crash is not done twice; a crash between recording
  and rebooting loses that reboot instead (at most once, never twice). Without an
  ``operation_id`` every call reboots. A reboot the hypervisor refused (it raised, and
  cannot have happened) may be tried again with the same id.
* ``state`` never raises for a missing machine; it answers ``MISSING``.
* ``machines`` lists every machine the host has, vpsorg's or not, with its state: the
  reconciler compares it with the database (and never deletes what it does not know).
* ``backup`` copies the machine's disk, as it is at one moment, into a backup named
  ``backup_name`` kept on the machine's host (outside the machine: deleting the machine
  leaves it), without stopping a running machine. Repeating it for a backup that exists
  returns that one's ``BackupInfo``; a failed one leaves nothing behind.
* ``restore`` replaces the disk of a *stopped* machine with the backup's copy (the backup
  stays); ``PermanentDriverError`` with code ``not_stopped`` when it runs, ``backup_missing``
  when there is no such backup. Repeating it is harmless.
* ``delete_backup`` of a missing backup succeeds.
* ``capacity`` reads what a host offers (vCPUs, memory, disk) for ``vpsorg hosts add``.
* ``host_uri`` names the hypervisor host the scheduler placed the machine on (a libvirt
  URI such as ``qemu+ssh://kvm1/system``); ``None`` means the driver's default host.
* Failures raise ``RetriableDriverError`` (the worker retries with backoff, e.g. the host
  was unreachable) or ``PermanentDriverError`` (recorded on the action, e.g. the image is
  missing). Anything else is treated as permanent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum


class MachineState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    MISSING = "missing"


class NetworkMode(StrEnum):
    """How a location's guests meet the network (the README says which fits which deployment)."""

    BRIDGE = "bridge"  # an existing host bridge, e.g. onto the provider's public ranges
    NETWORK = "network"  # an existing libvirt network, by name
    # Networks vpsorg defines and starts itself on a one-host install: a bridge holding each
    # range's gateway, no DHCP and no DNS (no dnsmasq), guests configured by their seed.
    ISOLATED = "isolated"  # host and guests only, no forwarding
    ROUTE = "route"  # forwarded, not translated: the ranges must be routed to the host
    NAT = "nat"  # guests reach out through the host's own address

    @property
    def made_by_vpsorg(self) -> bool:
        return self not in (NetworkMode.BRIDGE, NetworkMode.NETWORK)


@dataclass(frozen=True)
class NetworkAttachment:
    """Where the machine's one NIC goes.

    ``name`` is the host bridge (``bridge``) or the libvirt network (every other mode). For the
    modes vpsorg makes, ``gateways`` are the addresses the network's bridge holds, one per
    range of the location (``"198.18.0.1/24"``): the driver defines and starts the network
    with them when it is missing, so the first create on a fresh host needs nothing else.
    """

    mode: NetworkMode
    name: str
    gateways: tuple[str, ...] = ()


@dataclass(frozen=True)
class MachineSpec:
    """Everything a driver needs to build one machine."""

    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    os_slug: str
    image: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None  # kernel command line, with kernel (direct kernel boot)
    ssh_public_key: str | None = None
    ipv4_address: str | None = None
    ipv4_prefix: int = 24
    ipv4_gateway: str | None = None
    ipv6_address: str | None = None
    ipv6_prefix: int = 64
    ipv6_gateway: str | None = None
    host_uri: str | None = None
    network: NetworkAttachment | None = None  # None: no NIC


@dataclass(frozen=True)
class HostCapacity:
    """What one hypervisor host offers, before overcommit."""

    vcpus: int
    memory_mb: int
    disk_gb: int


@dataclass(frozen=True)
class Usage:
    cpu_percent: float
    memory_used_mb: int
    disk_used_gb: int
    # Bytes sent and received since the machine last booted (a counter that restarts at
    # zero on boot); vpsorg sums the increments over the billing period.
    network_bytes: int


@dataclass(frozen=True)
class BackupInfo:
    """A backup as the host keeps it."""

    allocated_bytes: int  # what the copy takes on the host's disk (snapshots are paid by it)


class DriverError(Exception):
    """A driver operation failed. ``code`` is stable and machine-readable."""

    code = "driver_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class RetriableDriverError(DriverError):
    """Worth trying again later (after ``retry_after`` seconds at least)."""

    code = "driver_unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentDriverError(DriverError):
    """Retrying cannot help; the action ends in ``error`` with this message."""

    code = "driver_failed"


class Driver(ABC):
    """A hypervisor backend. See the module docstring for the contract."""

    name: str = "abstract"

    @abstractmethod
    async def probe(self) -> str:
        """Check the backend is usable; return a one-line description. Raise if broken."""

    @abstractmethod
    async def create(self, spec: MachineSpec) -> None:
        """Build and boot the machine."""

    @abstractmethod
    async def start(self, name: str, *, host_uri: str | None = None) -> None:
        """Boot a stopped machine."""

    @abstractmethod
    async def stop(self, name: str, timeout: float, *, host_uri: str | None = None) -> None:
        """Shut down gracefully; force off after ``timeout`` seconds."""

    @abstractmethod
    async def reboot(
        self, name: str, *, host_uri: str | None = None, operation_id: str | None = None
    ) -> None:
        """Restart a running machine gracefully, once per ``operation_id``."""

    @abstractmethod
    async def delete(self, name: str, *, host_uri: str | None = None) -> None:
        """Destroy the machine and everything it owns (disks, seeds)."""

    @abstractmethod
    async def state(self, name: str, *, host_uri: str | None = None) -> MachineState:
        """What the hypervisor says about the machine right now."""

    @abstractmethod
    async def usage(self, name: str, *, host_uri: str | None = None) -> Usage | None:
        """Resource usage now, or ``None`` when the machine is missing."""

    @abstractmethod
    async def machines(self, *, host_uri: str | None = None) -> dict[str, MachineState]:
        """Every machine on the host, by name, with its state."""

    @abstractmethod
    async def backup(
        self, name: str, backup_name: str, *, host_uri: str | None = None
    ) -> BackupInfo:
        """Copy the machine's disk (running or not) into the backup ``backup_name``."""

    @abstractmethod
    async def restore(self, name: str, backup_name: str, *, host_uri: str | None = None) -> None:
        """Replace the stopped machine's disk with the backup's copy."""

    @abstractmethod
    async def delete_backup(self, backup_name: str, *, host_uri: str | None = None) -> None:
        """Remove the backup from the host."""

    @abstractmethod
    async def capacity(self, *, host_uri: str | None = None) -> HostCapacity:
        """The host's vCPUs, memory and disk."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once at shutdown."""
