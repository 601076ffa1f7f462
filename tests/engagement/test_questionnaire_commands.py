"""``memberlab engagement questionnaire``: the consultant sends the client a link, or writes
the questionnaire to a file, has the client fill it in (Excel, a survey tool's export, YAML)
and imports it; bad answers are named with their line and nothing is stored."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_runner import Cli, running_cli
from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.engagement.models import EngagementEvent, EvidenceItem

SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
NUMBER = "ML-2026-001"
FILLED = {
    "company_name": "茶语咖啡（上海）有限公司",
    "brands": "茶语",
    "industry": "food_beverage",
    "channels": "own_stores; mini_program",
    "store_count": "128",
    "member_count": "35万",
    "current_program": "points_and_tiers",
    "goals": "repeat; data",
    "pain_points": "会员权益不清楚",
    "budget": "undecided",
    "data_available": "members; transactions",
    "contact_name": "李娜",
    "contact_phone": "13800001111",
}


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    tenant = make_tenant(state, slug="firm")
    with running_cli(state, monkeypatch) as runner:
        runner.ok("engagement", "create", SAMPLE)
        runner.tenant_id = tenant.tenant.id  # type: ignore[attr-defined]
        yield runner


def stored(cli: Cli) -> tuple[int, int]:
    tenant = cli.tenant_id  # type: ignore[attr-defined]
    return cli.count(EngagementEvent, tenant), cli.count(EvidenceItem, tenant)


def test_a_link_for_the_client(cli: Cli) -> None:
    out = cli.ok("--lang", "en", "engagement", "questionnaire", "link", NUMBER, "--days", "14")
    assert "Questionnaire link (valid until 2026-12-09" in out
    assert "http://127.0.0.1:8000/q/" in out
    made = cli.json("engagement", "questionnaire", "link", NUMBER, "--language", "en")
    assert made["language"] == "en"
    shown = cli.ok("engagement", "questionnaire", "show", NUMBER)
    assert "甲方尚未填写需求调查表" in shown
    assert "已被取代" in shown  # the first link was replaced
    assert "待填写" in shown


def test_the_template_filled_in_excel_is_imported(cli: Cli, tmp_path: Path) -> None:
    template = tmp_path / "needs.csv"
    cli.ok("engagement", "questionnaire", "template", template)
    with template.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "问题", "选项", "answer"]
    assert rows[1][:2] == ["company_name", "公司全称 *"]
    assert "food_beverage: 餐饮、茶饮与咖啡" in rows[3][2]
    # the client fills the answer column (Excel saves it as GBK, as it often does)
    filled = tmp_path / "filled.csv"
    with filled.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        for row in rows[1:]:
            writer.writerow([*row[:3], FILLED.get(row[0], "")])

    out = cli.ok("engagement", "questionnaire", "import", NUMBER, filled, "--on", "2026-01-15")
    assert "需求调查表已导入：13 项回答，日期 2026-01-15；证明材料 #1。" in out
    again = cli.ok("engagement", "questionnaire", "import", NUMBER, filled, "--on", "2026-01-15")
    assert "这些回答已导入过" in again
    assert stored(cli) == (1, 1)

    shown = cli.ok("--lang", "en", "engagement", "questionnaire", "show", NUMBER)
    assert "Answered on 2026-01-15 by 李娜 (imported); evidence #1." in shown
    assert "Points and tiers" in shown
    latest = cli.json("engagement", "questionnaire", "show", NUMBER)["latest"]
    answers = {a["id"]: a["answer"] for a in latest["answers"]}
    assert answers["member_count"] == 350_000
    assert answers["channels"] == ["own_stores", "mini_program"]
    status = cli.json("engagement", "status", NUMBER, "--as-of", "2026-01-16")
    needs = next(d for d in status["deliverables"] if d["code"] == "needs_questionnaire")
    assert (needs["state"], needs["submitted_on"]) == ("submitted", "2026-01-15")


def test_a_survey_tools_export_is_imported(cli: Cli, tmp_path: Path) -> None:
    """One column per question, headed by its text as the survey tool numbers it, after the
    tool's own columns (number, submission time, time taken, source, IP): those are not
    questions, and the submission time is the day answered."""
    import xlsxwriter

    from memberlab.engagement.questionnaire import default_questionnaire

    texts = {q.id: q.text.zh for q in default_questionnaire().questions}
    export = tmp_path / "问卷星导出.xlsx"
    book = xlsxwriter.Workbook(export)
    sheet = book.add_worksheet()
    tool = {"序号": "1", "提交答卷时间": "2026/1/15 10:23:45", "所用时间": "305秒",
            "来源": "微信", "来源详情": "N/A", "来自IP": "101.80.1.2(上海-上海)"}  # fmt: skip
    for column, (header, value) in enumerate(tool.items()):
        sheet.write(0, column, header)
        sheet.write(1, column, value)
    for column, (question, answer) in enumerate(FILLED.items(), start=len(tool)):
        sheet.write(0, column, f"{column - len(tool) + 1}. {texts[question]}")
        sheet.write(1, column, answer.replace("; ", "┋"))  # 问卷星 joins choices with ┋
    book.close()

    out = cli.ok("--lang", "en", "engagement", "questionnaire", "import", NUMBER, export,
                 "--by", "王明")  # fmt: skip
    assert "Questionnaire imported: 13 answers on 2026-01-15" in out
    latest = cli.json("engagement", "questionnaire", "show", NUMBER)["latest"]
    assert latest["answered_by"] == "王明"
    assert {a["id"]: a["answer"] for a in latest["answers"]}["goals"] == ["repeat", "data"]


def test_bad_answers_in_a_file_are_named_with_their_line(cli: Cli, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    lines = ["answered_by: 李娜", "answered_on: 2026-01-15", "answers:"]
    lines += [f"  {k}: {v}" for k, v in FILLED.items() if k != "contact_name"]
    lines[lines.index("  store_count: 128")] = "  store_count: 一百多家"
    lines.append("  loyalty_app: yes")
    answers.write_text("\n".join(lines) + "\n", encoding="utf-8")

    error = cli.fails("--lang", "en", "engagement", "questionnaire", "import", NUMBER, answers)
    assert "store_count: 一百多家 is not a number.  (line 8)" in error
    assert "contact_name: Please answer this question." in error
    assert "loyalty_app: No question loyalty_app in the questionnaire" in error
    zh = cli.fails("engagement", "questionnaire", "import", NUMBER, answers)
    assert "store_count: 一百多家 不是数字。" in zh
    assert "contact_name: 请回答此题。" in zh
    assert stored(cli) == (0, 0)

    several = tmp_path / "several.csv"
    several.write_text("company_name,brands\nA,a\nB,b\n", encoding="utf-8")
    assert "--row" in cli.fails("--lang", "en", "engagement", "questionnaire", "import", NUMBER,
                                several)  # fmt: skip
    assert stored(cli) == (0, 0)
