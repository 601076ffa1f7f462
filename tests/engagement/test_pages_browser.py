"""The engagement page in a real headless Chromium (see ``tests/browser_site.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from browser_site import Site, browser_fixture, site_fixture
from memberlab.core.access import Role

pytestmark = pytest.mark.browser
site = pytest.fixture(scope="module")(site_fixture)
browser = pytest.fixture(scope="module")(browser_fixture)
ENGAGEMENT_SAMPLE = (
    Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
)


def test_the_engagement_page_shows_payments_deliverables_and_breaches(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    terms = json.loads(
        json.dumps(yaml.safe_load(ENGAGEMENT_SAMPLE.read_text(encoding="utf-8")), default=str)
    )
    site.api("POST", "/engagements", json=terms)
    number = terms["contract_number"]
    record = {"kind": "signed", "on": "2026-01-05", "payload": {}}
    site.api("POST", f"/engagements/{number}/events", json=record)
    browser.get(f"{site.url}/app/engagements")  # the server's language: zh-CN
    browser.find_element(By.ID, "key").clear()
    browser.find_element(By.ID, "key").send_keys(site.tenant.keys[Role.ADMIN])
    # typed date formats differ by locale: set the value the field submits
    browser.execute_script("document.getElementById('as-of').value = '2026-02-20'")
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#instalments tbody tr"))

    first = browser.find_elements(By.CSS_SELECTOR, "#instalments tbody tr")[0].text
    assert first.split()[:2] == ["advance", "2026-01-12"]
    assert "已逾期" in first  # no payment by 20 February
    breaches = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#breaches li")]
    assert any("needs_questionnaire" in b for b in breaches)
    assert "乙方应付违约金" in browser.find_element(By.ID, "owed").text
