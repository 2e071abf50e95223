"""The libvirt driver: real machines on QEMU/KVM hosts, local or remote (``qemu+ssh://``).

Everything goes through libvirt's API, storage included (a ``dir`` pool per host), so a
remote host needs nothing but libvirtd: disks are qcow2 overlays of the OS image created by
the pool, the cloud-init seed is uploaded with a libvirt stream, and the serial console's
log is read back through the pool.

libvirt calls block, so each runs in a thread (``asyncio.to_thread``); connections are
thread-safe and there is one per host URI, opened on first use and reopened when it breaks.
Waiting (for a graceful stop, between CPU samples) happens in the event loop, not a thread.

Everything a machine owns is named after it (``<name>.qcow2``, ``<name>-seed.iso``,
``<name>-console.log``), so a retry finds what an earlier attempt made and ``delete``
removes exactly that, never the base image the overlay points at.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from xml.etree import ElementTree

import libvirt

from vpsorg.drivers.base import (
    BackupInfo,
    Driver,
    DriverError,
    HostCapacity,
    MachineSpec,
    MachineState,
    NetworkAttachment,
    NetworkMode,
    PermanentDriverError,
    RetriableDriverError,
    Usage,
)
from vpsorg.drivers.libvirt.backups import BackupPool
from vpsorg.drivers.libvirt.domain import (
    GIB,
    REBOOT_NAMESPACE,
    REBOOT_PREFIX,
    check_name,
    console_log_volume,
    disk_volume,
    domain_xml,
    interface_devices,
    last_reboot_operation,
    last_reboot_xml,
    overlay_volume_xml,
    pool_target_path,
    pool_xml,
    seed_volume,
    seed_volume_xml,
    volume_format,
)
from vpsorg.drivers.libvirt.network import ensure_network
from vpsorg.drivers.libvirt.seed import DEFAULT_NAMESERVERS, build_seed

log = logging.getLogger(__name__)
T = TypeVar("T")

QCOW2_MAGIC = b"QFI\xfb"
FIRST_SAMPLE_GAP = 0.2  # seconds between the two CPU samples of a machine's first usage()
STREAM_CHUNK = 256 * 1024
CONNECTION_RETRY_AFTER = 5.0

_CONNECTION_ERROR_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE,
                             libvirt.VIR_FROM_SSH, libvirt.VIR_FROM_LIBSSH}  # fmt: skip
_CONNECTION_ERROR_CODES = {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN,
                           libvirt.VIR_ERR_RPC}  # fmt: skip
# Busy, not broken: another job holds the domain, or the guest agent is slow.
_TRANSIENT_ERROR_CODES = {libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_AGENT_UNRESPONSIVE}
_STOPPED_STATES = {libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED}
_UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                   | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)  # fmt: skip


class LibvirtDriver(Driver):
    name = "libvirt"

    def __init__(
        self,
        uri: str,
        *,
        pool: str = "vpsorg",
        pool_path: Path | str = Path("/var/lib/vpsorg/images"),
        network: str | None = None,
        domain_type: str = "auto",
        nameservers: tuple[str, ...] = DEFAULT_NAMESERVERS,
        poll_interval: float = 0.25,
        shutdown_resend: float = 10.0,
        backup_pool: str = "vpsorg-backups",
        backup_pool_path: Path | str = Path("/var/lib/vpsorg/backups"),
    ) -> None:
        if domain_type not in ("auto", "kvm", "qemu"):
            raise ValueError(f"domain_type must be auto, kvm or qemu, not {domain_type!r}")
        self.uri = uri
        self.pool = pool
        self.pool_path = str(pool_path)
        # None: each location's own network (the spec's); a name: that libvirt network for
        # every machine (VPSORG_LIBVIRT_NETWORK); "": no NIC at all.
        self.network = network
        self.domain_type = domain_type
        self.nameservers = nameservers
        self.poll_interval = poll_interval
        # A guest still booting ignores ACPI events, so a graceful stop asks again this often.
        self.shutdown_resend = shutdown_resend
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._domain_types: dict[str, tuple[str, str]] = {}
        self._cpu_samples: dict[tuple[str, str], tuple[float, int]] = {}
        self.backups = BackupPool(backup_pool, str(backup_pool_path))
        # Errors become exceptions; without this libvirt also prints each one to stderr.
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)

    # -- the contract ----------------------------------------------------------------

    async def probe(self) -> str:
        return await self._call(None, self._probe)

    async def create(self, spec: MachineSpec) -> None:
        await self._call(spec.host_uri, self._create, spec)

    async def start(self, name: str, *, host_uri: str | None = None) -> None:
        await self._call(host_uri, self._start, name)

    async def stop(self, name: str, timeout: float, *, host_uri: str | None = None) -> None:
        if not await self._call(host_uri, self._request_shutdown, name):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        resend_at = loop.time() + self.shutdown_resend
        while await self.state(name, host_uri=host_uri) == MachineState.RUNNING:
            now = loop.time()
            if now >= deadline:
                log.info("%s ignored a graceful shutdown for %gs: forcing it off", name, timeout)
                await self._call(host_uri, self._force_off, name)
                return
            if now >= resend_at:
                await self._call(host_uri, self._request_shutdown, name)
                resend_at = now + self.shutdown_resend
            await asyncio.sleep(min(self.poll_interval, deadline - now))

    async def reboot(
        self, name: str, *, host_uri: str | None = None, operation_id: str | None = None
    ) -> None:
        await self._call(host_uri, self._reboot, name, operation_id)

    async def delete(self, name: str, *, host_uri: str | None = None) -> None:
        await self._call(host_uri, self._delete, name)
        self._cpu_samples.pop((host_uri or self.uri, name), None)

    async def state(self, name: str, *, host_uri: str | None = None) -> MachineState:
        return await self._call(host_uri, self._state, name)

    async def usage(self, name: str, *, host_uri: str | None = None) -> Usage | None:
        """Usage now. CPU is the share of the machine's vCPUs used since the last call.

        The first call for a machine has no earlier sample, so it takes two, 0.2 s apart.
        """
        key = (host_uri or self.uri, name)
        sample = await self._call(host_uri, self._sample, name)
        if sample is not None and sample.running and key not in self._cpu_samples:
            self._cpu_samples[key] = (sample.taken_at, sample.cpu_time_ns)
            await asyncio.sleep(FIRST_SAMPLE_GAP)
            sample = await self._call(host_uri, self._sample, name)
        if sample is None:
            self._cpu_samples.pop(key, None)
            return None
        previous = self._cpu_samples.get(key)
        self._cpu_samples[key] = (sample.taken_at, sample.cpu_time_ns)
        return Usage(
            cpu_percent=cpu_percent(previous, sample) if sample.running else 0.0,
            memory_used_mb=sample.memory_used_kib // 1024,
            disk_used_gb=sample.disk_used_bytes // GIB,
            network_bytes=sample.network_bytes,
        )

    async def machines(self, *, host_uri: str | None = None) -> dict[str, MachineState]:
        return await self._call(host_uri, self._machines)

    async def backup(
        self, name: str, backup_name: str, *, host_uri: str | None = None
    ) -> BackupInfo:
        return await self._call(host_uri, self._with_disks(self.backups.backup), name, backup_name)

    async def restore(self, name: str, backup_name: str, *, host_uri: str | None = None) -> None:
        await self._call(host_uri, self._with_disks(self.backups.restore), name, backup_name)

    async def delete_backup(self, backup_name: str, *, host_uri: str | None = None) -> None:
        await self._call(host_uri, self.backups.delete, _checked(backup_name))

    def _with_disks(self, operation: Callable[..., T]) -> Callable[..., T]:
        """``operation(conn, uri, *args, disks)``: with the machines' pool (backups.py)."""
        return lambda conn, uri, *args: operation(conn, uri, *args, self._ensure_pool(conn)[0])

    async def capacity(self, *, host_uri: str | None = None) -> HostCapacity:
        """The host's CPUs and memory, and the size of the filesystem under its pool.

        It prepares the pool on the way: capacity is asked when a host is added.
        """
        return await self._call(host_uri, self._capacity)

    async def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            with suppress(libvirt.libvirtError):
                await asyncio.to_thread(connection.close)

    # -- beyond the contract ---------------------------------------------------------

    async def console_log(self, name: str, host_uri: str | None = None) -> str | None:
        """What the machine printed on its serial console, or ``None`` if it has no log."""
        return await self._call(host_uri, self._console_log, name)

    # -- connections and errors ------------------------------------------------------

    async def _call(self, host_uri: str | None, operation: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._run, host_uri or self.uri, operation, *args)

    def _run(self, uri: str, operation: Callable[..., T], *args: Any) -> T:
        """Run ``operation(conn, uri, *args)`` in this thread, translating libvirt's errors."""
        conn = self._connection(uri)
        try:
            return operation(conn, uri, *args)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                self._forget(uri, conn)
            raise translate_error(exc, uri) from exc

    def _connection(self, uri: str) -> Any:
        with self._lock:
            cached = self._connections.get(uri)
        if cached is not None and _is_alive(cached):
            return cached
        # Opened outside the lock: an unreachable host must not hold up the others.
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise RetriableDriverError(
                f"cannot reach libvirt at {uri}: {exc.get_error_message()}",
                retry_after=CONNECTION_RETRY_AFTER,
            ) from exc
        with self._lock:
            current = self._connections.get(uri)
            if current is not None and current is not cached:
                winner, loser = current, conn  # another thread reconnected first
            else:
                self._connections[uri] = winner = conn
                loser = cached
        if loser is not None:
            with suppress(libvirt.libvirtError):
                loser.close()
        return winner

    def _forget(self, uri: str, conn: Any) -> None:
        with self._lock:
            if self._connections.get(uri) is conn:
                del self._connections[uri]
        with suppress(libvirt.libvirtError):
            conn.close()

    # -- operations (each runs in a worker thread) -----------------------------------

    def _probe(self, conn: Any, uri: str) -> str:
        domain_type, reason = self._domain_type(conn, uri)
        _, path = self._ensure_pool(conn)
        return (
            f"libvirt {_version(conn.getLibVersion())} at {uri}: {conn.getType()} "
            f"{_version(conn.getVersion())}, domain type {domain_type} ({reason}), "
            f"pool {self.pool} at {path}"
        )

    def _create(self, conn: Any, uri: str, spec: MachineSpec) -> None:
        name = _checked(spec.name)
        domain = lookup_domain(conn, name)
        if domain is not None:
            boot(domain)  # a retry: the first attempt got this far
            return
        backing = self._backing(conn, uri, spec.image)  # a missing image fails fast
        domain_type, _ = self._domain_type(conn, uri)
        pool, path = self._ensure_pool(conn)
        seed = build_seed(spec, self.nameservers)
        try:
            replace_volume(
                pool, disk_volume(name), overlay_volume_xml(name, spec.disk_gb, *backing)
            )
            seed_vol = replace_volume(pool, seed_volume(name), seed_volume_xml(name, len(seed)))
            upload(conn, seed_vol, seed)
            attachment = self._attachment(spec)
            if attachment is not None and attachment.mode.made_by_vpsorg:
                ensure_network(conn, uri, attachment, libvirt)
            xml = domain_xml(spec, domain_type=domain_type, pool=self.pool, pool_path=path,
                             network=attachment)  # fmt: skip
            conn.defineXML(xml).create()
        except BaseException:
            self._clean_up_failed_create(conn, uri, name)
            raise

    def _attachment(self, spec: MachineSpec) -> NetworkAttachment | None:
        if self.network is None:
            return spec.network
        return NetworkAttachment(NetworkMode.NETWORK, self.network) if self.network else None

    def _clean_up_failed_create(self, conn: Any, uri: str, name: str) -> None:
        """Leave nothing behind (the contract); the original error is what gets raised."""
        try:
            self._delete(conn, uri, name)
        except Exception:
            log.exception("could not clean up after the failed create of %s on %s", name, uri)

    def _start(self, conn: Any, uri: str, name: str) -> None:
        boot(require_domain(conn, name))

    def _request_shutdown(self, conn: Any, uri: str, name: str) -> bool:
        """Ask the guest to shut down (ACPI); False when it is already off."""
        domain = require_domain(conn, name)
        if not domain.isActive():
            return False
        try:
            domain.shutdown()
        except libvirt.libvirtError as exc:
            if domain_gone_or_off(exc):
                return False
            raise
        return True

    def _force_off(self, conn: Any, uri: str, name: str) -> None:
        domain = lookup_domain(conn, name)
        if domain is not None:
            destroy(domain)

    def _reboot(self, conn: Any, uri: str, name: str, operation_id: str | None) -> None:
        domain = require_domain(conn, name)
        last = last_reboot(domain)
        if operation_id is not None and last == operation_id:
            return  # done before a crash
        if not domain.isActive():
            raise PermanentDriverError(f"machine {name} is not running", code="not_running")
        if operation_id is not None:
            record_reboot(domain, operation_id)
        try:
            domain.reboot(0)
        except libvirt.libvirtError as exc:
            # Refused, so not done: forget it, and a retry may reboot. A lost connection
            # leaves it unknown: keep the record (at most once).
            if operation_id is not None and not is_connection_error(exc):
                with suppress(libvirt.libvirtError):
                    record_reboot(domain, last)
            raise

    def _delete(self, conn: Any, uri: str, name: str) -> None:
        domain = lookup_domain(conn, _checked(name))
        if domain is not None:
            destroy(domain)
            with missing_domain_ignored():
                domain.undefineFlags(_UNDEFINE_FLAGS)
        pool = self._active_pool(conn)
        if pool is None:
            return
        delete_volume(pool, disk_volume(name))
        delete_volume(pool, seed_volume(name))
        self._delete_console_log(conn, uri, pool, name)

    def _delete_console_log(self, conn: Any, uri: str, pool: Any, name: str) -> None:
        # virtlogd writes the log; the pool only knows it as a volume after a refresh.
        refresh(pool)
        delete_volume(pool, console_log_volume(name))
        path = pool_target_path(pool.XMLDesc(0))
        if is_local(uri) and path:  # in case the refresh failed; vpsorg may not be root
            with suppress(OSError):
                Path(path, console_log_volume(name)).unlink()

    def _state(self, conn: Any, uri: str, name: str) -> MachineState:
        domain = lookup_domain(conn, _checked(name))
        if domain is None:
            return MachineState.MISSING
        return machine_state(_domain_state(domain))

    def _machines(self, conn: Any, uri: str) -> dict[str, MachineState]:
        found: dict[str, MachineState] = {}
        for domain in conn.listAllDomains(0):
            with missing_domain_ignored():  # undefined while we were listing
                found[str(domain.name())] = machine_state(_domain_state(domain))
        return found

    def _capacity(self, conn: Any, uri: str) -> HostCapacity:
        _model, memory_mb, cpus, *_ = conn.getInfo()
        pool, _ = self._ensure_pool(conn)
        refresh(pool)
        return HostCapacity(vcpus=int(cpus), memory_mb=int(memory_mb),
                            disk_gb=int(pool.info()[1]) // GIB)  # fmt: skip

    def _sample(self, conn: Any, uri: str, name: str) -> Sample | None:
        domain = lookup_domain(conn, _checked(name))
        if domain is None:
            return None
        state, _max_kib, _current_kib, vcpus, cpu_time_ns = domain.info()
        running = machine_state(int(state)) == MachineState.RUNNING
        return Sample(
            running=running,
            taken_at=time.monotonic(),
            cpu_time_ns=int(cpu_time_ns),
            vcpus=max(1, int(vcpus)),
            memory_used_kib=memory_used_kib(domain) if running else 0,
            disk_used_bytes=self._disk_used_bytes(conn, domain, name),
            network_bytes=network_bytes(domain) if running else 0,
        )

    def _disk_used_bytes(self, conn: Any, domain: Any, name: str) -> int:
        """What the overlay takes on the host (not the guest's view of its filesystem)."""
        pool = self._active_pool(conn)
        volume = None if pool is None else lookup_volume(pool, disk_volume(name))
        if volume is not None:
            _kind, capacity, allocation = volume.info()
            return min(int(allocation), int(capacity))
        try:  # not one of ours: ask the domain about its first disk
            capacity, allocation, _physical = domain.blockInfo("vda", 0)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                raise
            return 0
        return min(int(allocation), int(capacity))

    def _console_log(self, conn: Any, uri: str, name: str) -> str | None:
        log_name = console_log_volume(_checked(name))
        pool = self._active_pool(conn)
        if pool is None:
            return None
        if is_local(uri):
            path = pool_target_path(pool.XMLDesc(0)) or self.pool_path
            try:
                return Path(path, log_name).read_text(errors="replace")
            except FileNotFoundError:
                return None
            except PermissionError:
                pass  # virtlogd's file (0600 root): libvirtd can still read it for us
        refresh(pool)
        volume = lookup_volume(pool, log_name)
        return None if volume is None else download(conn, volume).decode(errors="replace")

    # -- host set-up -----------------------------------------------------------------

    def _domain_type(self, conn: Any, uri: str) -> tuple[str, str]:
        """The domain type for machines on this host, chosen (and logged) once per host."""
        with self._lock:
            known = self._domain_types.get(uri)
        if known is not None:
            return known
        chosen = choose_domain_type(conn, self.domain_type)
        log.info("libvirt host %s: domain type %s (%s)", uri, *chosen)
        with self._lock:
            self._domain_types[uri] = chosen
        return chosen

    def _ensure_pool(self, conn: Any) -> tuple[Any, str]:
        """The host's storage pool, defined, built, started and autostarted if need be."""
        pool = lookup_pool(conn, self.pool)
        if pool is None:
            pool = self._define_pool(conn)
        if not pool.isActive():
            try:
                pool.build(0)  # a dir pool: mkdir -p, harmless when the directory exists
            except libvirt.libvirtError:
                if not pool.isActive():  # else another create started it just now
                    raise
            _start_pool(pool)
        if not pool.autostart():
            pool.setAutostart(1)
        return pool, pool_target_path(pool.XMLDesc(0)) or self.pool_path

    def _define_pool(self, conn: Any) -> Any:
        try:
            pool = conn.storagePoolDefineXML(pool_xml(self.pool, self.pool_path), 0)
        except libvirt.libvirtError:
            pool = lookup_pool(conn, self.pool)  # another worker defined it just now
            if pool is None:
                raise
            return pool
        log.info("defined storage pool %s at %s", self.pool, self.pool_path)
        return pool

    def _active_pool(self, conn: Any) -> Any | None:
        """The pool if it exists (started if it was stopped); None on a host never used."""
        pool = lookup_pool(conn, self.pool)
        if pool is not None and not pool.isActive():
            _start_pool(pool)
        return pool

    def _backing(self, conn: Any, uri: str, image: str | None) -> tuple[str | None, str]:
        """The overlay's backing image and its format (no image: an empty disk)."""
        if image is None:
            return None, "qcow2"
        if not image.startswith("/"):
            raise PermanentDriverError(f"image {image!r} is not an absolute path")
        return image, image_format(conn, image, local=is_local(uri))


# -- choosing the domain type ----------------------------------------------------------


def choose_domain_type(conn: Any, setting: str) -> tuple[str, str]:
    """``kvm`` or ``qemu`` for a host, and why. ``auto`` wants KVM offered *and* trusted."""
    if setting != "auto":
        return setting, f"VPSORG_LIBVIRT_DOMAIN_TYPE={setting}"
    offered, why = kvm_offered(conn)
    if not offered:
        return "qemu", why
    trusted, why = kvm_trusted(conn)
    return ("kvm", why) if trusted else ("qemu", why)


def kvm_offered(conn: Any) -> tuple[bool, str]:
    """Does libvirt say this host can run KVM guests (``/dev/kvm`` usable by QEMU)?"""
    try:
        conn.getDomainCapabilities(None, None, None, "kvm", 0)
    except libvirt.libvirtError as exc:
        if is_connection_error(exc):
            raise
        return False, f"libvirt offers no KVM: {exc.get_error_message()}"
    return True, "libvirt offers KVM"


def kvm_trusted(conn: Any) -> tuple[bool, str]:
    """Whether ``auto`` may use the KVM libvirt offers: only with hardware virtualization.

    libvirt offers KVM wherever ``/dev/kvm`` exists, but a ``/dev/kvm`` without the CPU's
    vmx/svm (paravirtual or nested KVM in some clouds) runs guests dozens of times slower
    than plain emulation; guests seemed to hang on such a host. This is the check
    ``virt-host-validate`` makes, read from the host's capabilities so it works remotely.
    """
    features = host_cpu_features(conn.getCapabilities())
    found = features & {"vmx", "svm"}
    if found:
        return True, f"KVM with hardware virtualization ({', '.join(sorted(found))})"
    return False, (
        "libvirt offers KVM but the host CPU has neither vmx nor svm (paravirtual or nested "
        "KVM, far slower than emulation); set VPSORG_LIBVIRT_DOMAIN_TYPE=kvm to force it"
    )


def host_cpu_features(capabilities_xml: str) -> set[str]:
    """The feature names of ``<host><cpu>`` in libvirt's capabilities XML."""
    root = ElementTree.fromstring(capabilities_xml)
    return {f.get("name", "") for f in root.findall("./host/cpu/feature")}


# -- errors ------------------------------------------------------------------------------


def is_connection_error(exc: libvirt.libvirtError) -> bool:
    return (
        exc.get_error_domain() in _CONNECTION_ERROR_DOMAINS
        or exc.get_error_code() in _CONNECTION_ERROR_CODES
    )


def translate_error(exc: libvirt.libvirtError, uri: str) -> DriverError:
    """Host unreachable or busy: retriable. Anything else: permanent, with libvirt's words."""
    message = exc.get_error_message() or str(exc)
    if is_connection_error(exc):
        return RetriableDriverError(
            f"lost libvirt at {uri}: {message}", retry_after=CONNECTION_RETRY_AFTER
        )
    if exc.get_error_code() in _TRANSIENT_ERROR_CODES:
        return RetriableDriverError(f"libvirt at {uri} is busy: {message}", retry_after=2.0)
    return PermanentDriverError(f"libvirt at {uri}: {message}")


def _code(exc: libvirt.libvirtError) -> int:
    return int(exc.get_error_code())


def domain_gone_or_off(exc: libvirt.libvirtError) -> bool:
    """The domain vanished or stopped between our check and our call."""
    return _code(exc) in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID)


