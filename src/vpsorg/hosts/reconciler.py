"""The reconciler: what each host really runs, compared with what the database says.

Periodically (``VPSORG_RECONCILE_INTERVAL``) every worker asks each enabled host for its
machines and brings servers whose machine changed behind vpsorg's back up to date:

* an ``active`` server whose guest shut itself down or died becomes ``stopped``;
* a ``stopped`` server whose guest is running again (booted by hand, host autostart)
  becomes ``active``;
* a server whose machine has vanished becomes ``error``.

Servers busy with an action are left alone (their action will settle them), and every
write is guarded by the status *and* the ``updated_at`` read before asking the host, so a
change made meanwhile by an action always wins. A machine no server owns is reported in
the log (once per process) and by ``vpsorg hosts audit``, never deleted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpsorg.db import transaction
from vpsorg.drivers.base import Driver, DriverError, MachineState
from vpsorg.hosts.models import Host
from vpsorg.observability import metrics
from vpsorg.servers import repository as servers
from vpsorg.servers.models import Server, ServerStatus, machine_name

log = logging.getLogger(__name__)

DEFAULT_HOST = "(default)"

# (status in the database, what the host says) -> the status it should have
CORRECTIONS: dict[tuple[str, MachineState], ServerStatus] = {
    (ServerStatus.ACTIVE, MachineState.STOPPED): ServerStatus.STOPPED,
    (ServerStatus.ACTIVE, MachineState.MISSING): ServerStatus.ERROR,
    (ServerStatus.STOPPED, MachineState.RUNNING): ServerStatus.ACTIVE,
    (ServerStatus.STOPPED, MachineState.MISSING): ServerStatus.ERROR,
}


@dataclass(frozen=True)
class Finding:
    """One difference between a host and the database."""

    host: str
    machine: str
    server_id: int | None  # None: no server owns the machine
    recorded: str | None  # the server's status in the database
    actual: MachineState
    corrected_to: str | None = None  # the status written, when one was

    def describe(self) -> str:
        if self.server_id is None:
            return f"{self.host}: machine {self.machine} ({self.actual}) belongs to no server"
        change = f"; now {self.corrected_to}" if self.corrected_to else ""
        return (
            f"{self.host}: server {self.server_id} is {self.recorded} but its machine "
            f"{self.machine} is {self.actual}{change}"
        )


@dataclass(frozen=True)
class _Known:
    server_id: int
    status: str
    updated_at: datetime


class Reconciler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], driver: Driver) -> None:
        self.sessions = sessions
        self.driver = driver
        self._reported: set[tuple[str, str]] = set()

    async def run(self, *, correct: bool = True) -> list[Finding]:
        """Compare every host with the database; correct statuses unless ``correct`` is off."""
        hosts, known = await self._snapshot()
        findings: list[Finding] = []
        for label, uri in hosts:
            try:
                with metrics.driver_call("machines", uri):
                    machines = await self.driver.machines(host_uri=uri)
            except DriverError as exc:
                log.warning("reconciler: cannot list machines on %s: %s", label, exc)
                continue
            findings += await self._compare(label, machines, known.get(label, {}), correct)
        return findings

    async def _snapshot(self) -> tuple[list[tuple[str, str | None]], dict[str, dict[str, _Known]]]:
        """The hosts to ask, and each host's live servers by machine name (read first)."""
        async with transaction(self.sessions) as session:
            all_hosts = (await session.scalars(select(Host).order_by(Host.name))).all()
            rows = await session.execute(
                select(Server.id, Server.status, Server.updated_at, Host.name)
                .outerjoin(Host, Server.host_id == Host.id)
                .where(Server.status != ServerStatus.DELETED)
            )
            known: dict[str, dict[str, _Known]] = defaultdict(dict)
            for server_id, status, updated_at, host_name in rows:
                label = host_name or DEFAULT_HOST
                known[label][machine_name(server_id)] = _Known(server_id, status, updated_at)
        hosts: list[tuple[str, str | None]] = [(h.name, h.uri) for h in all_hosts if h.enabled]
        if not all_hosts or DEFAULT_HOST in known:
            hosts.insert(0, (DEFAULT_HOST, None))
        return hosts, known

    async def _compare(
        self,
        label: str,
        machines: dict[str, MachineState],
        known: dict[str, _Known],
        correct: bool,
    ) -> list[Finding]:
        findings = [self._stranger(label, name, state)
                    for name, state in sorted(machines.items()) if name not in known]  # fmt: skip
        for name, server in sorted(known.items()):
            actual = machines.get(name, MachineState.MISSING)
            target = CORRECTIONS.get((server.status, actual))
            if target is None:
                continue
            written = correct and await self._correct(server, target)
            finding = Finding(label, name, server.server_id, server.status, actual,
                              corrected_to=target if written else None)  # fmt: skip
            if written:
                metrics.RECONCILER_CORRECTIONS.labels(server.status, target).inc()
                log.warning("reconciler: %s", finding.describe())
            findings.append(finding)
        return findings

    def _stranger(self, label: str, name: str, state: MachineState) -> Finding:
        finding = Finding(label, name, None, None, state)
        if (label, name) not in self._reported:
            self._reported.add((label, name))
            log.warning("reconciler: %s; left alone", finding.describe())
        return finding

    async def _correct(self, server: _Known, target: ServerStatus) -> bool:
        async with transaction(self.sessions) as session:
            return await servers.transition(
                session, server.server_id, [server.status], target,
                unchanged_since=server.updated_at,
            )  # fmt: skip
