"""What a test sees of the SQL a request sends, on every engine the app sends it through."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from vpsorg import db
from vpsorg.runtime import Runtime


def engines_of(runtime: Runtime) -> list[AsyncEngine]:
    """The write engine, SQLite's read engine and PostgreSQL's autocommit engine of single
    statements (``db.single_statement_reads`` and ``db.single_statement_write``). SQLite's
    single statements run on an engine's options, whose statements its listeners see."""
    engines = [runtime.engine]
    if runtime.read_engine is not runtime.engine:
        engines.append(runtime.read_engine)
    if runtime.engine.dialect.name == "postgresql":
        engines.append(db._statement_engine(runtime.engine))
    return engines


def record(runtime: Runtime) -> list[str]:
    """Each statement sent from now on, whitespace collapsed, in order (the engines are the
    test's: the listeners go with them)."""
    statements: list[str] = []
    listen(runtime, statements)
    return statements


@contextmanager
def recorded_statements(runtime: Runtime) -> Iterator[list[str]]:
    """Each statement sent while the block runs, whitespace collapsed, in order."""
    statements: list[str] = []
    stop = listen(runtime, statements)
    try:
        yield statements
    finally:
        stop()


def listen(runtime: Runtime, statements: list[str]) -> Callable[[], None]:
    """Append each statement sent to ``statements``; returns how to stop."""

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    watched = [engine.sync_engine for engine in engines_of(runtime)]
    for engine in watched:
        event.listen(engine, "before_cursor_execute", note)

    def stop() -> None:
        for engine in watched:
            event.remove(engine, "before_cursor_execute", note)

    return stop
