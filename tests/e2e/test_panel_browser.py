"""The web panel in a real browser, against a real ``vpsorg serve``: log in, create a server
and watch it become active without a reload, stop it, add an SSH key, create and revoke a
token, log out; a wrong password, a POST without the CSRF token and another account's server
are refused. Screenshots of the main pages go to docs/panel-*.png (the README shows one).

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/ensure-chromium). Without them
the test skips, saying why; with ``VPSORG_REQUIRE_BROWSER`` set (CI: .ci/run) it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.processes import Installation, MakeInstallation
from tests.factories import ED25519, SERVER

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT = 30
DOCS = Path(__file__).resolve().parents[2] / "docs"
EMAIL = "ana@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def served(installations: MakeInstallation) -> Iterator[tuple[Installation, str]]:
    # Builds take a few seconds, so the page shows the status changing by itself.
    installation = installations(simulator_delay=1.5)
    account = installation.run("accounts", "create", "Ana's shop", "--credits", "250").stdout
    installation.run("users", "create", account.strip(), EMAIL, stdin=PASSWORD + "\n")
    process = installation.serve()
    yield installation, process.base_url


def test_the_panel_in_a_browser(served: tuple[Installation, str], browser: Any) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    installation, base_url = served
    wait = WebDriverWait(browser, TIMEOUT)

    def find(css: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, css)

    def fill(field_id: str, value: str) -> None:
        element = browser.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)

    def submit(css: str) -> None:
        # A form post loads a new page: wait for the old one to go (its readyState is
        # "complete" until then, so waiting on that alone can read the old page's URL).
        page = find("html")
        find(css).click()
        wait.until(lambda _: gone(page))
        wait.until(lambda _: browser.execute_script("return document.readyState") == "complete")

    def gone(element: Any) -> bool:
        """Whether ``element``'s page has gone. Mid-navigation chromedriver may say so in
        words of its own rather than as a stale element (seen under load in CI)."""
        try:
            element.tag_name  # noqa: B018
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            return "does not belong to the document" in str(error)
        return False

    def shot(name: str) -> None:
        DOCS.mkdir(exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(DOCS / f"panel-{name}.png"))

    # Not logged in: the panel sends us to the login. A wrong password is refused.
    browser.get(f"{base_url}/")
    wait.until(lambda _: urlsplit(browser.current_url).path == "/login")
    fill("email", EMAIL)
    fill("password", "not my password")
    submit("main button[type=submit]")
    assert "Wrong email or password." in find("#password-error").text
    fill("password", PASSWORD)
    submit("main button[type=submit]")
    assert urlsplit(browser.current_url).path == "/"
    assert "No servers yet" in find("main").text

    # An SSH key for the server.
    browser.get(f"{base_url}/ssh-keys")
    fill("name", "laptop")
    fill("public_key", ED25519)
    submit("main form[action='/ssh-keys'] button")
    assert "SSH key added." in find(".notice").text

    # Create a server through the form, and watch it become active with no reload.
    browser.get(f"{base_url}/servers/new")
    fill("name", "shop-web-1")
    fill("hostname", "web1.shop.example")
    find("#ssh_key_id option:nth-child(2)").click()
    find("#backups_enabled").click()
    shot("create")
    submit("form[action='/servers/new'] button[type=submit]")
    assert urlsplit(browser.current_url).path.startswith("/servers/")
    server_id = int(urlsplit(browser.current_url).path.split("/")[2])
    browser.get(f"{base_url}/")
    browser.execute_script("window.notReloaded = true")
    badge = find(f'[data-server-status="{server_id}"]')
    assert badge.text == "provisioning"
    wait.until(lambda _: badge.text == "active")
    assert browser.execute_script("return window.notReloaded === true"), "the page reloaded"
    assert find(f'[data-server-ip="{server_id}"]').text != "—"
    shot("servers")

    # Stop it from its page; the status and the buttons follow by themselves.
    browser.get(f"{base_url}/servers/{server_id}")
    submit(f"form[action='/servers/{server_id}/power/stop'] button")
    browser.execute_script("window.notReloaded = true")
    wait.until(lambda _: find(f'[data-server-status="{server_id}"]').text == "stopped")
    wait.until(
        lambda _: find(f"form[action='/servers/{server_id}/power/start'] button").is_enabled()
    )
    assert browser.execute_script("return window.notReloaded === true")
    shot("server")

    # A token, shown once, then revoked.
    browser.get(f"{base_url}/tokens")
    fill("name", "ci")
    submit("form[action='/tokens'] button[type=submit]")
    token = find("#new-token").get_attribute("value")
    assert token.startswith("vps_")
    with httpx.Client(base_url=base_url, trust_env=False) as api:
        bearer = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/v1/servers/", headers=bearer).json()["count"] == 1
        browser.get(f"{base_url}/tokens")
        assert token not in browser.page_source
        submit("form[action^='/tokens/'][action$='/revoke'] button")
        assert "Token revoked." in find(".notice").text
        assert api.get("/api/v1/servers/", headers=bearer).status_code == 401

    browser.get(f"{base_url}/account")
    assert "Burn rate" in find("main").text
    shot("account")

    # A POST without the CSRF token is refused, and changes nothing.
    browser.execute_script(
        """
        const form = document.createElement("form");
        form.method = "post";
        form.action = arguments[0];
        document.body.appendChild(form);
        form.submit();
        """,
        f"/servers/{server_id}/delete",
    )
    wait.until(lambda _: "This form was refused" in browser.page_source)
    browser.get(f"{base_url}/servers/{server_id}")
    assert "shop-web-1" in find("h1").text

    # Another account's server is not there for us.
    other = installation.create_user("someone else")
    with httpx.Client(base_url=base_url, trust_env=False) as api:
        theirs = api.post("/api/v1/servers/", json=SERVER, headers=other.headers).json()
    browser.get(f"{base_url}/servers/{theirs['id']}")
    assert "Not found" in find("h1").text

    # At a phone's width the list still reads.
    browser.set_window_size(390, 844)
    browser.get(f"{base_url}/")
    shot("phone")
    browser.set_window_size(1400, 1000)

    # Log out: the panel is closed again.
    browser.get(f"{base_url}/")
    submit("form.logout button")
    assert urlsplit(browser.current_url).path == "/login"
    browser.get(f"{base_url}/account")
    assert urlsplit(browser.current_url).path == "/login"

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # The refused POSTs (403, 404) are logged as failed loads; nothing else may be.
    assert all(" 40" in e["message"] for e in errors), errors
