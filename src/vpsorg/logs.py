"""Logging that never keeps a secret: tokens sent in a query string are blanked in access logs."""

from __future__ import annotations

import logging
import re

TOKEN_IN_TEXT = re.compile(r"vps_[A-Za-z0-9_-]{8,}")


class RedactTokens(logging.Filter):
    """Blank anything shaped like a vpsorg token in a record's message and arguments.

    vpsorg never reads a token from a query string, but a client may still send one there
    (``?token=vps_...``); uvicorn's access log would otherwise write it to disk.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_TEXT.sub("vps_[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = TOKEN_IN_TEXT.sub("vps_[redacted]", record.msg)
        return True


def redact_access_log() -> None:
    """Attach the filter to uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())
