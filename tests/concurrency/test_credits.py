"""Creates racing for an account's last credits, through several real API processes.

A server's first hour is paid in the create's own transaction, under the account's row lock.
Concurrent creates therefore queue on that lock, and each one sees the balance the previous
one left: an account holding exactly three hours gets exactly three servers, whichever API
process each create reaches. A create that only compared the balance with one hour, and left
the charge for later, would accept them all.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.concurrency.test_races import _rows
from tests.e2e.processes import Installation, User

PLAN_ID = 1
HOUR_MICROS = 30_000  # plan 1 without backups: 0.03 credits an hour
HOURS_AFFORDED = 3
CREATES = 30
API_PROCESSES = 2
START_TIMEOUT = 10.0  # for every client to be connected and waiting at the barrier


def _create_at_once(urls: list[str], user: User) -> list[httpx.Response]:
    """Send CREATES creates at the same instant, spread over the API processes.

    Each thread connects and authenticates first (a GET of the account), so the creates
    leave together when the barrier opens rather than one connection set-up apart.
    """
    barrier = threading.Barrier(CREATES, timeout=START_TIMEOUT)

    def create(n: int) -> httpx.Response:
        with httpx.Client(base_url=urls[n % len(urls)], timeout=30, trust_env=False) as client:
            client.get("/api/v1/account/", headers=user.headers).raise_for_status()
            barrier.wait()
            body = {
                "name": f"last-{n}",
                "plan_id": PLAN_ID,
                "os_id": 3,
                "location": "us-west",
                "backups_enabled": False,
            }
            return client.post("/api/v1/servers/", json=body, headers=user.headers)

    with ThreadPoolExecutor(max_workers=CREATES) as pool:
        return list(pool.map(create, range(CREATES)))


def test_concurrent_creates_spend_exactly_the_balance(
    installation_with: Callable[..., Installation],
) -> None:
    installation = installation_with()
    user = installation.create_user("last-credits", credits=HOURS_AFFORDED * HOUR_MICROS / 1e6)
    installation.run("accounts", "limit", str(user.account_id), str(CREATES + 20))
    urls = [installation.serve("--no-worker").base_url for _ in range(API_PROCESSES)]

    responses = _create_at_once(urls, user)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: HOURS_AFFORDED, 402: CREATES - HOURS_AFFORDED}, (
        f"responses {dict(statuses)}, expected {HOURS_AFFORDED} x 201 and "
        f"{CREATES - HOURS_AFFORDED} x 402"
    )
    refusals = Counter(r.json()["code"] for r in responses if r.status_code == 402)
    assert refusals == {"insufficient_credits": CREATES - HOURS_AFFORDED}, refusals
    created = sorted(r.json()["id"] for r in responses if r.status_code == 201)

    with httpx.Client(base_url=urls[0], trust_env=False) as client:
        account: dict[str, Any] = client.get("/api/v1/account/", headers=user.headers).json()
    assert (account["balance"], account["suspended"]) == (0, False), account

    # Behind the API: only the accepted creates wrote anything, and each paid its first hour.
    db = installation.database_url
    where = f"WHERE account_id = {user.account_id}"
    [(balance,)] = _rows(db, f"SELECT balance_micros FROM accounts WHERE id = {user.account_id}")
    assert balance == 0
    assert [row.id for row in _rows(db, f"SELECT id FROM servers {where} ORDER BY id")] == created
    actions = _rows(db, f"SELECT server_id, command FROM actions {where} ORDER BY server_id")
    assert [tuple(row) for row in actions] == [(server_id, "create") for server_id in created]
    ledger = _rows(
        db,
        f"SELECT kind, amount_micros, balance_after_micros FROM credit_entries {where} ORDER BY id",
    )
    topup = HOURS_AFFORDED * HOUR_MICROS
    assert [tuple(row) for row in ledger] == [
        ("topup", topup, topup),
        *[("charge", -HOUR_MICROS, topup - n * HOUR_MICROS) for n in range(1, HOURS_AFFORDED + 1)],
    ], ledger
    assert sum(row.amount_micros for row in ledger) == balance
    charges = _rows(
        db, f"SELECT server_id, hour, amount_micros FROM server_charges {where} ORDER BY server_id"
    )
    assert [tuple(row) for row in charges] == [(server_id, 0, HOUR_MICROS) for server_id in created]
