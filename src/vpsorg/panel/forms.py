"""Form tokens: the session's CSRF token, and the one-time token of each rendered form.

The CSRF token is an HMAC of the session's id (which only the cookie holds): a page of
another site can't know it, and nothing needs storing. The one-time token is random per
rendered form; its first submit is recorded with where its result is shown, and a second
submit of the same form (a double click, a reload that re-posts) is sent there instead of
doing the change again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from vpsorg.errors import ApiError, validation_error
from vpsorg.users import service as users

FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"vpsorg panel csrf", hashlib.sha256).hexdigest()


def same_token(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def new_form_token() -> str:
    return secrets.token_urlsafe(32)


def text(form: FormData, name: str) -> str:
    """A text field as typed (a missing field or a file is empty)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_token(form: FormData) -> str:
    """The one-time token the form was rendered with."""
    return text(form, "form_token")


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("on", "true", "1")


def integer_or_text(value: str) -> int | str | None:
    """A form's id field for a schema: an int when it is one, else the text (for the
    schema's own message), None when empty."""
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() and len(value) < 12 else value


class StaleForm(Exception):
    """A submit without a well-formed one-time token, or with another session's."""


async def submit_once(
    session: AsyncSession,
    panel_session_id: int,
    form_token: str,
    change: Callable[[], Awaitable[str]],
) -> str:
    """Run ``change`` once per form token; returns the path that shows its result.

    The change runs in a savepoint with the token's record: if it raises (an ApiError to
    show beside the fields), neither is kept and the form may be sent again. A concurrent
    submit of the same form waits on the token's unique index, then finds the first one's
    record; a later one finds it at once.
    """
    if not FORM_TOKEN.fullmatch(form_token):
        raise StaleForm()
    previous = await _previous(session, panel_session_id, form_token)
    if previous is not None:
        return previous
    try:
        async with session.begin_nested():
            record = await users.claim_submission(session, panel_session_id, form_token)
            record.result_path = await change()
            await session.flush()
    except IntegrityError:
        previous = await _previous(session, panel_session_id, form_token)
        if previous is None:
            raise
        return previous
    return record.result_path


async def _previous(session: AsyncSession, panel_session_id: int, form_token: str) -> str | None:
    found = await users.previous_submission(session, form_token)
    if found is None:
        return None
    if found.session_id != panel_session_id:
        raise StaleForm()
    return found.result_path


def field_errors(error: ApiError) -> dict[str, list[str]]:
    """An error's messages by field; one without fields goes above the form (``form``)."""
    return error.errors or {"form": [error.detail]}


def parse(schema: type[Any], values: dict[str, Any]) -> Any:
    """The API's validation of a form's values: the same rules, the same messages."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