@contextmanager
def missing_domain_ignored() -> Iterator[None]:
    """Ignore the one error that means the domain is no longer there."""
    try:
        yield
    except libvirt.libvirtError as exc:
        if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def _ignore_libvirt_error(_context: object, _error: object) -> None:
    return None


# -- domains ---------------------------------------------------------------------------


def lookup_domain(conn: Any, name: str) -> Any | None:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def require_domain(conn: Any, name: str) -> Any:
    domain = lookup_domain(conn, _checked(name))
    if domain is None:
        raise PermanentDriverError(f"machine {name} does not exist", code="machine_missing")
    return domain


def machine_state(libvirt_state: int) -> MachineState:
    """Shut off or crashed is stopped; anything else (paused, blocked...) still runs."""
    return MachineState.STOPPED if libvirt_state in _STOPPED_STATES else MachineState.RUNNING


def _domain_state(domain: Any) -> int:
    return int(domain.state(0)[0])


def boot(domain: Any) -> None:
    """Make sure the domain runs: boot it if off, resume it if paused or suspended."""
    state = _domain_state(domain)
    try:
        if state == libvirt.VIR_DOMAIN_PAUSED:
            domain.resume()
        elif state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            domain.pMWakeup(0)
        elif state in _STOPPED_STATES:
            domain.create()
    except libvirt.libvirtError as exc:
        # Someone else booted it first: that is what we wanted.
        if not (_code(exc) == libvirt.VIR_ERR_OPERATION_INVALID and domain.isActive()):
            raise


