"""``python -m bench``: start the servers, set up an account, run the scenarios, report."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench import big, datasets, drain, fanout, report
from bench.database import provision
from bench.errors import BenchError
from bench.load import Budget, Measurement, Target, drive
from bench.options import BIG_READS, Options, parse
from bench.processes import (
    Service,
    run_cli,
    start_reference,
    start_same_work,
    start_vpsorg,
    vpsorg_environment,
)
from bench.scenarios import Fixture, Reference, Scenario, bearer, build, seed_servers

CREDITS = 1_000_000
SERVERS_LIMIT = 100_000
SERVER_CPU = 0
CLIENT_CPU = 1


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Servers:
    reference: Service
    vpsorg: Service | None
    token: str | None
    database: str
    database_url: str | None
    same_work: Service | None = None
    big: datasets.Dataset | None = None
    """One account with 10,000 servers (the BIG_READS scenarios)."""
    many: datasets.Dataset | None = None
    """100 accounts with 100 servers each (``drain``)."""
    env: dict[str, str] | None = None
    """vpsorg's environment, for the processes ``drain`` starts."""


def start_servers(options: Options, workdir: Path, stack: ExitStack) -> Servers:
    """Start the reference app, and vpsorg on a fresh database with one rich account (and the
    big datasets and the same-work app, if the scenarios need them)."""
    cpu = SERVER_CPU if options.pin else None
    reference = start_reference(workdir, cpu)
    stack.callback(reference.stop)
    servers = Servers(reference, None, None, "none (reference only)", None)
    if any(name != "reference" for name in options.scenarios):
        database = stack.enter_context(provision(options.db, workdir))
        env = vpsorg_environment(database.url, workdir)
        servers.env = env
        servers.database = database.description
        servers.database_url = database.url
        progress(f"migrating a fresh database: {database.description}")
        run_cli(env, workdir, "db", "upgrade")
        servers.token = create_account(env, workdir)
        servers.big, servers.many = load_datasets(options, database.url, env, workdir)
        if servers.big is not None:
            servers.same_work = start_same_work(database.url, workdir, cpu)
            stack.callback(servers.same_work.stop)
        servers.vpsorg = start_vpsorg(env, workdir, cpu)
        stack.callback(servers.vpsorg.stop)
        servers.vpsorg.wait_until_ready()
        if servers.same_work is not None:
            servers.same_work.wait_until_ready()
    reference.wait_until_ready()
    return servers


def load_datasets(
    options: Options, url: str, env: dict[str, str], workdir: Path
) -> tuple[datasets.Dataset | None, datasets.Dataset | None]:
    loaded = []
    for spec, wanted in (
        (datasets.BIG, any(name in BIG_READS for name in options.scenarios)),
        (datasets.MANY, "drain" in options.scenarios or "longpoll" in options.scenarios),
    ):
        dataset = None
        if wanted:
            dataset = datasets.load(spec, url, env, workdir)
            count = spec.accounts * spec.servers_per_account
            progress(f"dataset {spec.name}: {count} servers inserted in {dataset.seconds:.1f} s")
        loaded.append(dataset)
    return loaded[0], loaded[1]


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
    scenarios = [s for name in options.scenarios for s in await build_all(name, fixture, servers)]
    if fixture is not None:
        scenarios.append(Reference("reference (end)"))
    rows: list[report.Row] = []
    measurements: dict[str, Measurement] = {}
    for scenario in scenarios:
        measurement, workers = await measure(scenario, options, servers, fixture)
        measurements[scenario.rows[0]] = measurement
        rows += report.rows_of(scenario.name, scenario.rows, workers, measurement)
    return report.against_reference(rows), measurements


