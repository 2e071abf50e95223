"""The process's Prometheus instruments, and the registry that /metrics exposes.

Counters and histograms are updated where things happen (the request middleware, the
worker, the meter, the reconciler). What the database knows (queue depth, servers by
status) is not kept here: ``collectors`` reads it at scrape time, once for all processes.

Several processes (``vpsorg serve`` and ``vpsorg worker``s on one machine) share their
counters when ``PROMETHEUS_MULTIPROC_DIR`` names a directory they can all write: each
process then keeps its values in files there, and the /metrics of any of them adds them
up (prometheus_client's multiprocess mode). Empty the directory before the processes start.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_HOST = "default"

# Requests answer in milliseconds; long-polls wait up to a minute.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Driver calls and actions: a simulator answers at once, a libvirt create takes minutes.
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

HTTP_REQUESTS = Counter(
    "vpsorg_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "vpsorg_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["method", "route"],
    buckets=REQUEST_BUCKETS,
)
ACTIONS = Counter(
    "vpsorg_actions",
    "Action attempts finished by the worker, by command and outcome "
    "(success, error, retry, lease_lost).",
    ["command", "outcome"],
)
ACTION_DURATION = Histogram(
    "vpsorg_action_duration_seconds",
    "Time the worker spent on one attempt of an action, by command and outcome.",
    ["command", "outcome"],
    buckets=SLOW_BUCKETS,
)
LEASE_EXPIRIES = Counter(
    "vpsorg_action_lease_expiries",
    "Actions claimed again after their lease ran out (a worker died or stalled).",
)
METERING_RUNS = Counter("vpsorg_metering_runs", "Completed runs of the meter.")
HOURS_CHARGED = Counter("vpsorg_metering_hours_charged", "Server-hours charged by the meter.")
DRIVER_CALLS = Histogram(
    "vpsorg_driver_call_duration_seconds",
    "Duration of hypervisor driver calls, by operation, host and outcome (ok, error).",
    ["operation", "host", "outcome"],
    buckets=SLOW_BUCKETS,
)
RECONCILER_CORRECTIONS = Counter(
    "vpsorg_reconciler_corrections",
    "Server statuses corrected by the reconciler, by the status found and the one written.",
    ["from_status", "to_status"],
)


def host_label(host_uri: str | None) -> str:
    """A host as a label: the name in its URI (never its user, port or options)."""
    if not host_uri:
        return DEFAULT_HOST
    return urlsplit(host_uri).hostname or host_uri.partition("?")[0]


@contextmanager
def driver_call(operation: str, host_uri: str | None) -> Iterator[None]:
    """Time one driver call; a call that raises is observed with ``outcome="error"``."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        DRIVER_CALLS.labels(operation, host_label(host_uri), outcome).observe(
            time.perf_counter() - started
        )


def action_finished(command: str, outcome: str, seconds: float) -> None:
    ACTIONS.labels(command, outcome).inc()
    ACTION_DURATION.labels(command, outcome).observe(seconds)


def process_registry() -> CollectorRegistry:
    """What this process (or, in multiprocess mode, every process) has counted."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY
