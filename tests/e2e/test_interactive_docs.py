"""/api/v1/docs in a real browser: offline, every operation rendered, Authorize + Try it out.

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/ensure-chromium). Without them
the test skips, saying why; with ``VPSORG_REQUIRE_BROWSER`` set (CI: .ci/run) it fails
(the ``browser`` fixture, tests/e2e/conftest.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.processes import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT = 30


def test_docs_work_offline_and_try_it_out_lists_servers(
    deployment: Deployment, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, TIMEOUT)
    browser.get(f"{deployment.base_url}/api/v1/docs")

    # Every operation of the document is rendered, under its operationId.
    wait.until(ready.presence_of_element_located((By.ID, "operations-servers-list_servers")))
    document = deployment.client.get("/api/v1/openapi.json").json()
    for item in document["paths"].values():
        for operation in item.values():
            element_id = f"operations-{operation['tags'][0]}-{operation['operationId']}"
            assert browser.find_elements(By.ID, element_id), element_id

    # Authorize with the token.
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    modal = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
    modal.find_element(By.CSS_SELECTOR, ".auth-container input").send_keys(deployment.user.token)
    modal.find_element(By.CSS_SELECTOR, "button.authorize").click()
    modal.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    # Try it out: GET /api/v1/servers/ answers 200.
    operation = browser.find_element(By.ID, "operations-servers-list_servers")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, ".execute"))
    operation.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(
        lambda _: operation.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        )
    )
    assert status[0].text.strip() == "200", operation.text
    assert '"count": 0' in operation.find_element(By.CSS_SELECTOR, ".live-responses-table").text

    # Nothing left 127.0.0.1, and nothing failed to load.
    urls = browser.execute_script(
        "return performance.getEntries().map(e => e.name).filter(n => n.includes('://'))"
    )
    assert urls, "the browser recorded no requests"
    for url in urls:
        assert urlsplit(url).hostname == "127.0.0.1", url
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
