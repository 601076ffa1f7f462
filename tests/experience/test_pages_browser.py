"""The public survey page and the case list in a real headless Chromium.

The server runs for real (uvicorn on a free port, a SQLite file migrated like a client's);
the browser is Debian's ``chromium`` driven by its ``chromedriver`` through Selenium. Without
them the tests are skipped, unless ``MEMBERLAB_REQUIRE_BROWSER`` is set (CI sets it): then
a missing browser fails the run.
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

from experience_setup import GOOD_ANSWER, sample_survey
from factories import TenantWithKeys, make_tenant
from memberlab.api import create_app
from memberlab.core import migrate
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.settings import Settings
from memberlab.datasets.demo import sample_program_text

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCRIPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
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


def _member_with_link(site: Site, member: str) -> str:
    site.api(
        "POST",
        "/purchases",
        json={
            "member_id": member,
            "order_id": f"O-{member}",
            "occurred_at": "2026-11-20T10:00:00+08:00",
            "channel": "store",
            "lines": [{"sku": "latte", "category": "coffee", "amount": "38.00"}],
        },
    )
    link = site.api(
        "POST",
        "/experience/surveys/after_purchase/invitations",
        json={"member_id": member, "touchpoint": "store"},
        headers={"Idempotency-Key": f"browser-{member}"},
    )
    return link["url"]


def _pick(driver, question: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.CSS_SELECTOR, f'input[name="{question}"][value="{value}"]')
    field.find_element(By.XPATH, "..").click()  # the label: what a thumb taps


def test_a_member_answers_on_a_phone_and_the_script_stays_text(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By

    url = _member_with_link(site, "B-1")
    browser.get(url)

    assert browser.find_element(By.TAG_NAME, "h1").text == "消费体验调查"
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth")  # no sideways scrolling
    # sending nothing: every required question says so, in Chinese
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert browser.find_element(By.ID, "e-nps").text == "请回答此题。"
    for question in ("nps", "csat", "ces", "speed", "quality"):
        _pick(browser, question, {"nps": "2"}.get(question, "3"))
    browser.find_element(By.CSS_SELECTOR, 'textarea[name="comment"]').send_keys(SCRIPT)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    assert browser.find_element(By.TAG_NAME, "h1").text == "感谢您的反馈！"
    assert browser.execute_script("return window.pwned") is None
    browser.get(url)  # one answer per link
    assert browser.find_element(By.TAG_NAME, "h1").text == "已作答"


def test_the_case_list_shows_overdue_cases_and_closes_one(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    url = _member_with_link(site, "B-2")
    httpx.post(url, data={**GOOD_ANSWER, "nps": "1", "comment": SCRIPT}).raise_for_status()
    browser.get(f"{site.url}/app/cases?lang=en")
    browser.find_element(By.ID, "key").send_keys(site.tenant.keys[Role.OPERATOR])
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait = WebDriverWait(browser, 10)
    wait.until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#cases tr[data-case]"))
    )

    rows = browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
    comments = [row.find_elements(By.TAG_NAME, "td")[4].text for row in rows]
    assert SCRIPT in comments  # shown as the text the member typed
    assert browser.execute_script("return window.pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr.overdue") == []
    browser.find_element(By.ID, "overdue").click()  # nothing is overdue yet
    wait.until(lambda d: d.find_element(By.ID, "summary").text.startswith("0 cases"))

    browser.find_element(By.ID, "overdue").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cases form.close"))
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
               if SCRIPT in r.text)  # fmt: skip
    case_id = row.get_attribute("data-case")
    row.find_element(By.NAME, "resolution").send_keys("Called and apologised")
    row.find_element(By.CSS_SELECTOR, "form.close button").click()
    wait.until(
        lambda d: (
            "Called and apologised"
            in d.find_element(By.CSS_SELECTOR, f'tr[data-case="{case_id}"]').text
        )
    )
    case = site.api("GET", f"/experience/cases/{case_id}", role=Role.OPERATOR)
    assert (case["status"], case["resolution"]) == ("closed", "Called and apologised")
