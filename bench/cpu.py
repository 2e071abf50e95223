"""CPU time used by a process: steadier than latency on a busy machine."""

from __future__ import annotations

import os
import time


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a running process, from /proc (None where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    fields = text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """Between start and stop: CPU seconds of the server (by pid) and of this process (the
    client), and how busy the whole machine was (other processes included), from 0 to 1."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server: float | None = None
        self.client = 0.0
        self.machine_busy: float | None = None

    def start(self) -> None:
        self._server_start = process_cpu_seconds(self.server_pid)
        self._client_start = time.process_time()
        self._machine_start = machine_ticks()

    def stop(self) -> None:
        end = process_cpu_seconds(self.server_pid)
        if end is not None and self._server_start is not None:
            self.server = end - self._server_start
        self.client = time.process_time() - self._client_start
        machine_end = machine_ticks()
        if machine_end and self._machine_start and machine_end[1] > self._machine_start[1]:
            busy = machine_end[0] - self._machine_start[0]
            self.machine_busy = busy / (machine_end[1] - self._machine_start[1])
