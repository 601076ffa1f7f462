"""A real MemberLab server and a real headless Chromium, for the tests of pages.

The server runs for real (uvicorn on a free port, a SQLite file migrated like a client's,
the teahouse program and the sample surveys active); the browser is Debian's ``chromium``
driven by its ``chromedriver`` through Selenium. Without them the tests are skipped, unless
``MEMBERLAB_REQUIRE_BROWSER`` is set (CI sets it): then a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from experience_setup import sample_survey
from factories import TenantWithKeys, make_tenant
from memberlab.api import create_app
from memberlab.core import migrate
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.settings import Settings
from memberlab.datasets.demo import sample_program_text

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_or_skip() -> tuple[str, str]:
    if CHROMIUM and CHROMEDRIVER:
        return CHROMIUM, CHROMEDRIVER
    reason = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("MEMBERLAB_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    url: str
    state: AppState
    tenant: TenantWithKeys

    def api(self, method: str, path: str, role: Role = Role.ADMIN, **kwargs):
        headers = {**self.tenant.headers(role), **kwargs.pop("headers", {})}
        response = httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()


def site_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _browser_or_skip()
    port = _free_port()
    folder: Path = tmp_path_factory.mktemp("site")
    settings = Settings(data_dir=folder, language="zh-CN", port=port)
    state = AppState.from_settings(settings)
    migrate.upgrade(state.database.engine)
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    tenant = make_tenant(state, slug="tea")
    site = Site(f"http://127.0.0.1:{port}", state, tenant)
    version = site.api("POST", "/programs", content=sample_program_text("teahouse"))
    site.api(
        "POST",
        f"/programs/{version['version']['id']}/activate",
        json={"effective_from": "2025-01-01T00:00:00+08:00"},
    )
    for survey in ("after_purchase", "after_case"):
        site.api("POST", "/experience/surveys", json=sample_survey(survey))
        site.api("POST", f"/experience/surveys/{survey}/status", json={"status": "active"})
    try:
        yield site
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        state.database.engine.dispose()


def browser_fixture() -> Iterator[object]:
    chromium, chromedriver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=390,844", "--lang=zh-CN"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def page_wait(driver, timeout: float = 10):
    """A wait for pages that redraw their tables from the API: an element found
    a moment before a redraw goes stale, so the condition is simply tried again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def submit_and_wait(driver) -> None:
    """Send the page's form and wait until the browser shows the next document.

    A mark is set on the old page's window; the new document has none. (Waiting
    for the old elements to go stale races with Chromium's navigation and can
    fail with "Node with given id does not belong to the document".)"""
    from selenium.webdriver.common.by import By

    driver.execute_script("window.memberlabOldPage = true")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page_wait(driver).until(
        lambda d: d.execute_script(
            "return window.memberlabOldPage === undefined && document.readyState === 'complete'"
        )
    )
