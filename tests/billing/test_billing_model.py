"""Billing against a model: random interleavings of everything that moves money or time.

A Hypothesis state machine drives the real app (embedded worker, simulator, fake clock)
through HTTP and keeps a plain-Python model of the billing rules beside it: an account and
its servers metered by an always-on-time meter. After every step the ledger must add up and
no server-hour may be charged twice; after every metering run and every change that settles
the account first (create, top-up, refund, operator suspend/unsuspend, backups toggle, plan
price change), the app's balance, per-server payments, suspension, burn rate and server
statuses must equal the model's.

Where the rules leave room, the model reads them so: a change at T settles the hours that
started by T inclusive (an hour starting at T keeps the old price); the servers limit counts
every server not deleted, a failed create too (it is listed until the customer deletes it),
while the burn counts only servers that pay (not a failed create); a failed server may show
``error`` or ``suspended`` while the account is suspended.

Everything that reaches into vpsorg below HTTP is in ``Billing`` (the adapter), so the same
machine can be pointed at other code. ``VPSORG_MODEL_EXAMPLES`` sets the number of examples
(default 25) for long local runs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import DatabaseProvider, make_settings
from tests.factories import SERVER
from vpsorg.app import create_app

if TYPE_CHECKING:
    from vpsorg.runtime import Runtime


class Billing:
    """Every call into vpsorg's internals (not HTTP): the one place to change to test other code."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @staticmethod
    def set_clock(now: Callable[[], datetime] | None) -> None:
        from vpsorg import clock

        clock.set_clock(now)

    async def create_account(self, credits_micros: int, servers_limit: int) -> tuple[int, str]:
        from vpsorg.accounts.service import create_account
        from vpsorg.auth.tokens import create_token
        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            account = await create_account(session, "model", credits_micros)
            account.servers_limit = servers_limit
            _row, token = await create_token(session, account.id)
        return account.id, token

    async def credit(self, account_id: int, amount_micros: int) -> None:
        from vpsorg.billing.service import credit
        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            await credit(session, account_id, amount_micros, kind="topup", memo="model top-up")
        self.runtime.wake_worker()

    async def suspend(self, account_id: int, reason: str) -> None:
        from vpsorg.billing.service import suspend_account
        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            await suspend_account(session, account_id, reason)
        self.runtime.wake_worker()

    async def unsuspend(self, account_id: int) -> None:
        from vpsorg.billing.service import unsuspend_account
        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            await unsuspend_account(session, account_id)
        self.runtime.wake_worker()

    async def set_plan_price(self, plan_id: int, price_hourly_micros: int) -> None:
        from vpsorg.billing.service import set_plan_price
        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            await set_plan_price(session, plan_id, price_hourly_micros)

    async def charge_due_hours(self) -> None:
        from vpsorg.billing.metering import charge_due_hours

        await charge_due_hours(self.runtime.sessions)
        self.runtime.wake_worker()

    def fail_next_create(self) -> None:
        from vpsorg.drivers.simulator import SimulatorDriver

        assert isinstance(self.runtime.driver, SimulatorDriver)
        self.runtime.driver.inject_fault("create")

    async def scalars(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        from vpsorg.db import transaction

        async with transaction(self.runtime.sessions) as session:
            rows = await session.execute(text(sql), params)
            return [tuple(row) for row in rows.all()]

    async def ledger(self, account_id: int) -> tuple[int, int]:
        """(sum of the account's ledger entries, its stored balance)."""
        [(total, balance)] = await self.scalars(
            "SELECT (SELECT COALESCE(SUM(amount_micros), 0) FROM credit_entries"
            " WHERE account_id = :a), balance_micros FROM accounts WHERE id = :a",
            a=account_id,
        )
        return int(total), int(balance)

    async def paid_by_server(self, account_id: int) -> dict[int, tuple[int, int]]:
        """Server id -> (sum of its hour charges, number of charged hours)."""
        rows = await self.scalars(
            "SELECT server_id, SUM(amount_micros), COUNT(*) FROM server_charges"
            " WHERE account_id = :a GROUP BY server_id",
            a=account_id,
        )
        return {int(s): (int(total), int(count)) for s, total, count in rows}

    async def hours_charged_twice(self) -> list[tuple[Any, ...]]:
        return await self.scalars(
            "SELECT server_id, hour, COUNT(*) FROM server_charges"
            " GROUP BY server_id, hour HAVING COUNT(*) > 1"
        )

    async def refunds(self, account_id: int) -> tuple[int, int]:
        """(number of refund entries in the account's ledger, their sum)."""
        [(count, total)] = await self.scalars(
            "SELECT COUNT(*), COALESCE(SUM(amount_micros), 0) FROM credit_entries"
            " WHERE account_id = :a AND kind = 'refund'",
            a=account_id,
        )
        return int(count), int(total)

    async def actions_done(self) -> bool:
        """Whether the worker has finished every action; if not, wake it."""
        [(count,)] = await self.scalars(
            "SELECT COUNT(*) FROM actions WHERE status IN ('pending', 'running')"
        )
        if count:
            self.runtime.wake_worker()
        return not count


# -- the model ------------------------------------------------------------------------------

HOUR = timedelta(hours=1)
CAP_HOURS = 730
CREDITS_REASON = "insufficient credits"
OPERATOR_REASON = "abuse"
PLAN_PRICES = {1: 30_000, 2: 60_000, 3: 7_500}
# 2030-01-28: January and February turn over; March 1st: 744 hours, so a server running all
# month reaches the 730 h cap; New Year's Eve: a year boundary within the first hours.
STARTS = (datetime(2030, 1, 28, 10), datetime(2030, 3, 1), datetime(2030, 12, 31, 21))


@dataclass
class ModelServer:
    id: int
    plan: int
    backups: bool
    next_start: datetime | None  # the start of the next hour to charge; None: clock stopped
    power: str = "active"
    deleted_at: datetime | None = None
    failed: bool = False
    paid: int = 0
    month_paid: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.deleted_at is None and not self.failed


@dataclass
class Model:
    """One account under the billing rules, metered by a meter that is never late."""

    now: datetime
    balance: int
    servers_limit: int
    prices: dict[int, int] = field(default_factory=lambda: dict(PLAN_PRICES))
    suspended: bool = False
    reason: str | None = None
    servers: dict[int, ModelServer] = field(default_factory=dict)

    def hour_price(self, plan: int, backups: bool) -> int:
        price = self.prices[plan]
        return price + round(price * 0.20) if backups else price

    def live(self) -> list[ModelServer]:
        return [s for s in self.servers.values() if s.live]

    def listed(self) -> list[ModelServer]:
        """What the servers limit counts: every server not deleted, failed creates included."""
        return [s for s in self.servers.values() if s.deleted_at is None]

    def burn(self) -> int:
        return sum(self.hour_price(s.plan, s.backups) for s in self.live())

    def settle(self) -> None:
        """Charge every hour that has started by now, in time order, as the meter would."""
        while not self.suspended:
            due = [
                s
                for s in self.servers.values()
                if s.next_start is not None
                and s.next_start <= self.now
                and (s.deleted_at is None or s.next_start < s.deleted_at)
            ]
            if not due:
                return
            start = min(s.next_start for s in due if s.next_start is not None)
            for server in due:
                if server.next_start == start:
                    self._charge(server, start)
                    server.next_start = start + HOUR
            if self.balance < 0:
                event("the meter suspends for credits")
                self._suspend(CREDITS_REASON)

    def _charge(self, server: ModelServer, start: datetime) -> None:
        price = self.hour_price(server.plan, server.backups)
        month = (start.year, start.month)
        already = server.month_paid.get(month, 0)
        amount = min(price, max(0, CAP_HOURS * price - already))
        if amount < price:
            event("the monthly cap reached")
        server.month_paid[month] = already + amount
        server.paid += amount
        self.balance -= amount

    def _suspend(self, reason: str) -> None:
        self.suspended, self.reason = True, reason
        for server in self.servers.values():
            server.next_start = None

    def _lift(self) -> None:
        self.suspended, self.reason = False, None
        for server in self.live():
            server.next_start = self.now
            server.power = "stopped"
        self.settle()

    def create_refusal(self, plan: int, backups: bool) -> tuple[int, str] | None:
        """The (status, code) a create now is refused with, or None for 201."""
        self.settle()
        if self.suspended:
            return 402, "account_suspended"
        if len(self.listed()) >= self.servers_limit:
            return 403, "limit_exceeded"
        if self.balance < self.hour_price(plan, backups):
            return 402, "insufficient_credits"
        return None

    def add_server(self, server_id: int, plan: int, backups: bool) -> ModelServer:
        server = ModelServer(server_id, plan, backups, next_start=self.now)
        self.servers[server_id] = server
        self.settle()
        return server

    def create_failed(self, server: ModelServer) -> None:
        server.failed, server.next_start = True, None
        self._credited(server.paid)

    def credit(self, amount: int) -> None:
        self.settle()
        self._credited(amount)

    def _credited(self, amount: int) -> None:
        self.balance += amount
        if self.suspended and self.reason == CREDITS_REASON:
            lifted = self.balance >= self.burn()
            event("a credit lifts" if lifted else "a credit too small to lift")
            if lifted:
                self._lift()

    def operator_suspend(self) -> None:
        self.settle()
        if self.suspended:
            event(f"operator suspends over {self.reason!r}")
        self._suspend(OPERATOR_REASON)

    def operator_unsuspend(self) -> None:
        self.settle()
        if not self.suspended:
            return
        if self.balance >= self.burn():
            event("operator unsuspend lifts")
            self._lift()
        else:
            event("operator unsuspend leaves a credits suspension")
            self.reason = CREDITS_REASON

    def set_price(self, plan: int, price: int) -> None:
        self.settle()
        self.prices[plan] = price

    def toggle_backups(self, server: ModelServer) -> None:
        self.settle()
        server.backups = not server.backups

    def status(self, server: ModelServer) -> set[str]:
        if server.failed:  # the rules don't say whether a failed server shows `suspended`
            return {"error", "suspended"} if self.suspended else {"error"}
        return {"suspended"} if self.suspended else {server.power}


# -- the machine ----------------------------------------------------------------------------

EPOCH = datetime(2030, 1, 1)
MINUTES = st.one_of(st.integers(1, 180), st.integers(180, 3 * 7 * 24 * 60))
CREDITS = st.integers(50_000, 500_000)  # little, so the account is suspended often
TOP_UPS = st.one_of(st.integers(1_000, 200_000), st.integers(1_000_000, 30_000_000))
# A price cut mid-month lowers the cap with it (at 1_000/h a server that paid 0.73 this month
# has reached it), so the cap is not only reached after 730 hours at one price.
PRICES = st.sampled_from([1_000, 7_500, 12_345, 30_000, 45_000, 60_000])
PICK = st.integers(0, 9)  # an index into the eligible servers, modulo their number


class BillingMachine(RuleBasedStateMachine):
    databases: ClassVar[DatabaseProvider]
    workdir: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        self.now = EPOCH
        self.loop = asyncio.new_event_loop()
        Billing.set_clock(lambda: self.now)
        directory = Path(tempfile.mkdtemp(dir=self.workdir))
        # The meter runs only when a rule says so (once at start-up, with nothing to charge).
        app_settings = make_settings(
            self.databases.fresh(directory), directory, metering_interval=10**6
        )
        self.app = create_app(app_settings)
        self.lifespan: AbstractAsyncContextManager[Any] = self.app.router.lifespan_context(self.app)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )
        try:
            self.run(self.lifespan.__aenter__())
        except BaseException:
            self.loop.close()
            Billing.set_clock(None)
            raise
        self.billing = Billing(self.app.state.runtime)
        self.account_id = 0
        self.headers: dict[str, str] = {}
        self.model = Model(EPOCH, 0, 10)

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        try:
            self.run(self.http.aclose())
            self.run(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.close()
            Billing.set_clock(None)

    # -- helpers --------------------------------------------------------------------------

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers, **kwargs)

    async def quiet(self) -> None:
        """Wait until the worker has finished every action (suspends included)."""
        for _ in range(500):
            if await self.billing.actions_done():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("actions still unfinished after 5 s")

    async def wait_action(self, action_id: int) -> str:
        response = await self.request("GET", f"/api/v1/actions/{action_id}/?wait=5")
        status: str = response.json()["status"]
        return status

    def pick(self, index: int, eligible: list[ModelServer]) -> ModelServer:
        return sorted(eligible, key=lambda s: s.id)[index % len(eligible)]

    def describe(self) -> str:
        m = self.model
        servers = "\n".join(
            f"  server {s.id}: plan {s.plan} backups {s.backups} power {s.power} "
            f"next {s.next_start} deleted {s.deleted_at} failed {s.failed} paid {s.paid}"
            for s in m.servers.values()
        )
        return (
            f"model at {m.now}: balance {m.balance} burn {m.burn()} suspended {m.suspended} "
            f"({m.reason}) prices {m.prices}\n{servers}"
        )

    async def compare(self) -> None:
        """The app, settled to now, must agree with the model on everything billing shows."""
        await self.quiet()
        m = self.model
        account = (await self.request("GET", "/api/v1/account/")).json()
        actual = {
            "balance": round(account["balance"] * 1_000_000),
            "hourly_burn_rate": round(account["hourly_burn_rate"] * 1_000_000),
            "suspended": account["suspended"],
            "suspended_reason": account["suspended_reason"],
        }
        expected = {
            "balance": m.balance,
            "hourly_burn_rate": m.burn(),
            "suspended": m.suspended,
            "suspended_reason": m.reason,
        }
        assert actual == expected, self.describe()

        paid = await self.billing.paid_by_server(self.account_id)
        for server in m.servers.values():
            total, count = paid.get(server.id, (0, 0))
            if server.failed:  # refunded by one ledger entry; no hour after the first
                assert count <= 1, f"failed server {server.id} charged {count} hours"
            else:
                assert total == server.paid, f"server {server.id} paid {total}\n{self.describe()}"
        failed = [s for s in m.servers.values() if s.failed]
        refunds = await self.billing.refunds(self.account_id)
        assert refunds == (len(failed), sum(s.paid for s in failed)), f"refunds {refunds}"

        listing = (await self.request("GET", "/api/v1/servers/?per_page=200")).json()
        statuses = {s["id"]: s["status"] for s in listing["results"]}
        expected_ids = {s.id for s in m.servers.values() if s.deleted_at is None}
        assert set(statuses) == expected_ids, f"{statuses}\n{self.describe()}"
        for server_id, status in statuses.items():
            assert status in m.status(m.servers[server_id]), (
                f"server {server_id} is {status}\n{self.describe()}"
            )

    # -- rules ----------------------------------------------------------------------------

    @initialize(
        start=st.sampled_from(STARTS),
        minutes=st.integers(0, 59),
        credits=CREDITS,
        servers_limit=st.integers(2, 5),
        plan=st.integers(1, 3),
        backups=st.booleans(),
    )
    def open_account(
        self,
        start: datetime,
        minutes: int,
        credits: int,
        servers_limit: int,
        plan: int,
        backups: bool,
    ) -> None:
        """An account with little credit and, if it can pay for one, a first server."""
        self.now = start + timedelta(minutes=minutes)
        self.model = Model(self.now, credits, servers_limit)
        self.account_id, token = self.run(self.billing.create_account(credits, servers_limit))
        self.headers = {"Authorization": f"Bearer {token}"}
        self.run(self._create(plan, backups, fail=False))

    @rule(plan=st.integers(1, 3), backups=st.booleans(), fail=st.booleans())
    def create(self, plan: int, backups: bool, fail: bool) -> None:
        self.run(self._create(plan, backups, fail))

    async def _create(self, plan: int, backups: bool, fail: bool) -> None:
        refusal = self.model.create_refusal(plan, backups)
        if fail and refusal is None:
            self.billing.fail_next_create()
        name = f"s{len(self.model.servers)}"
        body = dict(SERVER, name=name, hostname=f"{name}.example.com", plan_id=plan)
        body["backups_enabled"] = backups
        response = await self.request("POST", "/api/v1/servers/", json=body)
        event(f"create: {refusal[1] if refusal else 'created'}{' (fails)' if fail else ''}")
        if refusal is not None:
            actual = (response.status_code, response.json().get("code"))
            assert actual == refusal, f"{response.text}\n{self.describe()}"
            await self.quiet()
            return
        assert response.status_code == 201, f"{response.text}\n{self.describe()}"
        created = response.json()
        server = self.model.add_server(created["id"], plan, backups)
        outcome = await self.wait_action(created["action"]["id"])
        assert outcome == ("error" if fail else "success"), outcome
        if fail:
            self.model.create_failed(server)
        await self.compare()

    @precondition(lambda self: any(s.deleted_at is None for s in self.model.servers.values()))
    @rule(index=PICK)
    def delete(self, index: int) -> None:
        server = self.pick(index, [s for s in self.model.servers.values() if s.deleted_at is None])
        response = self.run(self.request("DELETE", f"/api/v1/servers/{server.id}/"))
        assert response.status_code == 204, response.text
        server.deleted_at = self.now  # not a settling change: the next meter run catches up
        self.run(self.quiet())

    @precondition(lambda self: bool(self.model.live()))
    @rule(index=PICK)
    def power(self, index: int) -> None:
        server = self.pick(index, self.model.live())
        command = "stop" if server.power == "active" else "start"
        response = self.run(self.request("POST", f"/api/v1/servers/{server.id}/{command}/"))
        self.model.settle()  # a power request settles the account first (a late meter's hours)
        if self.model.suspended:
            assert response.status_code == 402, response.text
            assert response.json()["code"] == "account_suspended"
        else:
            assert response.status_code == 200, f"{response.text}\n{self.describe()}"
            assert self.run(self.wait_action(response.json()["action"]["id"])) == "success"
            server.power = "stopped" if command == "stop" else "active"
        self.run(self.quiet())

    @precondition(lambda self: bool(self.model.live()))
    @rule(index=PICK)
    def toggle_backups(self, index: int) -> None:
        server = self.pick(index, self.model.live())
        self.model.toggle_backups(server)
        response = self.run(
            self.request(
                "PATCH", f"/api/v1/servers/{server.id}/", json={"backups_enabled": server.backups}
            )
        )
        assert response.status_code == 200, response.text
        self.run(self.compare())

    @rule(plan=st.integers(1, 3), price=PRICES)
    def change_price(self, plan: int, price: int) -> None:
        self.model.set_price(plan, price)
        self.run(self.billing.set_plan_price(plan, price))
        # Settling is only promised for accounts the change touches.
        if any(s.plan == plan for s in self.model.live()):
            self.run(self.compare())

    @rule(amount=TOP_UPS)
    def top_up(self, amount: int) -> None:
        self.model.credit(amount)
        self.run(self.billing.credit(self.account_id, amount))
        self.run(self.compare())

    @rule(lift=st.booleans())
    def operator(self, lift: bool) -> None:
        """An operator suspends an active account or unsuspends one they suspended; ``lift``
        chooses for an account suspended for credits."""
        if self.model.reason == OPERATOR_REASON or (lift and self.model.suspended):
            self.model.operator_unsuspend()
            self.run(self.billing.unsuspend(self.account_id))
        else:
            self.model.operator_suspend()
            self.run(self.billing.suspend(self.account_id, OPERATOR_REASON))
        self.run(self.compare())

    @precondition(lambda self: self.model.reason == CREDITS_REASON)
    @rule(amount=TOP_UPS)
    def top_up_when_suspended(self, amount: int) -> None:
        """A second top-up rule, so that top-ups meet a credits suspension more often."""
        self.top_up(amount)

    @rule()
    def meter(self) -> None:
        self.model.settle()
        self.run(self.billing.charge_due_hours())
        self.run(self.compare())

    @rule(minutes=MINUTES, then_meter=st.booleans())
    def wait(self, minutes: int, then_meter: bool) -> None:
        self.now += timedelta(minutes=minutes)
        self.model.now = self.now
        note(f"clock: {self.now}")
        if then_meter:
            self.meter()

    @invariant()
    def ledger_adds_up_no_hour_is_charged_twice_and_burn_is_right(self) -> None:
        if not self.account_id:
            return
        total, balance = self.run(self.billing.ledger(self.account_id))
        assert total == balance, f"ledger sums to {total}, balance is {balance}"
        assert self.run(self.billing.hours_charged_twice()) == []
        account = self.run(self.request("GET", "/api/v1/account/")).json()
        burn = round(account["hourly_burn_rate"] * 1_000_000)
        assert burn == self.model.burn(), f"burn {burn}\n{self.describe()}"


def test_billing_matches_the_model(databases: DatabaseProvider, tmp_path: Path) -> None:
    BillingMachine.databases = databases
    BillingMachine.workdir = tmp_path
    run_state_machine_as_test(
        BillingMachine,
        settings=settings(
            max_examples=int(os.environ.get("VPSORG_MODEL_EXAMPLES", "25")),
            stateful_step_count=30,
            deadline=None,
            database=None,
            print_blob=True,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