def last_reboot(domain: Any) -> str | None:
    """The operation id of the domain's last reboot by vpsorg, if it recorded one."""
    try:
        metadata = domain.metadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, REBOOT_NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_CURRENT
        )
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise
    return last_reboot_operation(metadata)


def record_reboot(domain: Any, operation_id: str | None) -> None:
    """Write (``None``: remove) the last reboot's id, in the running and persistent domain."""
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if domain.isActive() else 0
    if domain.isPersistent():
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    xml = None if operation_id is None else last_reboot_xml(operation_id)
    domain.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, REBOOT_PREFIX, REBOOT_NAMESPACE, flags
    )


def destroy(domain: Any) -> None:
    """Force the domain off; already off is fine."""
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if not domain_gone_or_off(exc):
            raise


@dataclass(frozen=True)
class Sample:
    """One reading of a machine's counters."""

    running: bool
    taken_at: float  # time.monotonic()
    cpu_time_ns: int
    vcpus: int
    memory_used_kib: int
    disk_used_bytes: int
    network_bytes: int


def cpu_percent(previous: tuple[float, int] | None, sample: Sample) -> float:
    """CPU time over wall time between two samples, as a share of all the machine's vCPUs."""
    if previous is None:
        return 0.0
    taken_at, cpu_time_ns = previous
    wall = sample.taken_at - taken_at
    if wall <= 0:
        return 0.0
    used = (sample.cpu_time_ns - cpu_time_ns) / 1e9  # negative after a restart
    return round(min(100.0, max(0.0, 100.0 * used / (wall * sample.vcpus))), 1)


def memory_used_kib(domain: Any) -> int:
    """Memory the guest uses: balloon figures if it reports them, else QEMU's resident set.

    Capped at the machine's memory: QEMU's own overhead is not the customer's usage.
    """
    maximum = int(domain.maxMemory())
    try:
        stats: dict[str, int] = domain.memoryStats()
    except libvirt.libvirtError as exc:
        if is_connection_error(exc):
            raise
        stats = {}
    if "actual" in stats and "unused" in stats:
        used = stats["actual"] - stats["unused"]
    elif "rss" in stats:
        used = stats["rss"]
    else:  # e.g. libvirt's test driver: the memory the domain has
        used = int(domain.info()[2])
    return max(0, min(int(used), maximum))


def network_bytes(domain: Any) -> int:
    """Bytes received plus sent on all interfaces since the domain booted."""
    total = 0
    for device in interface_devices(domain.XMLDesc(0)):
        try:
            stats = domain.interfaceStats(device)
        except libvirt.libvirtError as exc:
            if is_connection_error(exc):
                raise
            continue  # the interface went away, or the hypervisor keeps no counters
        total += int(stats[0]) + int(stats[4])
    return total


# -- storage ---------------------------------------------------------------------------


def lookup_pool(conn: Any, name: str) -> Any | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise


