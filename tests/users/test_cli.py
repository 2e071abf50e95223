"""`vpsorg users`, run as an operator runs it: passwords from stdin, output, audit events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.processes import Installation

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

PASSWORD = "correct horse battery\n"


@pytest.fixture
def installation(databases: DatabaseProvider, tmp_path: Path) -> Iterator[Installation]:
    installation = Installation(databases.fresh(tmp_path), tmp_path)
    yield installation
    installation.stop_all()


def test_create_list_disable_and_set_password(installation: Installation) -> None:
    account_id = installation.run("accounts", "create", "alice").stdout.strip()

    created = installation.run("users", "create", account_id, "Ana@Example.com", stdin=PASSWORD)
    assert created.stdout.strip().isdigit()
    listed = json.loads(installation.run("users", "list", "--json").stdout)
    assert [(u["email"], u["account_id"], u["disabled"]) for u in listed] == [
        ("ana@example.com", int(account_id), False)
    ]
    table = installation.run("users", "list").stdout
    assert "EMAIL" in table and "ana@example.com" in table

    installation.run("users", "set-password", "ana@example.com", stdin="another passphrase\n")
    installation.run("users", "disable", "ANA@example.com")
    listed = json.loads(installation.run("users", "list", "--json").stdout)
    assert listed[0]["disabled"] is True

    audit = installation.run("audit", "--json").stdout
    for command in ("users create", "users set-password", "users disable"):
        assert command in audit, command
    assert "correct horse" not in audit and "another passphrase" not in audit


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "create", "999", "a@example.com"), PASSWORD, "Account 999 not found"),
        (("users", "create", "ACCOUNT", "a@example.com"), "short\n", "at least 10 characters"),
        (("users", "create", "ACCOUNT", "not-an-email"), PASSWORD, "Not an email address"),
        (("users", "disable", "nobody@example.com"), None, "No user with the email"),
        (("users", "set-password", "nobody@example.com"), PASSWORD, "No user with the email"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    installation: Installation, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    account_id = installation.run("accounts", "create", "alice").stdout.strip()
    args = tuple(account_id if a == "ACCOUNT" else a for a in args)

    result = installation.run(*args, stdin=stdin, check=False)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(installation.run("users", "list", "--json").stdout) == []


def test_an_email_is_used_once(installation: Installation) -> None:
    account_id = installation.run("accounts", "create", "alice").stdout.strip()
    installation.run("users", "create", account_id, "ana@example.com", stdin=PASSWORD)

    again = installation.run(
        "users", "create", account_id, "ANA@example.com", stdin=PASSWORD, check=False
    )

    assert again.returncode == 1
    assert "exists" in again.stderr
