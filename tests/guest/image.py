"""Build, at test time, a tiny bootable guest for the real-VM (QEMU/libvirt) tests.

The guest is Debian's kernel plus a busybox initramfs, made only from Debian packages fetched
with ``apt-get download`` and unpacked with ``dpkg-deb -x``: nothing is installed on the host.
Its ``/init`` prints lines on the serial console (``console=ttyS0``) that a test can wait for:

* ``vpsorg-guest: boot`` at the start of every boot (count them to count boots);
* ``vpsorg-guest: instance-id=ID`` and ``vpsorg-guest: hostname=NAME`` once it has read
  ``meta-data`` from the NoCloud seed (an ISO9660 labelled ``cidata`` attached as a *virtio
  disk*), or ``vpsorg-guest: no seed found``;
* ``vpsorg-guest: power button, shutting down`` on an ACPI power-button press (``virsh
  shutdown``, QMP ``system_powerdown``), after which it powers off and QEMU exits by itself;
* ``vpsorg-guest: MARKER-OLD TOKEN`` if the server's disk (the virtio disk that is not the
  seed) holds a marker an earlier boot wrote at sector 2048, then ``vpsorg-guest: MARKER-NEW
  TOKEN`` once a fresh random token is written there and synced: a backup test restores a
  disk and sees the backed-up token come back;
* ``vpsorg-guest: address=ADDR/PREFIX`` and ``vpsorg-guest: route=GATEWAY`` for each address
  and default route it configured on eth0 from the seed's ``network-config`` (netplan v2 as
  vpsorg writes it: static addresses, IPv4 and IPv6, with busybox ``ip``), then
  ``vpsorg-guest: network up`` (or ``vpsorg-guest: no network interface``);
* ``vpsorg-guest: httpd up``: busybox ``httpd`` answers on port 80 with the hostname, and
  ``GET /cgi-bin/peer?ADDR`` pings ADDR once from the guest and fetches its page: a test
  proves guest-to-guest traffic through it, and the guest's console logs each such probe.

The kernel is handed over as the uncompressed ELF ``vmlinux`` from inside Debian's bzImage:
QEMU boots it through its PVH entry point, which saves the ~5 s that decompressing the kernel
takes under TCG. The guest wants at least 96 MiB of memory (the kernel alone is 64 MiB); give 128+.

The build is cached per kernel package version in ``~/.cache/vpsorg/test-guest/``, or the
directory passed or named by ``VPSORG_TEST_GUEST_CACHE``. The first run downloads ~72 MB and
takes ~12 s (~25 s on a busy machine); later runs only ask ``apt-cache`` the current version.
QEMU started by libvirt runs as ``libvirt-qemu`` and must be able to reach the files: /root is
0700, so a libvirt test should pass a cache directory such as ``/var/cache/vpsorg/test-guest``.
"""

from __future__ import annotations

import bz2
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BOOT_LINE = "vpsorg-guest: boot"
HOSTNAME_PREFIX = "vpsorg-guest: hostname="
ADDRESS_PREFIX = "vpsorg-guest: address="
NETWORK_UP_LINE = "vpsorg-guest: network up"
HTTPD_LINE = "vpsorg-guest: httpd up"
INSTANCE_ID_PREFIX = "vpsorg-guest: instance-id="
NO_SEED_LINE = "vpsorg-guest: no seed found"
POWER_BUTTON_LINE = "vpsorg-guest: power button, shutting down"
MARKER_OLD_PREFIX = "vpsorg-guest: MARKER-OLD "
MARKER_NEW_PREFIX = "vpsorg-guest: MARKER-NEW "

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "vpsorg" / "test-guest"
CACHE_ENV = "VPSORG_TEST_GUEST_CACHE"
KERNEL_METAPACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# virtio_pci + virtio_blk: the server's disk (vda) and the seed (vdb); isofs: the seed's
# filesystem; button + evdev: the ACPI power button as /dev/input/event* for busybox acpid.
# Their dependencies are added from the modules' own metadata, in load order.
# virtio_net: the NIC.
WANTED_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "isofs", "button", "evdev")
# What /init relies on being built in: if Debian ever makes one of these a module, fail loudly.
REQUIRED_BUILTINS = (
    "CONFIG_BLK_DEV_INITRD",
    "CONFIG_RD_GZIP",
    "CONFIG_DEVTMPFS",
    "CONFIG_SERIAL_8250_CONSOLE",
    "CONFIG_ACPI",
    "CONFIG_INPUT",
)
CMDLINE = "console=ttyS0 quiet panic=-1"
DISK_SIZE = "64M"
# Bump when the recipe changes in a way the texts hashed into the cache key do not show.
RECIPE_FORMAT = 4


