"""Exactly once across a failure: the response is stored in the transaction of the effect.

Had the effect (a server and its first hour's charge) committed before the response was
stored, a failure between the two would leave a billed server behind a free key, and the
retry would bill a second one. Here the response store itself fails, after the effect was
written: nothing of the request may remain, and the retry makes the only server.
"""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.factories import SERVER
from tests.idempotency.conftest import count, keyed
from vpsorg.db import transaction

URL = "/api/v1/servers/"

SQLITE_FAILURE = [
    "CREATE TRIGGER fail_store BEFORE UPDATE ON idempotency_keys "
    "WHEN NEW.response_status IS NOT NULL "
    "BEGIN SELECT RAISE(ABORT, 'the process died before its commit'); END"
]
POSTGRES_FAILURE = [
    "CREATE FUNCTION fail_store() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the process died before its commit'; END $$",
    "CREATE TRIGGER fail_store BEFORE UPDATE ON idempotency_keys FOR EACH ROW "
    "WHEN (NEW.response_status IS NOT NULL) EXECUTE FUNCTION fail_store()",
]


async def _sql(runtime, statements: list[str]) -> None:
    async with transaction(runtime.sessions) as session:
        for statement in statements:
            await session.execute(text(statement))


async def test_a_failed_response_store_takes_the_effect_with_it(app, user, factory):
    runtime = app.state.runtime
    postgres = runtime.engine.dialect.name == "postgresql"
    await _sql(runtime, POSTGRES_FAILURE if postgres else SQLITE_FAILURE)
    balance = await factory.balance(user)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
        assert failed.status_code == 500
        for table in ("servers", "server_charges", "actions", "idempotency_keys"):
            assert await count(runtime, table) == 0, table
        assert await factory.balance(user) == balance

        drop = "DROP TRIGGER fail_store" + (" ON idempotency_keys" if postgres else "")
        await _sql(runtime, [drop])
        retried = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
        replayed = await client.post(URL, json=SERVER, headers=keyed(user, "k"))
    assert retried.status_code == 201
    assert replayed.json()["id"] == retried.json()["id"]
    assert await count(runtime, "servers") == 1
    assert await count(runtime, "server_charges") == 1
