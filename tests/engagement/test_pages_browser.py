"""The engagement page in a real headless Chromium (see ``tests/browser_site.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from browser_site import Site, browser_fixture, page_wait, site_fixture, submit_and_wait
from memberlab.core.access import Role

pytestmark = pytest.mark.browser
site = pytest.fixture(scope="module")(site_fixture)
browser = pytest.fixture(scope="module")(browser_fixture)
ENGAGEMENT_SAMPLE = (
    Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
)


def test_the_engagement_page_shows_payments_deliverables_and_breaches(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By

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
    wait = page_wait(browser)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#instalments tbody tr"))

    first = browser.find_elements(By.CSS_SELECTOR, "#instalments tbody tr")[0].text
    assert first.split()[:2] == ["advance", "2026-01-12"]
    assert "已逾期" in first  # no payment by 20 February
    breaches = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#breaches li")]
    assert any("needs_questionnaire" in b for b in breaches)
    assert "乙方应付违约金" in browser.find_element(By.ID, "owed").text


SCRIPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def _tick(driver, question: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.CSS_SELECTOR, f'input[name="{question}"][value="{value}"]')
    field.find_element(By.XPATH, "..").click()  # the label: what a thumb taps


def test_the_client_answers_the_questionnaire_on_a_phone_once(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    terms = json.loads(
        json.dumps(yaml.safe_load(ENGAGEMENT_SAMPLE.read_text(encoding="utf-8")), default=str)
    )
    terms["contract_number"] = "ML-2026-Q"
    site.api("POST", "/engagements", json=terms)
    made = site.api("POST", "/engagements/ML-2026-Q/questionnaire/link", json={})
    url = site.url + made["url"][made["url"].index("/q/") :]

    browser.get(url)  # the tenant's language: zh-CN
    assert browser.find_element(By.TAG_NAME, "h1").text == "会员项目需求调查表"
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth")  # no sideways scrolling
    # sending nothing: every required question says so, and nothing is stored
    submit_and_wait(browser)
    assert browser.find_element(By.ID, "e-company_name").text == "请回答此题。"
    assert browser.find_element(By.ID, "e-member_count").text == "请回答此题。"

    for name, text in (("company_name", "茶语咖啡（上海）有限公司"), ("brands", "茶语"),
                       ("store_count", "128"), ("member_count", "很多"),
                       ("pain_points", SCRIPT), ("contact_name", "李娜"),
                       ("contact_phone", "13800001111")):  # fmt: skip
        browser.find_element(By.NAME, name).send_keys(text)
    for name, value in (("industry", "food_beverage"), ("channels", "own_stores"),
                        ("channels", "mini_program"), ("current_program", "points"),
                        ("goals", "repeat"), ("budget", "undecided"),
                        ("data_available", "members")):  # fmt: skip
        _tick(browser, name, value)
    submit_and_wait(browser)
    # a bad number is named; what was typed and ticked is kept
    assert browser.find_element(By.ID, "e-member_count").text == "很多 不是数字。"
    assert (
        browser.find_element(By.NAME, "company_name").get_attribute("value")
        == "茶语咖啡（上海）有限公司"
    )
    assert browser.find_element(By.CSS_SELECTOR, 'input[value="mini_program"]').is_selected()
    field = browser.find_element(By.NAME, "member_count")
    field.clear()
    field.send_keys("35万")
    submit_and_wait(browser)

    assert browser.find_element(By.TAG_NAME, "h1").text == "感谢您的填写！"
    assert browser.execute_script("return window.pwned") is None
    browser.get(url)  # one answer per link
    assert browser.find_element(By.TAG_NAME, "h1").text == "已提交"

    # the consultant reads the answers on the engagement page, the script shown as text
    browser.get(f"{site.url}/app/engagements?lang=en")
    browser.find_element(By.ID, "key").clear()
    browser.find_element(By.ID, "key").send_keys(site.tenant.keys[Role.ADMIN])
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait = page_wait(browser)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#number option[value="ML-2026-Q"]'))
    Select(browser.find_element(By.ID, "number")).select_by_value("ML-2026-Q")
    wait.until(lambda d: "李娜" in d.find_element(By.ID, "answered").text)
    rows = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "#answers tbody tr")
    }
    assert rows["Members today (an estimate is fine)"] == "350000 members"
    assert rows["The biggest problems in your member operations and customer experience today"] == (
        SCRIPT
    )
    assert browser.execute_script("return window.pwned") is None
    assert "through the link" in browser.find_element(By.ID, "answered").text
