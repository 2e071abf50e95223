"""Does KVM really work on this host? A cheap start-up check a driver can copy.

``/dev/kvm`` existing is not enough: on this workplace's machines it is served by ``kvm_pvm``
(no vmx/svm CPU flags) and a normal Linux guest makes almost no progress under it, while
libvirt still lists domain type ``kvm``. The probe has two steps:

1. static, ~0 ms: ``/dev/kvm`` opens read-write and ``/proc/cpuinfo`` has ``vmx`` or ``svm``
   (the check ``virt-host-validate`` makes);
2. functional, ~0.1-0.3 s where KVM works: QEMU with ``-accel kvm`` boots a 16 KB multiboot
   image that enters long mode, writes 32 MB of memory and exits through ``isa-debug-exit``;
   KVM counts as working only if QEMU exits with the expected status within ``timeout``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The code page of the probe, assembled (GNU as --32, linked at 0) from:
#   header: .long 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)      # multiboot, a.out kludge
#           .long 0x100000, 0x100000, 0, 0, 0x100020                        # load at 1 MB, entry
#   start:  mov $0x101000,%eax; mov %eax,%cr3                               # PML4 at +0x1000
#           mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4                     # PAE
#           mov $0xC0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr              # EFER.LME
#           mov %cr0,%eax; or $0x80000001,%eax; mov %eax,%cr0               # paging on
#           lgdt 0x100088; ljmp $0x08,$0x100058                             # into 64-bit code
#   .code64 mov $0x200000,%edi; mov $0x400000,%ecx; xor %eax,%eax; rep stosq  # write 32 MB
#           mov $0xf4,%dx; mov $0x2a,%al; out %al,%dx                       # QEMU exits (0x2a<<1)|1
#   1:      hlt; jmp 1b
#   gdt:    .quad 0, 0x00209A0000000000; gdtr: .word 15; .long 0x100078
_CODE = bytes.fromhex(
    "02b0ad1b00000100fe4f51e40000100000001000000000000000000020001000"
    "b8001010000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f"
    "20c00d010000800f22c00f011588001000ea580010000800bf00002000b90000"
    "400031c0f348ab66baf400b02aeef4ebfd8db426000000000000000000000000"
    "00000000009a20000f0078001000"
)
_EXIT_STATUS = (0x2A << 1) | 1


def probe_image() -> bytes:
    """The probe: its code page, then identity-mapping page tables for the first 64 MB."""
    base = 0x100000
    pml4 = struct.pack("<Q", base + 0x2000 + 3).ljust(4096, b"\0")
    pdpt = struct.pack("<Q", base + 0x3000 + 3).ljust(4096, b"\0")
    pd = b"".join(struct.pack("<Q", i * 0x200000 + 0x83) for i in range(32)).ljust(4096, b"\0")
    return _CODE.ljust(4096, b"\0") + pml4 + pdpt + pd


@dataclass(frozen=True)
class KvmProbe:
    usable: bool
    reason: str
    seconds: float


def cpu_has_virtualization(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    return any(
        line.startswith("flags") and ({"vmx", "svm"} & set(line.split()))
        for line in text.splitlines()
    )


def probe_kvm(
    qemu: str = "qemu-system-x86_64", timeout: float = 3.0, check_cpu_flags: bool = True
) -> KvmProbe:
    """Whether QEMU can run a guest with ``-accel kvm`` here, at a useful speed."""
    started = time.monotonic()

    def result(usable: bool, reason: str) -> KvmProbe:
        return KvmProbe(usable, reason, round(time.monotonic() - started, 3))

    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return result(False, f"/dev/kvm: {exc.strerror}")
    if check_cpu_flags and not cpu_has_virtualization():
        return result(False, "no vmx/svm CPU flag: /dev/kvm is not hardware virtualization")
    error = run_probe("kvm", qemu, timeout)
    return result(error is None, error or "KVM works")


def run_probe(accel: str, qemu: str = "qemu-system-x86_64", timeout: float = 3.0) -> str | None:
    """Run the probe image under ``-accel accel``: None if it finished in time, else why not."""
    with tempfile.NamedTemporaryFile(prefix="kvm-probe-", suffix=".bin") as image:
        image.write(probe_image())
        image.flush()
        cmd = [
            qemu, "-machine", "pc", "-accel", accel, "-m", "64", "-nodefaults", "-no-reboot",
            "-display", "none", "-kernel", image.name,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"a trivial {accel} guest did not finish within {timeout} s"
        except OSError as exc:
            return f"cannot run {qemu}: {exc}"
    if proc.returncode != _EXIT_STATUS:
        detail = proc.stderr.strip().splitlines()
        return f"the {accel} probe exited {proc.returncode}: {' / '.join(detail[-2:])}"
    return None
