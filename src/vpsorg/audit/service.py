"""What an event says: built from an API write's response, or from an operator's command."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Scope

from vpsorg.audit import repository
from vpsorg.audit.models import Actor, AuditEvent, Outcome
from vpsorg.client_address import IPNetwork, client_address
from vpsorg.clock import isoformat, utcnow
from vpsorg.db import transaction
from vpsorg.idempotency import service as idempotency

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLI_METHOD = "CLI"
CLI_ADDRESS = "local"
"""The client address of a CLI change: the machine the database is reached from."""

RESOURCE_KINDS = {
    "servers": "server",
    "ssh-keys": "ssh_key",
    "tokens": "token",
    "actions": "action",
}
"""A path's collection, named as one of its resources: ``/api/v1/servers/12/`` is ``server:12``."""

_ID = re.compile(r"[1-9][0-9]{0,9}")
REPLAYED_HEADER = idempotency.REPLAYED_HEADER.lower().encode()
MAX_BODY = 64 * 1024
"""Responses to writes are small; past this the body is not read for an id or an action."""


def is_audited(method: str, path: str) -> bool:
    """Every API request that may change something; reads are not audited."""
    return method not in READ_METHODS and path.startswith(API_PREFIX)


@dataclass(frozen=True)
class ApiWrite:
    """What the request's transaction saw of one write request and its final response."""

    request_id: str
    client_address: str
    method: str
    path: str
    token: str | None
    status: int
    replayed: bool
    body: Any
    """The response body parsed as JSON, or None."""

    @classmethod
    def of(
        cls,
        scope: Scope,
        trusted_proxies: Sequence[IPNetwork],
        status: int,
        headers: Mapping[bytes, bytes] | None = None,
        body: bytes = b"",
    ) -> ApiWrite:
        """The write as an ASGI request and its response (status, headers, body) show it."""
        headers = headers or {}
        json_body = b"json" in headers.get(b"content-type", b"") and len(body) <= MAX_BODY
        return cls(
            request_id=scope.get("state", {}).get("request_id", ""),
            client_address=client_address(scope, trusted_proxies),
            method=scope["method"],
            path=scope["path"],
            token=_bearer_token(scope),
            status=status,
            replayed=headers.get(REPLAYED_HEADER, b"").lower() == b"true",
            body=_parse(body) if json_body else None,
        )


async def add_api_write(session: AsyncSession, write: ApiWrite) -> None:
    """Insert the event in the request's own transaction, as its last statement.

    A failure before the statement reaches the database is logged with the request id and
    the transaction goes on without the event: the effect is kept and the response goes
    out. A failure of the statement itself is raised: the database may have aborted the
    transaction (PostgreSQL does, and would then answer its COMMIT with a silent rollback),
    so the effect cannot be kept, and the request must end as an error. A SAVEPOINT would
    keep it, at two more round trips on every write: the cost of the transaction this
    saves. The statement has no known cause to fail on a live connection (every value is
    bounded, the token's ids come from a subquery of existing rows), and the causes it
    shares with the COMMIT (a lost connection, a full disk) fail the request anyway.
    """
    try:
        await _insert(session, write)
    except DBAPIError:
        raise
    except Exception:
        _log_lost(write)


async def record_api_write(sessions: async_sessionmaker[AsyncSession], write: ApiWrite) -> None:
    """Insert the event in one short transaction of its own (for a request that failed).

    Never raises: a failed insert is logged with the request id.
    """
    try:
        async with transaction(sessions) as session:
            await _insert(session, write)
    except Exception:
        _log_lost(write)


async def _insert(session: AsyncSession, write: ApiWrite) -> None:
    """One statement, the token's lookup in it."""
    token = write.token if write.status != 401 else None  # a 401 names no account
    await repository.insert_as_token(session, api_event(write, None), token)


def _log_lost(write: ApiWrite) -> None:
    log.exception(
        "request %s: audit event for %s %s (status %s) not recorded",
        write.request_id,
        write.method,
        write.path,
        write.status,
    )


