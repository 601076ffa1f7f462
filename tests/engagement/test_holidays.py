"""A tenant's own holiday table: stored with its source and date, checked like the built-in
table (every problem with its line), used by every due date of the tenant's engagements,
and named by them (the calendar's version and a note with the override's source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from cli_runner import Cli, running_cli
from factories import TenantWithKeys, make_tenant
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.engagement.models import CalendarOverride

API = "/api/v1/engagements"
HOLIDAYS = f"{API}/calendar/holidays"
SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
TERMS: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
)
NUMBER = TERMS["contract_number"]
SOURCE = "茶语公司 2026 年度休假制度（人事部通知 2025-12-20）"

# The client's company closes on Thursday 8 January 2026 for its anniversary, and has the
# 2027 schedule it expects (not yet published by the State Council).
OVERRIDE = """\
label: chayu-2026
compiled: 2025-12-20
years:
  2026:
    rest_days: [2026-01-08]
  2027:
    published: false
    holidays:
      - {name: spring_festival, first: 2027-02-06, last: 2027-02-13}
"""
# a date that does not exist, on line 8
BROKEN = """\
label: chayu-2027
years:
  2027:
    published: true
    notices:
      - {title: 国务院办公厅关于2027年部分节假日安排的通知, date: 2026-11-10}
    holidays:
      - {name: spring_festival, first: 2027-02-30, last: 2027-02-12}
"""


@pytest.fixture
def firm(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="firm")
    assert client.post(API, json=TERMS, headers=tenant.headers()).status_code == 201
    signed = {"kind": "signed", "on": "2026-01-05", "payload": {}}
    assert client.post(f"{API}/{NUMBER}/events", json=signed, headers=tenant.headers()).is_success
    return tenant


def advance(client: TestClient, firm: TenantWithKeys, lang: str = "en") -> dict[str, Any]:
    found = client.get(f"{API}/{NUMBER}/status", params={"as_of": "2026-01-31"},
                       headers=firm.headers(lang=lang)).json()  # fmt: skip
    return {"calendar": found["calendar"], **found["instalments"][0]}


def test_an_override_moves_the_due_dates_and_says_so(
    client: TestClient, firm: TenantWithKeys
) -> None:
    # built-in table: signed Monday 5 January, due 5 working days later, Monday 12 January
    before = advance(client, firm)
    assert (before["due"], before["due_calendar_version"]) == ("2026-01-12", "cn-holidays 2026.1")
    assert before["calendar"] == {"version": "cn-holidays 2026.1", "override": None}

    upload = {"text": OVERRIDE, "source": SOURCE, "file_name": "chayu.yaml"}
    stored = client.put(HOLIDAYS, json=upload, headers=firm.headers())
    assert stored.status_code == 200, stored.text
    view = stored.json()
    assert view["calendar_version"].startswith("cn-holidays 2026.1+chayu-2026.")
    assert (view["override"]["source"], view["override"]["dated"]) == (SOURCE, "2025-12-20")
    assert {y["year"]: y["overridden"] for y in view["years"]}[2027] is True

    # Thursday 8 January is now a day off: the fifth working day is Tuesday 13 January
    after = advance(client, firm)
    assert after["due"] == "2026-01-13"
    assert after["due_provisional"] is False  # 2026 keeps its published schedule
    assert after["due_calendar_version"] == view["calendar_version"]
    assert after["calendar"]["override"]["source"] == SOURCE
    assert (
        f"the holiday override “chayu-2026” applies (source: {SOURCE}; dated 2025-12-20"
        in (after["due_rule"])
    )
    zh = advance(client, firm, lang="zh-CN")
    assert "适用自定义节假日表“chayu-2026”" in zh["due_rule"]

    removed = client.delete(HOLIDAYS, headers=firm.headers())
    assert removed.json()["override"] is None
    assert advance(client, firm)["due"] == "2026-01-12"
    history = client.get(HOLIDAYS, headers=firm.headers(Role.ANALYST)).json()["history"]
    assert [(h["label"], h["removed_at"] is not None) for h in history] == [("chayu-2026", True)]
    again = client.delete(HOLIDAYS, headers=firm.headers())
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "must be a date such as 2026-11-25 (got 2027-02-30)"),
        ("zh-CN", "必须是日期，如 2026-11-25（实际为 2027-02-30）"),
    ],
)
def test_a_bad_override_is_named_with_its_line_and_not_stored(
    client: TestClient, state: AppState, firm: TenantWithKeys, lang: str, message: str
) -> None:
    refused = client.put(HOLIDAYS, json={"text": BROKEN, "source": SOURCE},
                         headers=firm.headers(lang=lang))  # fmt: skip
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert (error["field"], error["line"], error["message"]) == (
        "years.2027.holidays[0].first", 8, message,
    )  # fmt: skip
    no_source = client.put(HOLIDAYS, json={"text": OVERRIDE, "source": " "},
                           headers=firm.headers())  # fmt: skip
    assert no_source.json()["errors"][0]["field"] == "source"
    with state.database.session(tenant_id=firm.tenant.id) as session:
        assert session.query(CalendarOverride).count() == 0
    assert advance(client, firm)["due"] == "2026-01-12"


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    make_tenant(state, slug="firm")
    with running_cli(state, monkeypatch) as runner:
        yield runner


def test_the_override_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    cli.ok("engagement", "create", SAMPLE)
    cli.ok("engagement", "record", NUMBER, "signed", "--on", "2026-01-05")
    table = tmp_path / "chayu.yaml"
    table.write_text(OVERRIDE, encoding="utf-8")

    out = cli.ok("--lang", "en", "engagement", "holidays", "set", table, "--source", SOURCE)
    assert "Holiday override stored: calendar cn-holidays 2026.1+chayu-2026." in out
    shown = cli.ok("engagement", "holidays", "show")
    assert "自定义表“chayu-2026”：来源 " + SOURCE in shown
    status = cli.json("engagement", "status", NUMBER, "--as-of", "2026-01-31")
    assert status["instalments"][0]["due"] == "2026-01-13"

    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    error = cli.fails("--lang", "en", "engagement", "holidays", "set", broken, "--source", "x")
    assert "years.2027.holidays[0].first: must be a date such as 2026-11-25" in error
    assert "(line 8)" in error
    assert "第 8 行" in cli.fails("engagement", "holidays", "set", broken, "--source", "x")
    assert cli.json("engagement", "holidays", "show")["override"]["label"] == "chayu-2026"

    assert "已停用自定义节假日表" in cli.ok("engagement", "holidays", "remove")
    assert (
        cli.json("engagement", "status", NUMBER, "--as-of", "2026-01-31")["instalments"][0]["due"]
        == "2026-01-12"
    )
