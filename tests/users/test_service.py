"""Users and sessions below HTTP: hashes, authentication, what ends a session."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.factories import Factory
from vpsorg.db import transaction
from vpsorg.users import passwords
from vpsorg.users import service as users


async def test_passwords_are_stored_as_argon2id_hashes(app: FastAPI, factory: Factory) -> None:
    account = await factory.account()
    async with transaction(app.state.runtime.sessions) as session:
        user = await users.create_user(
            session, account.account_id, " Ana@Example.COM ", "a long passphrase"
        )

    assert user.email == "ana@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long passphrase" not in user.password_hash
    assert passwords.verify_password(user.password_hash, "a long passphrase")
    assert not passwords.verify_password(user.password_hash, "a long passphrasE")
    assert not passwords.verify_password("not a hash", "a long passphrase")


async def test_authenticate_refuses_wrong_passwords_and_disabled_users(
    app: FastAPI, factory: Factory
) -> None:
    account = await factory.account()
    sessions = app.state.runtime.sessions
    async with transaction(sessions) as session:
        await users.create_user(session, account.account_id, "ana@example.com", "a long passphrase")

    async with transaction(sessions) as session:
        assert await users.authenticate(session, "ANA@example.com", "a long passphrase")
        assert await users.authenticate(session, "ana@example.com", "wrong one") is None
        assert await users.authenticate(session, "bo@example.com", "a long passphrase") is None
        await users.disable_user(session, "ana@example.com")
    async with transaction(sessions) as session:
        assert await users.authenticate(session, "ana@example.com", "a long passphrase") is None


async def test_a_session_is_found_by_its_cookie_until_reset_or_disable(
    app: FastAPI, factory: Factory
) -> None:
    account = await factory.account()
    sessions = app.state.runtime.sessions
    settings: Any = app.state.settings
    async with transaction(sessions) as session:
        user = await users.create_user(
            session, account.account_id, "ana@example.com", "a long passphrase"
        )
        raw = await users.start_session(session, user, settings)
    async with transaction(sessions) as session:
        live = await users.find_session(session, raw)
        assert live is not None and live.user.email == "ana@example.com"
        assert live.account.id == account.account_id
        assert await users.find_session(session, raw + "x") is None
        assert await users.find_session(session, "") is None
        await users.set_password(session, "ana@example.com", "a new passphrase")
    async with transaction(sessions) as session:
        assert await users.find_session(session, raw) is None