class GuestUnavailable(RuntimeError):
    """This machine cannot build the guest (no apt, no qemu-img, no package lists, offline...).

    A test should skip on it on a developer's machine and fail in CI.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuestBuildError(RuntimeError):
    """The packages were there but did not give a bootable guest: a bug to fix, never a skip."""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    """``vmlinux`` (ELF, PVH entry) or, for a kernel without PVH, Debian's ``vmlinuz``."""
    initrd: Path
    disk: Path
    """A small, empty qcow2 image: the base under each server's copy-on-write disk."""
    cmdline: str
    kernel_version: str = ""
    modules: tuple[str, ...] = ()
    """The modules /init loads, in order (dependencies included)."""


INIT_SCRIPT = r"""#!/bin/sh
# PID 1 of the vpsorg test guest, built by tests/guest/image.py.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# A line of its own: the firmware leaves terminal escapes and no newline on the console.
printf '\nvpsorg-guest: boot\n'

for m in @MODULES@; do
    insmod "/lib/modules/$m.ko" || echo "vpsorg-guest: cannot load module $m"
done

# The ACPI power button reaches busybox acpid as KEY_POWER on /dev/input/event*, and acpid
# runs /etc/acpi/PWRF/00000080. acpid opens the devices only once, at start: wait until it has.
acpid -f -c /etc/acpi -l /var/log/acpid.log -p /run/acpid.pid &
acpid_pid=$!
tries=0
until ls -l "/proc/$acpid_pid/fd" 2>/dev/null | grep -q /dev/input/event; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
        echo "vpsorg-guest: acpid does not listen, the power button will not work"
        break
    fi
    sleep 0.05
done

# The NoCloud seed: an ISO9660 filesystem labelled cidata, on a virtio disk.
is_seed() {
    magic=$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)
    label=$(dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000' | tr A-Z a-z)
    [ "$magic" = CD001 ] && [ "$label" = cidata ]
}
seed=""
tries=0
while [ -z "$seed" ] && [ "$tries" -lt 30 ]; do
    for dev in /dev/vd[a-z] /dev/vd[a-z][a-z]; do
        if [ -b "$dev" ] && is_seed "$dev"; then
            seed=$dev
            break
        fi
    done
    if [ -z "$seed" ]; then
        tries=$((tries + 1))
        sleep 0.1
    fi
done

if [ -n "$seed" ] && mount -t iso9660 -o ro "$seed" /mnt/seed && [ -f /mnt/seed/meta-data ]; then
    field() {
        sed -n "s/^$1:[[:space:]]*//p" /mnt/seed/meta-data | head -n 1 | tr -d "\"' \r\t"
    }
    echo "vpsorg-guest: instance-id=$(field instance-id)"
    name=$(field local-hostname)
    if [ -n "$name" ]; then
        hostname "$name"
        echo "vpsorg-guest: hostname=$name"
    else
        echo "vpsorg-guest: seed has no local-hostname"
    fi
else
    echo "vpsorg-guest: no seed found"
fi

# A marker on the server's disk (the virtio disk that is not the seed), for the backup test:
# print the token an earlier boot left at sector 2048, then leave a fresh random one there.
disk=""
for dev in /dev/vd[a-z] /dev/vd[a-z][a-z]; do
    if [ -b "$dev" ] && [ "$dev" != "$seed" ]; then
        disk=$dev
        break
    fi
done
if [ -n "$disk" ]; then
    old=$(dd if="$disk" bs=512 skip=2048 count=1 2>/dev/null | tr -d '\000' \
        | sed -n 's/^vpsorg-marker //p')
    [ -n "$old" ] && echo "vpsorg-guest: MARKER-OLD $old"
    new=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
    printf 'vpsorg-marker %s\n' "$new" \
        | dd of="$disk" bs=512 seek=2048 conv=notrunc,sync,fsync 2>/dev/null
    sync
    echo "vpsorg-guest: MARKER-NEW $new"
else
    echo "vpsorg-guest: no disk for the marker"
fi

# The NIC, from the seed's network-config (netplan v2 as vpsorg writes it): every address
# under "addresses:" of the interface, and a default route via each "via:" of its routes.
ip link set lo up
if [ -n "$seed" ] && [ -f /mnt/seed/network-config ] && [ -e /sys/class/net/eth0 ]; then
    # No duplicate address detection: the address would stay tentative for a second or two.
    echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
    echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_ra
    ip link set eth0 up
    awk '
        /^    [^ ]/ { section = $1 }
        /^      [^ -]/ && section == "nameservers:" { section = "" }
        section == "addresses:" && /^      - / { v = $2; gsub(/"/, "", v); print "address", v }
        section == "routes:" && /via:/ { v = $2; gsub(/"/, "", v); print "route", v }
    ' /mnt/seed/network-config > /tmp/network
    while read -r kind value; do
        case "$kind:$value" in
            address:*:*) ip -6 addr add "$value" dev eth0 ;;
            address:*) ip addr add "$value" dev eth0 ;;
            route:*:*) ip -6 route add default via "$value" dev eth0 ;;
            route:*) ip route add default via "$value" dev eth0 ;;
        esac && echo "vpsorg-guest: $kind=$value"
    done < /tmp/network
    echo "vpsorg-guest: network up"
else
    echo "vpsorg-guest: no network interface"
fi

mkdir -p /www/cgi-bin
hostname > /www/index.html
cat > /www/cgi-bin/peer <<'CGI'
#!/bin/sh
# GET /cgi-bin/peer?ADDR: ping ADDR once and fetch its page (a test's guest-to-guest probe).
printf 'Content-Type: text/plain\r\n\r\n'
peer=$QUERY_STRING
case "$peer" in
    "" | *[!0-9a-fA-F:.]*) echo "bad address"; exit 0 ;;
esac
url="http://$peer/"
case "$peer" in *:*) url="http://[$peer]/" ;; esac
if ping -c 1 -W 2 "$peer" > /dev/null 2>&1; then echo "ping $peer: answered"; else echo "ping $peer: no answer"; fi
echo "page $peer: $(timeout 5 wget -q -O - "$url" 2>/dev/null)"  # (wget -T crashes)
echo "vpsorg-guest: probed $peer" > /dev/console
CGI
chmod 755 /www/cgi-bin/peer
httpd -p 80 -h /www && echo "vpsorg-guest: httpd up"

while :; do
    sleep 3600
done
"""

