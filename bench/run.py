"""``python -m bench``: start the servers, set up an account, run the scenarios, report."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench import report
from bench.database import provision
from bench.errors import BenchError
from bench.load import Budget, Measurement, Target, drive
from bench.options import Options, parse
from bench.processes import Service, run_cli, start_reference, start_vpsorg, vpsorg_environment
from bench.scenarios import Fixture, Reference, Scenario, bearer, build, seed_servers

CREDITS = 1_000_000
SERVERS_LIMIT = 100_000


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Servers:
    reference: Service
    vpsorg: Service | None
    token: str | None
    database: str
    database_url: str | None


def start_servers(options: Options, workdir: Path, stack: ExitStack) -> Servers:
    """Start the reference app, and vpsorg on a fresh database with one rich account."""
    reference = start_reference(workdir)
    stack.callback(reference.stop)
    vpsorg: Service | None = None
    token: str | None = None
    database_url: str | None = None
    description = "none (reference only)"
    if any(name != "reference" for name in options.scenarios):
        database = stack.enter_context(provision(options.db, workdir))
        env = vpsorg_environment(database.url, workdir)
        description = database.description
        database_url = database.url
        progress(f"migrating a fresh database: {description}")
        run_cli(env, workdir, "db", "upgrade")
        token = create_account(env, workdir)
        vpsorg = start_vpsorg(env, workdir)
        stack.callback(vpsorg.stop)
        vpsorg.wait_until_ready()
    reference.wait_until_ready()
    return Servers(reference, vpsorg, token, description, database_url)


def create_account(env: dict[str, str], workdir: Path) -> str:
    """An operator's three commands: an account with plenty of credits, its limit, a token."""
    account_id = run_cli(env, workdir, "accounts", "create", "bench", "--credits", str(CREDITS))
    run_cli(env, workdir, "accounts", "limit", account_id, str(SERVERS_LIMIT))
    return run_cli(env, workdir, "tokens", "create", account_id)


async def measure_all(
    options: Options, servers: Servers
) -> tuple[list[report.Row], dict[str, Measurement]]:
    fixture = None
    if servers.vpsorg is not None and servers.token and servers.database_url:
        progress("creating 50 servers through the API")
        ids = await seed_servers(servers.vpsorg.port, servers.token)
        fixture = Fixture(servers.token, ids, servers.database_url)
    scenarios = [build(name, fixture) for name in options.scenarios]
    if fixture is not None:
        scenarios.append(Reference("reference (end)"))
    rows: list[report.Row] = []
    measurements: dict[str, Measurement] = {}
    for scenario in scenarios:
        measurement, workers = await measure(scenario, options, servers, fixture)
        measurements[scenario.rows[0]] = measurement
        rows += report.rows_of(scenario.name, scenario.rows, workers, measurement)
    return report.against_reference(rows), measurements


async def measure(
    scenario: Scenario, options: Options, servers: Servers, fixture: Fixture | None
) -> tuple[Measurement, int]:
    service = servers.reference if scenario.on_reference else servers.vpsorg
    assert service is not None
    headers = bearer(fixture.token) if fixture and not scenario.on_reference else {}
    workers = scenario.workers(options.concurrency)
    progress(f"{scenario.rows[0]}: {workers} connections")
    measurement = await drive(
        scenario.once,
        Target("127.0.0.1", service.port, headers, service.pid),
        workers=workers,
        budget=Budget(options.requests, options.duration),
        warmup=scenario.warmup,
        failure_row=scenario.rows[0],
    )
    await scenario.settle(measurement.recorder)
    service.check_alive()
    return measurement, workers


def run(options: Options) -> None:
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="vpsorg-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        progress("starting the servers")
        servers = start_servers(options, workdir, stack)
        info = report.machine(options, servers.database)
        rows, measurements = asyncio.run(measure_all(options, servers))
        print(f"\n{report.describe_machine(info)}\n\n{report.table(rows)}", flush=True)
        if why := report.failures(measurements):
            print(f"\n{why}", flush=True)
        if options.json_path:
            report.write_json(options.json_path, options, info, rows)
            progress(f"wrote {options.json_path}")
        progress("stopping the servers and removing the temp dir and database")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(options)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped and temp files removed", file=sys.stderr)
        return 130
    return 0
