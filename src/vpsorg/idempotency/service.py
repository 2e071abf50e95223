"""The rules of idempotent retries (Stripe's semantics). Services decide; callers commit.

A key belongs to an account. Its first request reserves it; the reservation then carries
that request's final response, stored for ``KEY_TTL``. A repeat with the same fingerprint
(method, path, canonical JSON body) gets the stored response; another fingerprint is
``idempotency_key_reused``; a repeat while the first is in flight is
``idempotency_key_in_use``. A reservation whose request died without a response is free
again once its lock expires.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vpsorg.clock import utcnow
from vpsorg.db import single_statement_write, transaction
from vpsorg.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidParameters
from vpsorg.idempotency import repository
from vpsorg.idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
"""On a replayed response: ``true``."""
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
PURGE_BATCH = 1000


@dataclass(frozen=True)
class Reservation:
    """The right to run the key's first request and store its response."""

    id: int
    lock_token: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str | None
    body: bytes


def is_key(key: str) -> bool:
    """A key is 1-255 printable ASCII characters (space to tilde)."""
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)


def check_key(key: str) -> str:
    if not is_key(key):
        raise InvalidParameters.field(HEADER, f"Use 1-{MAX_KEY_LENGTH} printable ASCII characters.")
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, the path and the body as canonical JSON.

    Key order and whitespace don't change a JSON body's fingerprint; a body that is not JSON
    counts byte for byte.
    """
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def may_store(status: int) -> bool:
    """Final answers are stored; 429 and 5xx say "try again", so they free the key."""
    return status < 500 and status != 429


def look(row: IdempotencyKey | None, print_: str) -> StoredResponse | None:
    """What the account's row for a key says: the stored response, or None when it looks
    free. Raises when the key is in use or was used with another fingerprint."""
    return _decide(row, print_, utcnow())


async def reserve(
    sessions: async_sessionmaker[AsyncSession],
    account_id: int,
    key: str,
    print_: str,
    lock_seconds: float,
    seen: IdempotencyKey | None = None,
) -> Reservation | StoredResponse:
    """Reserve the key in a short transaction of its own, committed before the request runs,
    so concurrent repeats see it. Returns the stored response if another request got there
    first.

    ``seen`` is the row the caller's look found (None: none, as for every new key). A new
    key is reserved by one INSERT committed by itself, on a connection without a session.
    The INSERT and the take-over are guarded, so a row made or changed since the look only
    costs another try, with a fresh read.
    """
    if seen is None:
        reservation = await _reserve_new(sessions, account_id, key, print_, lock_seconds)
        if reservation is not None:
            return reservation
    async with transaction(sessions) as session:
        row = seen
        for attempt in range(3):
            now = utcnow()
            if attempt or row is None:
                row = await repository.find(session, account_id, key)
            stored = _decide(row, print_, now)
            if stored is not None:
                return stored
            token, values = _reservation_values(print_, now, lock_seconds)
            if row is None:
                connection = await session.connection()
                row_id = await connection.run_sync(
                    repository.insert, account_id=account_id, key=key, **values
                )
                if row_id is not None:
                    return Reservation(row_id, token)
            elif await repository.take_over(
                session, row.id, now=now, expired_before=now - KEY_TTL, **values
            ):
                return Reservation(row.id, token)
    raise IdempotencyKeyInUse(_IN_USE)


async def _reserve_new(
    sessions: async_sessionmaker[AsyncSession],
    account_id: int,
    key: str,
    print_: str,
    lock_seconds: float,
) -> Reservation | None:
    """The reservation of a key the account has no row for; None when it has one by now."""
    token, values = _reservation_values(print_, utcnow(), lock_seconds)
    row_id = await single_statement_write(
        _engine(sessions),
        lambda connection: repository.insert(connection, account_id=account_id, key=key, **values),
    )
    return None if row_id is None else Reservation(row_id, token)


async def reserve_as_caller(
    sessions: async_sessionmaker[AsyncSession],
    token_hash: str,
    key: str,
    print_: str,
    lock_seconds: float,
) -> Reservation | None:
    """A new key's reservation for the caller of a live token, by one INSERT that checks the
    token itself, committed by itself: a keyed request's one statement before it runs, as
    its key is usually new. None when the token is not live or the account has the key:
    then look it up (``repository.find_with_caller``) and ``reserve``."""
    token, values = _reservation_values(print_, utcnow(), lock_seconds)
    row_id = await single_statement_write(
        _engine(sessions),
        lambda connection: repository.insert_as_caller(connection, token_hash, key, **values),
    )
    return None if row_id is None else Reservation(row_id, token)


def _engine(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine


def _reservation_values(
    print_: str, now: datetime, lock_seconds: float
) -> tuple[str, dict[str, Any]]:
    token = secrets.token_hex(16)
    values = {
        "fingerprint": print_,
        "created_at": now,
        "lock_token": token,
        "locked_until": now + timedelta(seconds=lock_seconds),
    }
    return token, values


async def store_response(
    session: AsyncSession,
    reservation: Reservation,
    status: int,
    content_type: str | None,
    body: bytes,
) -> None:
    """In the request's transaction, with its effect: store the key's first response, or
    free the key when the response says "try again" (see ``may_store``).

    Raises IdempotencyKeyInUse when the reservation was taken over (its lock expired while
    the request ran): the caller must roll the transaction back, or the key would have two
    effects, and answer with that error instead.
    """
    if not may_store(status):
        await release(session, reservation)
        return
    stored = await repository.record(
        session,
        reservation.id,
        reservation.lock_token,
        status=status,
        content_type=content_type,
        body=body,
    )
    if not stored:
        raise IdempotencyKeyInUse(_TAKEN_OVER)


async def release(session: AsyncSession, reservation: Reservation) -> None:
    """Free a key whose request will store no response (a 5xx, a 429, a crash)."""
    await repository.release(session, reservation.id, reservation.lock_token)


async def purge_expired(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Delete the keys past their time to live, a batch per transaction."""
    purged = 0
    while True:
        async with transaction(sessions) as session:
            count = await repository.purge(session, utcnow() - KEY_TTL, PURGE_BATCH)
        purged += count
        if count < PURGE_BATCH:
            return purged


_IN_USE = "A request with this Idempotency-Key is still in progress; retry after it has finished."
_TAKEN_OVER = (
    "This request outlived its Idempotency-Key lock and a retry took the key over; nothing "
    "was done here. Retry to get that request's answer."
)


def _decide(row: IdempotencyKey | None, print_: str, now: datetime) -> StoredResponse | None:
    if row is None or row.created_at <= now - KEY_TTL:
        return None
    if row.response_status is None and row.locked_until is not None and row.locked_until <= now:
        return None  # its request died without a response
    if row.fingerprint != print_:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with another request (method, path or body); "
            "use a new key for a new request."
        )
    if row.response_status is None:
        raise IdempotencyKeyInUse(_IN_USE)
    return StoredResponse(row.response_status, row.response_content_type, row.response_body or b"")