POWER_BUTTON_HANDLER = r"""#!/bin/sh
# Run by busybox acpid on an ACPI power-button press.
echo "vpsorg-guest: power button, shutting down" > /dev/console
sync
umount /mnt/seed 2>/dev/null
poweroff -f
"""


def build_guest(cache_dir: Path | None = None) -> Guest:
    """The guest, built on first use and cached per kernel package version.

    ``cache_dir`` defaults to ``$VPSORG_TEST_GUEST_CACHE``, else ``~/.cache/vpsorg/test-guest``.

    Raises ``GuestUnavailable`` if this machine lacks what it takes (apt, dpkg-deb, qemu-img,
    package lists or the network on first use), ``GuestBuildError`` if the build goes wrong.
    """
    if cache_dir is None:
        cache_dir = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)
    cache_dir = cache_dir.expanduser()
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "qemu-img"):
        if shutil.which(tool) is None:
            raise GuestUnavailable(f"{tool} is not installed: the test guest needs it")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GuestUnavailable(f"cannot create the cache directory {cache_dir}: {exc}") from exc
    with _locked(cache_dir / ".lock"):
        try:
            return _build_locked(cache_dir)
        except GuestUnavailable:
            cached = _newest_cached(cache_dir)
            if cached is None:
                raise
            return cached  # e.g. offline, or no package lists: an earlier build still serves


