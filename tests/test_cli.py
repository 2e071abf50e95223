"""The ``vpsorg`` command, run as an operator runs it: a child process, its output and exit code."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.processes import Installation

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider
    from vpsorg.config import Settings

TOKEN = re.compile(r"^vps_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def installation(databases: DatabaseProvider, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation(databases.fresh(tmp_path), tmp_path)
    yield installation
    installation.stop_all()


def test_accounts_create_prints_the_new_id(installation: Installation) -> None:
    first = installation.run("accounts", "create", "alice", "--credits", "100")
    second = installation.run("accounts", "create", "bob")

    assert re.fullmatch(r"\d+\n", first.stdout), first.stdout
    assert re.fullmatch(r"\d+\n", second.stdout), second.stdout
    assert int(second.stdout) != int(first.stdout)


def test_tokens_create_prints_only_the_token(installation: Installation) -> None:
    account_id = installation.run("accounts", "create", "alice").stdout.strip()

    result = installation.run("tokens", "create", account_id, "--name", "laptop")

    assert TOKEN.match(result.stdout.removesuffix("\n")), repr(result.stdout)
    assert result.stdout.count("\n") == 1


def test_tokens_create_for_a_missing_account_fails(installation: Installation) -> None:
    result = installation.run("tokens", "create", "999", check=False)

    assert result.returncode != 0
    assert result.stdout == ""
    assert "account 999 not found" in result.stderr


def test_accounts_credit_prints_the_new_balance(installation: Installation) -> None:
    account_id = installation.run("accounts", "create", "alice", "--credits", "100").stdout.strip()

    result = installation.run("accounts", "credit", account_id, "5")
    missing = installation.run("accounts", "credit", "999", "5", check=False)

    corrected = installation.run("accounts", "credit", account_id, "-5.5")

    assert float(result.stdout) == 105.0
    assert float(corrected.stdout) == 99.5
    assert missing.returncode != 0
    assert missing.stdout == ""
    assert "999" in missing.stderr


async def test_revoked_token_gets_401(settings: Settings, client: httpx.AsyncClient) -> None:
    installation = Installation(settings.database_url, settings.simulator_state_dir.parent)
    account_id = (await run(installation, "accounts", "create", "alice")).stdout.strip()
    token = (await run(installation, "tokens", "create", account_id)).stdout.strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert (await client.get("/api/v1/servers/", headers=headers)).status_code == 200

    revoked = await run(installation, "tokens", "revoke", stdin=token + "\n")
    again = await run(installation, "tokens", "revoke", stdin=token + "\n", check=False)

    response = await client.get("/api/v1/servers/", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert revoked.returncode == 0
    assert again.returncode != 0 and "no live token" in again.stderr


async def run(
    installation: Installation, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI off the event loop: the app under test shares the database and the loop."""
    return await asyncio.to_thread(installation.run, *args, check=check, stdin=stdin)


def test_simulator_fail_rejects_an_unknown_operation(installation: Installation) -> None:
    result = installation.run("simulator", "fail", "bogus", check=False)

    assert result.returncode == 2
    assert "bogus" in result.stderr


def test_invalid_configuration_exits_2(installation: Installation) -> None:
    installation.env["VPSORG_SIMULATOR_DELAY"] = "-1"

    result = installation.run("accounts", "create", "alice", check=False)

    assert result.returncode == 2
    assert "simulator_delay" in result.stderr


@pytest.mark.e2e
def test_first_serve_with_demo_prints_a_working_demo_curl_line(
    installation: Installation,
) -> None:
    process = installation.serve("--demo")
    log = process.log()
    [line] = [line.strip() for line in log.splitlines() if line.strip().startswith("curl ")]
    [token] = re.findall(r"vps_[A-Za-z0-9_-]{43}", log.split("Try it:")[0])

    args = shlex.split(line)
    url = next(arg for arg in args if arg.startswith("http://"))
    headers = dict(args[n + 1].split(": ", 1) for n, arg in enumerate(args) if arg == "-H")
    response = httpx.get(url, headers=headers, trust_env=False)

    assert url == f"{process.base_url}/api/v1/servers/", log
    assert headers["Authorization"] == f"Bearer {token}", log
    assert response.status_code == 200, f"{response.text}\n{process.log()}"
    assert response.json()["count"] == 0

    process.terminate()
    second = installation.serve("--demo")
    installation.stop_all()
    assert "demo" not in second.log(), "a second start must not create another demo account"


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "credits"), [((), "100"), (("--demo",), "0")])
def test_serve_makes_no_account_unless_asked_for_a_demo_with_credits(
    installation: Installation, args: tuple[str, ...], credits: str
) -> None:
    installation.env["VPSORG_DEMO_CREDITS"] = credits
    process = installation.serve(*args)
    installation.stop_all()

    assert "vps_" not in process.log(), "no token may reach the logs"
    listed = installation.run("accounts", "show", "1", check=False)
    assert listed.returncode == 1 and "not found" in listed.stderr


def test_version(installation: Installation) -> None:
    result = installation.run("--version")

    assert re.fullmatch(r"vpsorg \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("accounts", "list"),
        ("plans", "list"),
        ("os", "list"),
        ("accounts", "create", "x"),
        ("tokens", "list", "1"),
        ("hosts", "list"),
        ("hosts", "audit"),
    ],
)
def test_an_unmigrated_database_is_named_in_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "nowhere" / "vpsorg.db"
    empty = tmp_path / "empty.db"
    empty.touch()

    results = [
        Installation(f"sqlite:///{path}", tmp_path).run(*args, check=False)
        for path in (missing, empty)
    ]

    for result in results:
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and "vpsorg db upgrade" in result.stderr
    assert not missing.exists() and not (tmp_path / "vpsorg.db").exists()


def test_list_and_show_print_json(installation: Installation) -> None:
    user = installation.create_user("alice", credits=12.5)

    accounts = json.loads(installation.run("accounts", "list", "--json").stdout)
    shown = json.loads(installation.run("accounts", "show", str(user.account_id), "--json").stdout)
    tokens = json.loads(installation.run("tokens", "list", str(user.account_id), "--json").stdout)
    events = json.loads(installation.run("audit", "--json").stdout)
    table = installation.run("accounts", "list").stdout.splitlines()

    assert [(a["id"], a["name"], a["balance"], a["servers"]) for a in accounts] == [
        (user.account_id, "alice", 12.5, 0)
    ]
    assert shown["balance"] == 12.5 and shown["ledger"][0]["kind"] == "topup"
    assert [t["scope"] for t in tokens] == ["write"] and user.token[:8] in tokens[0]["prefix"]
    assert {"id", "created_at", "actor", "path", "outcome"} <= set(events[0])
    assert table[0].split()[:3] == ["ID", "NAME", "BALANCE"]
    assert table[1].split()[:3] == [str(user.account_id), "alice", "12.5"]


def test_unknown_ids_get_one_line_and_no_traceback(installation: Installation) -> None:
    for args in (
        ("accounts", "show", "999"),
        ("tokens", "list", "999"),
        ("accounts", "suspend", "999", "--reason", "x"),
        ("os", "remove", "999"),
    ):
        result = installation.run(*args, check=False)
        assert result.returncode == 1, args
        assert result.stderr.count("\n") == 1 and "999" in result.stderr, (args, result.stderr)