def _start_pool(pool: Any) -> None:
    try:
        pool.create(0)
    except libvirt.libvirtError:
        if not pool.isActive():  # else another worker started it just now
            raise


def refresh(pool: Any) -> None:
    """Rescan the pool; a failure (e.g. a volume being built) only means a stale listing."""
    try:
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        if is_connection_error(exc):
            raise
        log.debug("refresh of pool %s failed: %s", pool.name(), exc.get_error_message())


def lookup_volume(pool: Any, name: str) -> Any | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if _code(exc) == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def delete_volume(pool: Any, name: str) -> None:
    volume = lookup_volume(pool, name)
    if volume is None:
        return
    try:
        volume.delete(0)
    except libvirt.libvirtError as exc:
        if _code(exc) != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise


def replace_volume(pool: Any, name: str, xml: str) -> Any:
    """Create the volume, removing a leftover of an earlier attempt that crashed first."""
    delete_volume(pool, name)
    return pool.createXML(xml, 0)


def image_format(conn: Any, image: str, *, local: bool) -> str:
    """qcow2 or raw: from the file's magic bytes when the host is this machine, else from
    the volume libvirt knows at that path, else from the extension.

    Only ``.raw`` means raw by name: cloud images are qcow2 even when called ``.img``.
    """
    if local:
        try:
            with open(image, "rb") as file:
                return "qcow2" if file.read(4) == QCOW2_MAGIC else "raw"
        except FileNotFoundError:
            raise PermanentDriverError(
                f"image {image} does not exist", code="image_missing"
            ) from None
        except OSError:
            pass  # unreadable here, but libvirt (root) may still know it
    try:
        fmt = volume_format(conn.storageVolLookupByPath(image).XMLDesc(0))
    except libvirt.libvirtError as exc:
        if is_connection_error(exc):
            raise
        fmt = None
    if fmt in ("qcow2", "raw"):
        return str(fmt)
    return "raw" if image.endswith(".raw") else "qcow2"


