"""Readers of what a retried request left behind, and a clock tests can move forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.factories import User
from vpsorg import clock
from vpsorg.db import transaction
from vpsorg.runtime import Runtime


def keyed(user: User, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def count(runtime: Runtime, table: str, where: str = "1 = 1", **params: Any) -> int:
    async with transaction(runtime.read_sessions) as session:
        return int(
            await session.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)
        )


CREATE_TABLES = ("servers", "server_charges", "actions")
"""Where a create writes its effect (besides its stored response and its audit event)."""


async def effect_left(runtime: Runtime) -> dict[str, int]:
    """The rows of a create's effect, by table; {} when there are none."""
    counts = {table: await count(runtime, table) for table in CREATE_TABLES}
    return {table: n for table, n in counts.items() if n}


class MovableClock:
    """Real time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def later() -> Iterator[MovableClock]:
    moved = MovableClock()
    clock.set_clock(moved.now)
    yield moved
    clock.set_clock(None)
