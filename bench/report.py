"""Statistics, the machine description, the table on stdout and the JSON file."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import Measurement
from bench.options import Options


@dataclass(frozen=True)
class Row:
    row: str
    scenario: str
    workers: int
    requests: int
    failures: int
    median_ms: float | None
    p95_ms: float | None
    per_second: float
    server_cpu_ms: float | None = None
    """CPU the server process used per operation of the scenario (on its first row only)."""
    client_cpu_ms: float | None = None
    machine_busy_percent: float | None = None
    """How busy all the machine's cores were meanwhile, whoever used them (first row only)."""
    median_vs_reference: float | None = None
    """This row's median latency divided by the reference's: 3.0 means three times slower."""
    server_cpu_vs_reference: float | None = None
    """The server's CPU per operation divided by the reference server's, per request."""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def rows_of(scenario: str, rows: tuple[str, ...], workers: int, m: Measurement) -> list[Row]:
    """One row per recorded result; the scenario's CPU figures go on its first row."""
    first, *others = [_latency_row(name, scenario, workers, m) for name in rows]
    busy = m.machine_busy * 100 if m.machine_busy is not None else None
    first = replace(
        first,
        server_cpu_ms=_per_operation(m.server_cpu_seconds, m),
        client_cpu_ms=_per_operation(m.client_cpu_seconds, m),
        machine_busy_percent=busy,
    )
    return [first, *others]


def _latency_row(name: str, scenario: str, workers: int, m: Measurement) -> Row:
    """Latency statistics over the successful operations recorded under ``name``."""
    latencies = m.recorder.latencies.get(name, [])
    failures = m.recorder.failures.get(name, 0)
    return Row(
        row=name,
        scenario=scenario,
        workers=workers,
        requests=len(latencies) + failures,
        failures=failures,
        median_ms=statistics.median(latencies) * 1000 if latencies else None,
        p95_ms=percentile(latencies, 0.95) * 1000 if latencies else None,
        per_second=len(latencies) / m.seconds if m.seconds > 0 else 0.0,
    )


def _per_operation(seconds: float | None, m: Measurement) -> float | None:
    if seconds is None or not m.operations:
        return None
    return seconds / m.operations * 1000


def against_reference(rows: list[Row]) -> list[Row]:
    """Fill in the ratios to the reference: to the mean over its runs (one before the other
    scenarios and one after them, so a drift of the machine shows)."""
    references = [r for r in rows if r.scenario == "reference"]
    median = _mean([r.median_ms for r in references])
    cpu = _mean([r.server_cpu_ms for r in references])
    return [
        replace(
            r,
            median_vs_reference=_ratio(r.median_ms, median),
            server_cpu_vs_reference=_ratio(r.server_cpu_ms, cpu),
        )
        for r in rows
    ]


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v]
    return statistics.fmean(known) if known else None


def _ratio(value: float | None, reference: float | None) -> float | None:
    return value / reference if value is not None and reference else None


# -- the machine ----------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(options: Options, database: str) -> dict[str, Any]:
    """What the numbers were measured on; the load average says how busy the machine was."""
    uvicorn_http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn_loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "vpsorg": _version("vpsorg"),
        "uvicorn": f"{_version('uvicorn')} ({uvicorn_http}, {uvicorn_loop} loop)",
        "fastapi": _version("fastapi"),
        "client": "bench.http (HTTP/1.1 keep-alive, asyncio), in the benchmark's own process",
        "database": database,
        "concurrency": options.concurrency,
        "budget": f"at most {options.requests} operations or {options.duration:g} s per scenario",
        "pinning": "each server on core 0, the client on core 1; the database unpinned"
        if options.pin
        else "none",
    }


# -- output ---------------------------------------------------------------------------

HEADER = (
    "scenario",
    "requests",
    "failed",
    "median ms",
    "p95 ms",
    "req/s",
    "x ref",
    "srv cpu ms",
    "cpu x ref",
    "cli cpu ms",
    "busy %",
)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = [
        (
            r.row,
            str(r.requests),
            str(r.failures),
            _number(r.median_ms, 2),
            _number(r.p95_ms, 2),
            _number(r.per_second, 1),
            _number(r.median_vs_reference, 2),
            _number(r.server_cpu_ms, 2),
            _number(r.server_cpu_vs_reference, 1),
            _number(r.client_cpu_ms, 2),
            _number(r.machine_busy_percent, 0),
        )
        for r in rows
    ]
    widths = [max(len(cells[i]) for cells in [HEADER, *lines]) for i in range(len(HEADER))]

    def render(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(HEADER), rule, *(render(cells) for cells in lines)])


def describe_machine(info: dict[str, Any]) -> str:
    load = " ".join(str(x) for x in info["load_average"])
    if after := info.get("load_average_after"):
        load += f" (after: {' '.join(str(x) for x in after)})"
    return "\n".join(
        [
            f"vpsorg {info['vpsorg']} benchmark, {info['date']}",
            f"machine   {info['cores']} cores ({info['cpu']}), {info['os']}, load average {load}",
            f"pinning   {info.get('pinning', 'none')}",
            f"python    {info['python']}; uvicorn {info['uvicorn']}; fastapi {info['fastapi']}",
            f"database  {info['database']}",
            f"client    {info['client']}; {info['concurrency']} connections; {info['budget']}",
        ]
    )


def failures(measurements: dict[str, Measurement]) -> str:
    """The first failure of each row that had any, to say why."""
    lines = [
        f"  {row}: {why}"
        for m in measurements.values()
        for row, why in m.recorder.first_failure.items()
    ]
    return "first failures:\n" + "\n".join(lines) if lines else ""


def write_json(path: Path, options: Options, info: dict[str, Any], rows: list[Row]) -> None:
    settings = {
        "db": "sqlite"
        if options.is_sqlite
        else "postgresql",  # not the URL: it may hold a password
        "requests": options.requests,
        "duration": options.duration,
        "concurrency": options.concurrency,
        "scenarios": list(options.scenarios),
    }
    document = {"machine": info, "options": settings, "results": [asdict(r) for r in rows]}
    path.write_text(json.dumps(document, indent=2) + "\n")