def _build_locked(cache_dir: Path) -> Guest:
    updated = False
    while True:
        kernel_pkg, kernel_pkg_version, busybox_version = _resolve()
        kernel_version = kernel_pkg.removeprefix("linux-image-")
        target = cache_dir / f"{kernel_version}_{kernel_pkg_version}_{_recipe_digest()}"
        if (target / "guest.json").is_file():
            return _load(target)
        try:
            kernel_deb = _download(kernel_pkg, kernel_pkg_version, cache_dir / "debs")
            busybox_deb = _download(BUSYBOX_PACKAGE, busybox_version, cache_dir / "debs")
        except GuestUnavailable:
            # Stale package lists name versions the mirror no longer has: refresh them once.
            if updated or os.geteuid() != 0:
                raise
            _run(["apt-get", "update", "-qq"], what="apt-get update")
            updated = True
            continue
        break
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache_dir) as tmp:
        work = Path(tmp)
        out = work / "guest"
        out.mkdir()
        modules = _build(kernel_deb, busybox_deb, kernel_version, work, out)
        info = {
            "kernel_package": kernel_pkg,
            "kernel_package_version": kernel_pkg_version,
            "kernel_version": kernel_version,
            "busybox_version": busybox_version,
            "modules": modules,
            "cmdline": CMDLINE,
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (out / "guest.json").write_text(json.dumps(info, indent=2) + "\n")
        out.rename(target)
    # Older kernels and recipes are of no more use: keep the cache at one build (~70 MB).
    keep = {kernel_deb.name, busybox_deb.name}
    for old in (cache_dir / "debs").glob("*.deb"):
        if old.name not in keep:
            old.unlink()
    for old_build in cache_dir.glob("*/guest.json"):
        if old_build.parent != target:
            shutil.rmtree(old_build.parent, ignore_errors=True)
    return _load(target)


def _build(kernel_deb: Path, busybox_deb: Path, kver: str, work: Path, out: Path) -> list[str]:
    """Unpack both packages into ``work`` and write vmlinuz, initrd.gz and disk.qcow2 to ``out``."""
    kroot, broot = work / "kernel", work / "busybox"
    _run(["dpkg-deb", "-x", str(kernel_deb), str(kroot)], what=f"dpkg-deb -x {kernel_deb.name}")
    _run(["dpkg-deb", "-x", str(busybox_deb), str(broot)], what=f"dpkg-deb -x {busybox_deb.name}")

    config = kroot / "boot" / f"config-{kver}"
    vmlinuz = kroot / "boot" / f"vmlinuz-{kver}"
    modroot = next(
        (p for p in (kroot / "lib/modules" / kver, kroot / "usr/lib/modules" / kver) if p.is_dir()),
        None,
    )
    busybox = next(
        (p for p in (broot / "bin/busybox", broot / "usr/bin/busybox") if p.is_file()), None
    )
    if not (config.is_file() and vmlinuz.is_file() and modroot and busybox):
        raise GuestBuildError(f"{kernel_deb.name} or {busybox_deb.name} lacks an expected file")
    config_text = config.read_text()
    _check_builtins(config_text)

    modules = _load_order(modroot, WANTED_MODULES)
    cpio = _Cpio()
    for d in (
        "bin",
        "dev",
        "etc",
        "etc/acpi",
        "etc/acpi/PWRF",
        "lib",
        "lib/modules",
        "mnt",
        "mnt/seed",
        "proc",
        "root",
        "run",
        "sys",
        "tmp",
        "var",
        "var/log",
    ):
        cpio.directory(d)
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file(
        "init", INIT_SCRIPT.replace("@MODULES@", " ".join(n for n, _ in modules)).encode(), 0o755
    )
    cpio.file("etc/acpi/PWRF/00000080", POWER_BUTTON_HANDLER.encode(), 0o755)
    for name, path in modules:
        cpio.file(f"lib/modules/{name}.ko", _module_bytes(path), 0o644)
    (out / "initrd.gz").write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    # QEMU boots an ELF vmlinux with a PVH entry note directly: that skips decompressing the
    # kernel in the guest, which takes ~5 s under TCG. Fall back to the bzImage otherwise.
    vmlinux = _pvh_vmlinux(vmlinuz.read_bytes()) if "\nCONFIG_PVH=y\n" in config_text else None
    if vmlinux is not None:
        (out / "vmlinux").write_bytes(vmlinux)
    else:
        shutil.copyfile(vmlinuz, out / "vmlinuz")
    _run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(out / "disk.qcow2"), DISK_SIZE],
        what="qemu-img create",
    )
    return [name for name, _ in modules]


