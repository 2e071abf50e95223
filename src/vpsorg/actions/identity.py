"""Worker identities, and telling whether the worker behind one has died.

A worker's id is ``host:pid:start:scope:random``: its host name and process id, the
process's start time (clock ticks after boot, /proc/<pid>/stat), and a hash of the boot
id and the pid namespace. A worker that finds an id of its own host and scope can tell
whether that process is still alive: another process now holding the pid (reused) has
another start time, and a container that shares the host name but not the pid namespace
(or another machine with the same name) has another scope, so its pids are never looked
up here. Without /proc (not Linux) the start is 0 and the scope "-": only the pid is
checked, and a reused pid keeps the dead worker's actions until their leases expire.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid


def new_worker_id() -> str:
    pid = os.getpid()
    process = _process(pid)
    started = process[1] if process else 0
    return f"{socket.gethostname()}:{pid}:{started}:{_SCOPE}:{uuid.uuid4().hex[:6]}"


def is_dead_worker(worker_id: str) -> bool:
    """Whether ``worker_id`` names a worker of this host whose process is gone.

    False when it cannot tell (another host or scope, an id of an older vpsorg): that
    worker's actions are then taken back when their leases expire.
    """
    parts = worker_id.rsplit(":", 4)
    if len(parts) != 5 or parts[0] != socket.gethostname() or parts[3] != _SCOPE:
        return False
    try:
        pid, started = int(parts[1]), int(parts[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's process
    process = _process(pid)
    if process is None:
        return False  # no /proc here, or hidden from us; or it died just now: next look
    state, now_started = process
    return state in ("Z", "X") or (started != 0 and now_started != started)


def _process(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read().decode(errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid ..." where comm may hold spaces and parentheses; the start
    # time is field 22, the 20th after the closing parenthesis.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _scope() -> str:
    """Which pids this process can see: a hash of the kernel's boot id and the pid namespace."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            boot = file.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:8]


_SCOPE = _scope()
