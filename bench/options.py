"""The command line of ``python -m bench``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = (
    "reference",
    "detail-10k",
    "list-10k",
    "page200-10k",
    "list",
    "detail",
    "errors",
    "power",
    "wake",
    "create",
    "drain",
    "longpoll",
)
"""Every scenario, in the order they run (``reference`` always runs: the ratios need it)."""
BIG_READS = ("detail-10k", "list-10k", "page200-10k")
"""The scenarios on the 10k-server account, each run on vpsorg and on the same-work app."""


@dataclass(frozen=True)
class Options:
    db: str
    requests: int
    duration: float
    concurrency: int
    scenarios: tuple[str, ...]
    json_path: Path | None
    pin: bool = False
    """Servers on core 0, the client on core 1 (the default where there are two cores)."""

    @property
    def is_sqlite(self) -> bool:
        return self.db == "sqlite"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return value


def _database(text: str) -> str:
    if text == "sqlite" or text.startswith(("postgresql://", "postgres://", "postgresql+")):
        return text
    raise argparse.ArgumentTypeError("use 'sqlite' or a postgresql://user@host:port/db URL")


def _scenarios(text: str) -> tuple[str, ...]:
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}"
        )
    return tuple(name for name in SCENARIOS if name in wanted or name == "reference")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Benchmark a real `vpsorg serve` over TCP against a trivial FastAPI app served by "
            "the same uvicorn, measured in the same run."
        ),
    )
    p.add_argument(
        "--db",
        type=_database,
        default="sqlite",
        help="'sqlite' (a fresh file in a temp dir; the default) or a PostgreSQL URL; on "
        "PostgreSQL a fresh database vpsorg_bench_<pid> is created there and dropped after",
    )
    p.add_argument(
        "--requests",
        type=_positive_int,
        default=3000,
        help="at most this many operations per scenario (default 3000)",
    )
    p.add_argument(
        "--duration",
        type=_positive_float,
        default=6.0,
        help="at most this many seconds of measuring per scenario (default 6)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        help="client connections, each a worker in a closed loop (default 8)",
    )
    p.add_argument(
        "--scenarios",
        type=_scenarios,
        default=SCENARIOS,
        help=f"a comma-separated subset of {','.join(SCENARIOS)} (reference always runs)",
    )
    p.add_argument("--json", type=Path, dest="json_path", help="also write the results here")
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help="run each server process on core 0 and the client on core 1 (default: on with "
        "two cores or more; the database is left to the scheduler)",
    )
    return p


def parse(argv: list[str] | None = None) -> Options:
    args = parser().parse_args(argv)
    return Options(
        db=args.db,
        requests=args.requests,
        duration=args.duration,
        concurrency=args.concurrency,
        scenarios=args.scenarios,
        json_path=args.json_path,
        pin=args.pin,
    )
