"""Logging: one formatter for vpsorg's and uvicorn's lines, context on every line, no secrets.

``configure_logging(settings)`` sends every logger (uvicorn's too, see ``uvicorn_log_config``)
to one stderr handler: ``VPSORG_LOG_FORMAT=json`` writes one JSON object per line, ``text``
a timestamped line, ``auto`` text on a terminal and JSON otherwise. Each line carries the
context it was written in: a request's ``request_id``, ``method``, ``route``, ``account_id``
(once authenticated), ``status`` and ``duration_ms`` (once answered); an action's
``action_id``, ``server_id``, ``command``, ``attempt`` and ``host``. Tokens are blanked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vpsorg.config import Settings

TOKEN_IN_TEXT = re.compile(r"vps_[A-Za-z0-9_-]{8,}")
REDACTED = "vps_[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactTokens(logging.Filter):
    """Blank anything shaped like a vpsorg token in a record's message and arguments.

    vpsorg never reads a token from a query string, but a client may still send one there
    (``?token=vps_...``); uvicorn's access log would otherwise write it to disk.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_TEXT.sub(REDACTED, arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = TOKEN_IN_TEXT.sub(REDACTED, record.msg)
        return True


def redact_access_log() -> None:
    """Attach the filter to uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())


# -- context -------------------------------------------------------------------------------


@dataclass
class RequestContext:
    """What the lines written while serving one request say about it.

    Mutable on purpose: the layers that learn something (``RequestGuard`` the id, the
    account dependency the account, the outermost middleware the status) write it here,
    and every line of the request, the access lines included, reads it.
    """

    method: str
    route: str
    request_id: str | None = None
    account_id: int | None = None
    status: int | None = None
    started: float = field(default_factory=time.perf_counter)
    duration: float | None = None

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route,
            "account_id": self.account_id,
        }
        if self.status is not None:
            elapsed = self.duration
            if elapsed is None:  # uvicorn's access line: written as the response starts
                elapsed = time.perf_counter() - self.started
            values.update(status=self.status, duration_ms=round(elapsed * 1000, 3))
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class ActionContext:
    """What the lines written while the worker runs one action say about it."""

    action_id: int
    server_id: int
    command: str
    attempt: int
    host: str

    def fields(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "server_id": self.server_id,
            "command": self.command,
            "attempt": self.attempt,
            "host": self.host,
        }


_request: ContextVar[RequestContext | None] = ContextVar("vpsorg_request", default=None)
_action: ContextVar[ActionContext | None] = ContextVar("vpsorg_action", default=None)


@contextmanager
def request_context(method: str, route: str) -> Iterator[RequestContext]:
    context = RequestContext(method=method, route=route)
    token = _request.set(context)
    try:
        yield context
    finally:
        _request.reset(token)


def current_request() -> RequestContext | None:
    return _request.get()


def note_request_id(request_id: str) -> None:
    if (context := _request.get()) is not None:
        context.request_id = request_id


def note_account(account_id: int) -> None:
    if (context := _request.get()) is not None:
        context.account_id = account_id


@contextmanager
def action_context(context: ActionContext) -> Iterator[ActionContext]:
    token = _action.set(context)
    try:
        yield context
    finally:
        _action.reset(token)


def context_fields() -> dict[str, Any]:
    """The fields of the request or action being handled here, if any."""
    values: dict[str, Any] = {}
    if (request := _request.get()) is not None:
        values.update(request.fields())
    if (action := _action.get()) is not None:
        values.update(action.fields())
    return values


class AddContext(logging.Filter):
    """Copy the current request's and action's fields onto the record (``record.context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context"):
            record.context = context_fields()
        return True


# -- formatters ----------------------------------------------------------------------------

# Attributes every LogRecord has: anything else was passed with ``extra=`` and is a field.
_PLAIN_RECORD = logging.LogRecord("", 0, "", 0, "", None, None)
_RECORD_ATTRIBUTES = frozenset(vars(_PLAIN_RECORD)) | {"message", "asctime", "context"}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context, any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "context", None) or {})
        entry.update(_extra(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, default=str, ensure_ascii=False)
        return TOKEN_IN_TEXT.sub(REDACTED, line)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL logger: message key=value ...``: for a terminal."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {**(getattr(record, "context", None) or {}), **_extra(record)}
        if fields:
            pairs = " ".join(f"{name}={value}" for name, value in fields.items())
            head, newline, rest = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} [{pairs}]{newline}{rest}"
        return TOKEN_IN_TEXT.sub(REDACTED, line)


def choose_formatter(log_format: str, stream: TextIO) -> logging.Formatter:
    """``auto`` is text on a terminal, JSON otherwise (a file, journald, a log shipper)."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return JsonFormatter() if log_format == "json" else TextFormatter()


HANDLER_NAME = "vpsorg"


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(choose_formatter(log_format, stream))
    handler.addFilter(AddContext())
    handler.addFilter(RedactTokens())
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every logger to one stderr handler with the chosen format (repeatable).

    Run ``uvicorn.run(..., log_config=None)`` afterwards, so that uvicorn's loggers
    propagate here instead of getting handlers of their own.
    """
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(make_handler(settings.log_format, stream))
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    redact_access_log()


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """A ``log_config`` for uvicorn that routes its loggers through vpsorg's formatter.

    The same as calling ``configure_logging`` and passing ``log_config=None``; for
    ``uvicorn vpsorg...:app --log-config`` and other launchers that want a dict.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": AddContext},
            "redact": {"()": RedactTokens},
        },
        "formatters": {
            "vpsorg": {
                "()": choose_formatter,
                "log_format": settings.log_format,
                "stream": sys.stderr,
            },
        },
        "handlers": {
            "vpsorg": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "vpsorg",
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["vpsorg"], "level": settings.log_level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