def write_seed_iso(
    path: Path,
    meta_data: str,
    user_data: str = "#cloud-config\n",
    network_config: str = "version: 2\nethernets: {}\n",
) -> None:
    """A NoCloud seed as the product makes it: ISO9660 labelled cidata, Joliet + Rock Ridge."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="cidata", joliet=3, rock_ridge="1.09")
    for number, (name, text) in enumerate(
        (("meta-data", meta_data), ("user-data", user_data), ("network-config", network_config))
    ):
        data = text.encode()
        iso.add_fp(
            io.BytesIO(data), len(data), f"/FILE{number}.;1", rr_name=name, joliet_path=f"/{name}"
        )
    iso.write(str(path))
    iso.close()


# --- resolving and fetching the packages ---------------------------------------------------


def _resolve() -> tuple[str, str, str]:
    """The real kernel package behind linux-image-amd64, its version and busybox's version.

    One ``apt-cache`` run: it reads all package lists, which takes seconds where (as in Debian's
    container images) apt keeps no binary cache of them.
    """
    records = _show(KERNEL_METAPACKAGE, BUSYBOX_PACKAGE)
    depends = records.get(KERNEL_METAPACKAGE, {}).get("Depends", "")
    match = re.search(r"(linux-image-\d[^\s,()|]*-amd64)(?:\s*\(=\s*([^)\s]+)\))?", depends)
    if not match or BUSYBOX_PACKAGE not in records:
        raise GuestUnavailable(
            f"apt-cache knows no {KERNEL_METAPACKAGE} or {BUSYBOX_PACKAGE} (run apt-get update?)"
        )
    kernel_pkg, kernel_pkg_version = match.group(1), match.group(2)
    if kernel_pkg_version is None:
        kernel_pkg_version = _show(kernel_pkg).get(kernel_pkg, {}).get("Version", "")
        if not kernel_pkg_version:
            raise GuestUnavailable(f"apt-cache knows no version of {kernel_pkg}")
    return kernel_pkg, kernel_pkg_version, records[BUSYBOX_PACKAGE]["Version"]


def _show(*packages: str) -> dict[str, dict[str, str]]:
    """The candidate version's record of each package apt knows, as field: value."""
    out = _run(
        ["apt-cache", "show", "--no-all-versions", *packages],
        what="apt-cache show",
        unavailable=True,
    )
    records: dict[str, dict[str, str]] = {}
    for block in out.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*)$", block, re.M))
        if "Package" in fields:
            records.setdefault(fields["Package"], fields)
    return records


def _download(package: str, version: str, debs: Path) -> Path:
    debs.mkdir(exist_ok=True)
    dest = debs / f"{package}_{version.replace(':', '%3a')}.deb"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory(prefix=".download-", dir=debs) as tmp:
        os.chmod(tmp, 0o755)  # apt's unprivileged _apt user writes there when it can
        _run(
            ["apt-get", "download", "-q", f"{package}={version}"],
            cwd=Path(tmp),
            what=f"apt-get download {package}={version}",
            unavailable=True,
        )
        got = list(Path(tmp).glob("*.deb"))
        if len(got) != 1:
            raise GuestBuildError(f"apt-get download {package} gave {got}")
        got[0].rename(dest)
    return dest


# --- kernel modules --------------------------------------------------------------------------

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def _module_name(path: Path) -> str:
    name = path.name
    for suffix in _MODULE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def _load_order(modroot: Path, wanted: Iterable[str]) -> list[tuple[str, Path]]:
    """``wanted`` and what they depend on, dependencies first; built-in ones left out.

    The package has no modules.dep (its postinst runs depmod), so the dependencies come from
    each module's own ``.modinfo`` section (``depends=``), as depmod reads them.
    """
    index = {
        _module_name(p): p
        for p in (modroot / "kernel").rglob("*.ko*")
        if p.name.endswith(_MODULE_SUFFIXES)
    }
    builtin_file = modroot / "modules.builtin"
    builtin = {
        _module_name(Path(line))
        for line in (builtin_file.read_text().split() if builtin_file.is_file() else [])
    }
    order: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name in chain:
            raise GuestBuildError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        path = index.get(name)
        if path is None:
            raise GuestBuildError(f"kernel module {name} is neither built in nor in the package")
        for dep in _modinfo(_module_bytes(path)).get("depends", []):
            for d in dep.split(","):
                if d:
                    visit(d, (*chain, name))
        seen.add(name)
        order.append((name, path))

    for name in wanted:
        visit(name, ())
    return order


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko.zst"):
        if shutil.which("zstd") is None:
            raise GuestUnavailable(f"{path.name} is zstd-compressed and zstd is not installed")
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    return data