def api_event(write: ApiWrite, token: tuple[int, int] | None) -> AuditEvent:
    body = write.body if isinstance(write.body, dict) else {}
    action = body.get("action")
    code = body.get("code") if write.status >= 400 else None
    return AuditEvent(
        created_at=utcnow(),
        account_id=token[1] if token else None,
        token_id=token[0] if token else None,
        actor=Actor.TOKEN if token else Actor.ANONYMOUS,
        client_address=write.client_address[:64],
        request_id=write.request_id,
        method=write.method[:16],
        path=write.path[:500],
        resource=resource_of(write.path, body if 200 <= write.status < 300 else {}),
        action_id=_int(action.get("id")) if isinstance(action, dict) else None,
        status=write.status,
        outcome=outcome_of(write.status, write.replayed),
        error_code=code[:64] if isinstance(code, str) else None,
    )


def outcome_of(status: int, replayed: bool) -> Outcome:
    if replayed:
        return Outcome.REPLAYED
    if 200 <= status < 300:
        return Outcome.SUCCESS
    return Outcome.ERROR if status >= 500 else Outcome.REFUSED


def resource_of(path: str, body: dict[str, Any]) -> str | None:
    """``server:12`` for ``/api/v1/servers/12/stop/``; on a create, the id is the response's."""
    parts = [part for part in path.removeprefix(API_PREFIX).split("/") if part]
    if not parts:
        return None
    kind = RESOURCE_KINDS.get(parts[0], parts[0][:80])
    if len(parts) > 1 and _ID.fullmatch(parts[1]):
        return f"{kind}:{parts[1]}"
    created = _int(body.get("id"))
    return f"{kind}:{created}" if created is not None else kind


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def record_operator_change(
    session: AsyncSession,
    command: str,
    *,
    account_id: int | None = None,
    resource: str | None = None,
    refused: str | None = None,
) -> None:
    """Record a CLI change in the command's own transaction: it commits with the change or not
    at all. ``command`` is what was run (``accounts credit 2 25``), never a token;
    ``refused`` is the error code of a command that changed nothing."""
    repository.add(
        session,
        AuditEvent(
            created_at=utcnow(),
            account_id=account_id,
            actor=Actor.OPERATOR,
            client_address=CLI_ADDRESS,
            request_id=uuid.uuid4().hex,
            method=CLI_METHOD,
            path=command[:500],
            resource=resource,
            outcome=Outcome.REFUSED if refused else Outcome.SUCCESS,
            error_code=refused,
        ),
    )


async def record_token_revocation(
    session: AsyncSession, *, token_id: int | None, token: str | None
) -> None:
    """``tokens revoke``, by id or by the token itself: recorded by the token's id only."""
    found = await repository.find_token(session, token) if token_id is None and token else None
    token_id = found[0] if found else token_id
    if token_id is None:
        return
    account_id = found[1] if found else await repository.token_account(session, token_id)
    await record_operator_change(
        session, f"tokens revoke {token_id}", account_id=account_id, resource=f"token:{token_id}"
    )


def table(events: Sequence[AuditEvent]) -> list[str]:
    """The operator's view (``vpsorg audit``), one line an event."""
    lines = [
        f"{'ID':>6}  {'TIME':<20}  {'ACCOUNT':>7}  {'ACTOR':<10}  {'ADDRESS':<15}  {'STATUS':>6}  "
        f"{'OUTCOME':<8}  {'RESOURCE':<14}  {'ACTION':>6}  METHOD PATH (ERROR CODE)  [REQUEST ID]"
    ]
    for e in events:
        actor = f"token:{e.token_id}" if e.actor == Actor.TOKEN else e.actor
        code = f"  ({e.error_code})" if e.error_code else ""
        lines.append(
            f"{e.id:>6}  {isoformat(e.created_at):<20}  {_dash(e.account_id):>7}  {actor:<10}  "
            f"{e.client_address:<15}  {_dash(e.status):>6}  {e.outcome:<8}  "
            f"{_dash(e.resource):<14}  {_dash(e.action_id):>6}  {e.method} {e.path}{code}"
            f"  [{e.request_id}]"
        )
    return lines


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
