"""kill -9 of ``vpsorg serve`` in the middle of a create with an Idempotency-Key.

A database trigger (installed by the test, PostgreSQL only) makes the create's transaction
sleep at the moment its response is stored: after the server row and its first hour's
charge were written, before the commit. The test sees that moment from outside (the
backend holds write locks on ``servers`` and ``server_charges`` and sleeps), then SIGKILLs
the process. PostgreSQL notices the dead client (``client_connection_check_interval``) and
rolls the transaction back. A retry through a new process is 409 while the dead request's
lock lasts, then runs the create once; later retries replay it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from tests.concurrency.conftest import installation_with  # noqa: F401  (the fixture)
from tests.e2e.processes import Installation, wait_until

LOCK_SECONDS = 10
SERVER = {"name": "once", "plan_id": 3, "os_id": 3, "location": "us-west"}
SLOW_STORE = [
    "CREATE FUNCTION slow_store() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$",
    "CREATE TRIGGER slow_store BEFORE UPDATE ON idempotency_keys FOR EACH ROW "
    "WHEN (NEW.response_status IS NOT NULL) EXECUTE FUNCTION slow_store()",
]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _connect(installation: Installation) -> psycopg.Connection[Any]:
    return psycopg.connect(installation.database_url, autocommit=True)


def _one(installation: Installation, sql: str) -> Any:
    with _connect(installation) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def _sleeping_writer(installation: Installation) -> int | None:
    """The backend sleeping in the trigger, if it has written a server and a charge."""
    return _one(
        installation,
        "SELECT a.pid FROM pg_stat_activity a WHERE a.datname = current_database() "
        "AND a.wait_event = 'PgSleep' AND (SELECT count(DISTINCT c.relname) FROM pg_locks l "
        "JOIN pg_class c ON c.oid = l.relation WHERE l.pid = a.pid "
        "AND l.mode = 'RowExclusiveLock' AND c.relname IN ('servers', 'server_charges')) = 2",
    )


def test_a_create_killed_before_its_commit_happens_once_on_retry(databases, installation_with):  # noqa: F811
    if not databases.is_postgres:
        pytest.skip("holds a transaction open with pg_sleep in a trigger: PostgreSQL only")
    installation = installation_with(idempotency_lock_seconds=LOCK_SECONDS)
    user = installation.create_user("kill", credits=100)
    database = installation.database_url.rsplit("/", 1)[1]
    with _connect(installation) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET client_connection_check_interval = 100')
        for statement in SLOW_STORE:
            conn.execute(statement)  # type: ignore[arg-type]
    headers = {**user.headers, "Idempotency-Key": "order-7"}

    doomed = installation.serve("--no-worker")
    survivor = installation.serve("--no-worker")  # started now: serve takes seconds to start

    def post() -> None:
        try:
            url = f"{doomed.base_url}/api/v1/servers/"
            httpx.post(url, json=SERVER, headers=headers, timeout=90, trust_env=False)
        except httpx.TransportError:
            pass  # the process dies under it

    threading.Thread(target=post, daemon=True).start()
    backend = wait_until(lambda: _sleeping_writer(installation), "the create to be mid-commit")
    doomed.kill()
    wait_until(
        lambda: not _one(installation, f"SELECT 1 FROM pg_stat_activity WHERE pid = {backend}"),
        "PostgreSQL to end the dead client's transaction",
    )
    with _connect(installation) as conn:
        conn.execute("DROP TRIGGER slow_store ON idempotency_keys")
    assert _one(installation, "SELECT count(*) FROM servers") == 0
    assert _one(installation, "SELECT count(*) FROM server_charges") == 0
    locked_until = _one(
        installation, "SELECT locked_until FROM idempotency_keys WHERE response_status IS NULL"
    )
    assert locked_until is not None  # the reservation, without a response

    with httpx.Client(base_url=survivor.base_url, trust_env=False, timeout=30) as client:
        held = client.post("/api/v1/servers/", json=SERVER, headers=headers)
        assert _now() < locked_until, "too slow to retry within the dead request's lock"
        assert held.status_code == 409, held.text
        time.sleep(
            max(0.0, (locked_until - datetime.now(UTC).replace(tzinfo=None)).total_seconds())
        )
        created = client.post("/api/v1/servers/", json=SERVER, headers=headers)
        replayed = client.post("/api/v1/servers/", json=SERVER, headers=headers)
    assert created.status_code == 201, created.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert _one(installation, "SELECT count(*) FROM servers") == 1
    assert _one(installation, "SELECT count(*) FROM server_charges") == 1