def _modinfo(elf: bytes) -> dict[str, list[str]]:
    """The ``key=value`` strings of an ELF64 little-endian module's ``.modinfo`` section."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise GuestBuildError("not an ELF64 little-endian kernel module")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        base = shoff + i * shentsize
        (name,) = struct.unpack_from("<I", elf, base)
        offset, size = struct.unpack_from("<QQ", elf, base + 0x18)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        end = elf.index(b"\0", str_off + name)
        if elf[str_off + name : end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for entry in elf[offset : offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
            return info
    return {}


def _check_builtins(config: str) -> None:
    missing = [c for c in REQUIRED_BUILTINS if not re.search(rf"^{c}=y$", config, re.M)]
    if missing:
        raise GuestBuildError(f"the kernel does not build in {', '.join(missing)}")


def _pvh_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage, if it can be unpacked and has a PVH entry point."""
    if bzimage[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", bzimage, 0x206)[0] < 0x208:
        return None
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start : start + payload_length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = zlib.decompressobj(wbits=31).decompress(payload)
        elif payload.startswith(b"\x5d\x00"):
            elf = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(payload)
        elif payload.startswith(b"BZh"):
            elf = bz2.BZ2Decompressor().decompress(payload)
        elif payload.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
            elf = subprocess.run(
                ["zstd", "-dc"], input=payload, check=True, capture_output=True
            ).stdout
        else:
            return None
    except (lzma.LZMAError, zlib.error, OSError, subprocess.CalledProcessError):
        return None
    return elf if _has_pvh_note(elf) else None


def _has_pvh_note(elf: bytes) -> bool:
    """Whether an ELF64 has the Xen note XEN_ELFNOTE_PHYS32_ENTRY (18) QEMU's PVH boot needs."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        base = phoff + i * phentsize
        (p_type,) = struct.unpack_from("<I", elf, base)
        if p_type != 4:  # PT_NOTE
            continue
        offset, _, _, size = struct.unpack_from("<QQQQ", elf, base + 8)
        pos, end = offset, offset + size
        while pos + 12 <= end:
            namesz, descsz, n_type = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and n_type == 18:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


# --- the initramfs ---------------------------------------------------------------------------


class _Cpio:
    """A cpio archive in the "newc" format the kernel unpacks, every entry owned by root."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._ino = 1

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        rdev: tuple[int, int] = (0, 0),
        nlink: int = 1,
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        self._ino += 1
        self._buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, 0o040000 | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._ino = 0
        self._entry("TRAILER!!!", 0)
        return self._buf.getvalue()


# --- cache and helpers -----------------------------------------------------------------------


def _recipe_digest() -> str:
    recipe = json.dumps(
        [RECIPE_FORMAT, INIT_SCRIPT, POWER_BUTTON_HANDLER, WANTED_MODULES, DISK_SIZE]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:10]


def _load(target: Path) -> Guest:
    info = json.loads((target / "guest.json").read_text())
    kernel = target / "vmlinux"
    return Guest(
        kernel=kernel if kernel.is_file() else target / "vmlinuz",
        initrd=target / "initrd.gz",
        disk=target / "disk.qcow2",
        cmdline=CMDLINE,
        kernel_version=info["kernel_version"],
        modules=tuple(info["modules"]),
    )


def _newest_cached(cache_dir: Path) -> Guest | None:
    builds = [p.parent for p in cache_dir.glob(f"*_{_recipe_digest()}/guest.json")]
    if not builds:
        return None
    return _load(max(builds, key=lambda p: p.stat().st_mtime))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(
    cmd: Sequence[str], *, what: str, cwd: Path | None = None, unavailable: bool = False
) -> str:
    """Run ``cmd``; its failure raises GuestUnavailable if ``unavailable``, else GuestBuildError."""
    proc = subprocess.run(
        list(cmd), cwd=cwd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
    )
    if proc.returncode != 0:
        error = GuestUnavailable if unavailable else GuestBuildError
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise error(f"{what} failed ({proc.returncode}): {' / '.join(detail[-3:])}")
    return proc.stdout