async def build_all(name: str, fixture: Fixture | None, servers: Servers) -> list[Scenario]:
    """The scenario named; a big read is two, vpsorg's then the same-work app's."""
    if name in BIG_READS:
        assert servers.big and servers.vpsorg and servers.same_work
        token = servers.big.tokens[0]
        read = big.reads(servers.big)[name]
        progress(f"{name}: checking that vpsorg and same-work answer {read.path} alike")
        await big.check_same_bodies(servers.vpsorg.port, servers.same_work.port, token, [read.path])
        return [big.BigRead(read, token, "vpsorg"), big.BigRead(read, token, "same-work")]
    if name in ("drain", "longpoll"):
        return []  # after the others, with processes of their own: see run()
    return [build(name, fixture)]


async def measure(
    scenario: Scenario, options: Options, servers: Servers, fixture: Fixture | None
) -> tuple[Measurement, int]:
    service = {
        "reference": servers.reference,
        "vpsorg": servers.vpsorg,
        "same-work": servers.same_work,
    }[scenario.service]
    assert service is not None
    token = scenario.token if scenario.token is not None else fixture and fixture.token
    headers = bearer(token) if token and scenario.service != "reference" else {}
    if scenario.token == "":  # the scenario sends its own Authorization with each request
        headers = {"Content-Type": "application/json"}
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
        if options.pin:
            os.sched_setaffinity(0, {CLIENT_CPU})  # the servers get SERVER_CPU
        if "longpoll" in options.scenarios:
            fanout.raise_open_files()  # before the servers start: they inherit it
        progress("starting the servers")
        servers = start_servers(options, workdir, stack)
        info = report.machine(options, servers.database)
        rows, measurements = asyncio.run(measure_all(options, servers))
        rss = {  # before drain stops vpsorg
            s.name: s.resident_mb()
            for s in (servers.vpsorg, servers.same_work, servers.reference)
            if s is not None
        }
        idle = None
        if servers.big is not None and servers.vpsorg is not None:
            progress(f"measuring vpsorg's CPU while idle for {big.IDLE_SECONDS:g} s")
            idle = asyncio.run(big.idle_cpu_percent(servers.vpsorg.pid))
            info["vpsorg_idle_cpu_percent"] = idle
        fanout_summary = ""
        if {"drain", "longpoll"} & set(options.scenarios):
            more, fanout_summary = asyncio.run(after_the_api(options, servers, workdir, stack))
            rows = report.against_reference(rows + more)
        info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        info["resident_mb"] = rss
        print(f"\n{report.describe_machine(info)}\n\n{report.table(rows)}", flush=True)
        if comparison := big.comparison(rows):
            print(f"\n{comparison}", flush=True)
        print(f"\n{big.rss_line(rss)}", flush=True)
        if fanout_summary:
            print(fanout_summary, flush=True)
        if idle is not None:
            print(
                f"vpsorg-serve idle, with the datasets loaded: {idle:.1f}% of a core "
                f"(its embedded worker's periodic jobs, over {big.IDLE_SECONDS:g} s)",
                flush=True,
            )
        if why := report.failures(measurements):
            print(f"\n{why}", flush=True)
        if options.json_path:
            report.write_json(options.json_path, options, info, rows)
            progress(f"wrote {options.json_path}")
        progress("stopping the servers and removing the temp dir and database")


async def after_the_api(
    options: Options, servers: Servers, workdir: Path, stack: ExitStack
) -> tuple[list[report.Row], str]:
    """``drain`` and ``longpoll``, on an API process without a worker and workers of their own."""
    assert servers.vpsorg and servers.many and servers.env and servers.database_url
    api = drain.replace_api(options, servers.vpsorg, servers.env, workdir, stack)
    rows: list[report.Row] = []
    summary = ""
    if "drain" in options.scenarios:
        try:
            rows += await drain.measure_drain(
                options,
                api,
                servers.many.tokens,
                servers.env,
                servers.database_url,
                workdir,
                stack,
            )
        except BenchError as exc:  # keep what was measured before
            summary += f"drain failed: {exc}\n"
    if "longpoll" in options.scenarios:
        try:
            row, line = await fanout.measure_fanout(
                options, api, servers.many, servers.env, servers.database_url, workdir, stack
            )
            rows.append(row)
            summary += line
        except BenchError as exc:
            summary += f"longpoll failed: {exc}"
    return rows, summary


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
