"""The panel through HTTP, as a browser uses it: forms with their tokens, a cookie jar."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.factories import Factory
from tests.factories import User as ApiUser
from vpsorg.config import Settings
from vpsorg.db import transaction
from vpsorg.runtime import Runtime
from vpsorg.users import service as users

if TYPE_CHECKING:
    from tests.conftest import DatabaseProvider

PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "panel(**settings): the app's settings for a panel test")


@pytest.fixture
def settings(
    databases: DatabaseProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    marker = request.node.get_closest_marker("panel")
    return make_settings(databases.fresh(tmp_path), tmp_path, **(marker.kwargs if marker else {}))


@dataclass
class PanelUser:
    api: ApiUser
    """The same account's API token, to check what the panel did through the API."""
    email: str
    password: str
    user_id: int

    @property
    def account_id(self) -> int:
        return self.api.account_id


async def make_user(
    runtime: Runtime, factory: Factory, email: str = "ana@example.com", credits: float = 100
) -> PanelUser:
    api = await factory.account(credits=credits)
    async with transaction(runtime.sessions) as session:
        user = await users.create_user(session, api.account_id, email, PASSWORD)
    return PanelUser(api, email, PASSWORD, user.id)


@pytest.fixture
async def panel_user(app: Any, factory: Factory) -> PanelUser:
    return await make_user(app.state.runtime, factory)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to ``action`` (its tokens)."""
    for form in re.findall(r"<form\b[^>]*>.*?</form>", page, re.S):
        if f'action="{action}"' in form:
            hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
            return {name: html.unescape(value) for name, value in hidden}
    raise AssertionError(f"no form posts to {action}")


async def submit(
    client: httpx.AsyncClient, page_path: str, action: str, **fields: Any
) -> httpx.Response:
    """Open the page, fill the form that posts to ``action``, send it (no redirects followed)."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    data = {**form_fields(page.text, action), **fields}
    return await client.post(action, data=data)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await submit(client, "/login", "/login", email=email, password=password)


@pytest.fixture
async def logged_in(client: httpx.AsyncClient, panel_user: PanelUser) -> httpx.AsyncClient:
    response = await login(client, panel_user.email, panel_user.password)
    assert response.status_code == 303, response.text
    return client
