"""The one source of "now" (naive UTC), so tests can move time forward."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None)  # noqa: E731


def utcnow() -> datetime:
    return _now()


def set_clock(now: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the real one."""
    global _now
    _now = now or (lambda: datetime.now(UTC).replace(tzinfo=None))


def isoformat(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, to the second: ``2025-01-16T15:30:00Z``."""
    if value is None:
        return None
    return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
