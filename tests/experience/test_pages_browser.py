"""The public survey page and the case list in a real headless Chromium (see
``tests/browser_site.py``)."""

from __future__ import annotations

import httpx
import pytest

from browser_site import Site, browser_fixture, page_wait, site_fixture, submit_and_wait
from experience_setup import GOOD_ANSWER
from memberlab.core.access import Role

pytestmark = pytest.mark.browser

site = pytest.fixture(scope="module")(site_fixture)
browser = pytest.fixture(scope="module")(browser_fixture)
SCRIPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


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
    submit_and_wait(browser)
    assert browser.find_element(By.ID, "e-nps").text == "请回答此题。"
    for question in ("nps", "csat", "ces", "speed", "quality"):
        _pick(browser, question, {"nps": "2"}.get(question, "3"))
    browser.find_element(By.CSS_SELECTOR, 'textarea[name="comment"]').send_keys(SCRIPT)
    submit_and_wait(browser)

    assert browser.find_element(By.TAG_NAME, "h1").text == "感谢您的反馈！"
    assert browser.execute_script("return window.pwned") is None
    browser.get(url)  # one answer per link
    assert browser.find_element(By.TAG_NAME, "h1").text == "已作答"


def test_the_case_list_shows_overdue_cases_and_closes_one(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    url = _member_with_link(site, "B-2")
    httpx.post(url, data={**GOOD_ANSWER, "nps": "1", "comment": SCRIPT}).raise_for_status()
    browser.get(f"{site.url}/app/cases?lang=en")
    browser.find_element(By.ID, "key").send_keys(site.tenant.keys[Role.OPERATOR])
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait = page_wait(browser)
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
    row = wait.until(lambda d: next((r for r in d.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
                                     if SCRIPT in r.text), None))  # fmt: skip
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