def upload(conn: Any, volume: Any, data: bytes) -> None:
    """Write ``data`` into the volume through a libvirt stream (works on remote hosts)."""
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, len(data), 0)
    except libvirt.libvirtError as exc:
        _abort(stream)
        if _code(exc) == libvirt.VIR_ERR_NO_SUPPORT and conn.getType() == "TEST":
            log.debug("libvirt's test driver cannot upload; the seed volume stays empty")
            return
        raise
    try:
        view = memoryview(data)
        while view:
            sent = stream.send(bytes(view[:STREAM_CHUNK]))
            view = view[max(0, int(sent)) :]
        stream.finish()
    except BaseException:
        _abort(stream)
        raise


def download(conn: Any, volume: Any) -> bytes:
    stream = conn.newStream(0)
    chunks: list[bytes] = []
    try:
        volume.download(stream, 0, 0, 0)
        while chunk := stream.recv(STREAM_CHUNK):
            chunks.append(bytes(chunk))
        stream.finish()
    except BaseException:
        _abort(stream)
        raise
    return b"".join(chunks)


def _abort(stream: Any) -> None:
    with suppress(libvirt.libvirtError):
        stream.abort()


# -- small things ------------------------------------------------------------------------


def is_local(uri: str) -> bool:
    """A URI without a host name (``qemu:///system``) is this machine."""
    return urlsplit(uri).hostname is None


def _is_alive(conn: Any) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


def _checked(name: str) -> str:
    try:
        return check_name(name)
    except ValueError as exc:
        raise PermanentDriverError(str(exc), code="invalid_name") from None


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
