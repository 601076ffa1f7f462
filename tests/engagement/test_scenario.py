"""A whole engagement on the sample modelled on the founding contract, from the needs
questionnaire to final acceptance, as a consultant runs it with ``memberlab engagement``:
every step recorded with its evidence, one change agreed, a standard that fails, improves and
passes, and at the end the proof of performance and the filled contract, in zh-CN and en."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pytest

from cli_runner import Cli, running_cli
from factories import make_tenant
from memberlab.core.app_state import AppState

SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
N = "ML-2026-001"


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    make_tenant(state, slug="firm")
    with running_cli(state, monkeypatch) as runner:
        yield runner


def record(cli: Cli, kind: str, on: str, **data: Any) -> None:
    cli.ok("engagement", "record", N, kind, "--on", on, "--data", json.dumps(data))


def proof(cli: Cli, folder: Path, kind: str, title: str, text: str) -> None:
    path = folder / f"{title}.txt"
    path.write_text(text, encoding="utf-8")
    cli.ok("engagement", "evidence", "add", N, path, "--kind", kind, "--title", title)


def deliver(cli: Cli, folder: Path, code: str, submitted: str, accepted: str) -> None:
    record(cli, "submission", submitted, deliverable=code)
    proof(cli, folder, "deliverable", code, f"{code} v1")
    record(cli, "acceptance", accepted, deliverable=code, accepted_by="王明")
    proof(cli, folder, "acceptance", f"{code} 验收单", f"{code} accepted on {accepted}")


def test_from_needs_questionnaire_to_final_acceptance(cli: Cli, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    cli.ok("engagement", "create", SAMPLE)
    record(cli, "questionnaire", "2026-01-04", answers={"目标": "提升复购与体验"},
           answered_by="李娜")  # fmt: skip
    record(cli, "signed", "2026-01-05")
    proof(cli, files, "contract", "签字合同", "signed contract scan")
    record(cli, "payment", "2026-01-09", amount="144000.00", instalment="advance")
    proof(cli, files, "payment", "首付款回单", "bank slip 144000.00")
    deliver(cli, files, "needs_questionnaire", "2026-01-18", "2026-01-19")
    deliver(cli, files, "service_schedule", "2026-01-20", "2026-01-22")
    deliver(cli, files, "team_introduction", "2026-01-20", "2026-01-22")
    for name in ("陈晓", "张伟", "刘洋"):
        record(cli, "team_approved", "2026-01-22", name=name, approved_by="王明")
    deliver(cli, files, "diagnosis_report", "2026-03-20", "2026-03-25")
    # the client asks for 20 more stores in the diagnosis' follow-up: agreed as version 2
    record(cli, "change_request", "2026-03-26", code="cr-1", scope="增加 20 家门店体验诊断",
           fee_change="60000.00", requested_by="王明")  # fmt: skip
    # the supplementary agreement fixes what is owed so far in amounts and adds the change's fee
    changed = (
        SAMPLE.read_text(encoding="utf-8")
        .replace("fee: 480000.00", "fee: 540000.00")
        .replace("{code: advance, portion: 30,", "{code: advance, amount: 144000,")
        .replace("{code: design, portion: 40,", "{code: design, amount: 192000,")
        .replace(
            "    - {code: final, portion: 30,",
            "    - {code: change_cr1, amount: 60000, trigger: date, trigger_date: 2026-04-15}\n"
            "    - {code: final, amount: 144000,",
        )
    )
    (tmp_path / "v2.yaml").write_text(changed, encoding="utf-8")
    assert "version 2" in cli.ok(
        "--lang", "en", "engagement", "approve", N, "cr-1", tmp_path / "v2.yaml",
        "--on", "2026-03-30", "--by", "王明",
    )  # fmt: skip
    proof(cli, files, "change", "补充协议", "supplementary agreement signed")
    deliver(cli, files, "program_design", "2026-04-15", "2026-04-20")
    deliver(cli, files, "evaluation_standards", "2026-04-15", "2026-04-20")
    record(cli, "payment", "2026-04-15", amount="60000.00", instalment="change_cr1")
    # design accepted 20 April: due 10 working days later, 7 May (1-5 May are Labour Day)
    record(cli, "payment", "2026-05-06", amount="192000.00", instalment="design")
    deliver(cli, files, "training_plan", "2026-05-20", "2026-05-22")
    for session, day in (("frontline", "2026-06-15"), ("cx_team", "2026-06-20")):
        record(cli, "training_held", day, session=session, trainer="张伟",
               attendees=["店长 A", "店员 B"], signed_off=True)  # fmt: skip
        proof(cli, files, "attendance", f"{session} 签到表", f"{session} attendance")
    # NPS: below target, an improvement round, then above it on re-assessment
    for day, value in (("2026-08-31", "21"), ("2026-09-30", "26.5")):
        record(cli, "assessment", day, standard="nps", value=value)
        proof(cli, files, "assessment", f"NPS 评估 {day}", f"NPS {value}")
    record(cli, "assessment", "2026-09-30", standard="repeat_rate", value="36.2")
    record(cli, "assessment", "2026-09-30", standard="case_deadline_met", value="93")
    deliver(cli, files, "proof_of_performance", "2026-11-18", "2026-11-20")
    record(cli, "milestone_accepted", "2026-11-20", milestone="final_acceptance",
           accepted_by="王明")  # fmt: skip
    record(cli, "payment", "2026-11-24", amount="144000.00", instalment="final")
    record(cli, "completed", "2026-11-25")

    status = cli.json("engagement", "status", N, "--as-of", "2026-11-25")
    assert [i["state"] for i in status["instalments"]] == ["paid"] * 4
    assert all(d["state"] == "accepted" for d in status["deliverables"])
    assert all(m is not None for m in status["milestones"].values())
    assert [s["state"] for s in status["standards"]] == ["passed", "passed", "passed"]
    assert status["standards"][0]["improvement_rounds_left"] == 0
    assert status["breaches"] == []
    assert cli.json("engagement", "list")[0]["status"] == "completed"

    # the proof of performance, checked with the store and on its own
    assert "全部" in cli.ok("engagement", "evidence", "verify", N)
    for lang in ("zh", "en"):
        bundle = tmp_path / f"proof-{lang}.zip"
        cli.ok("--lang", lang, "engagement", "evidence", "export", N, bundle)
        with zipfile.ZipFile(bundle) as archive:
            names = archive.namelist()
            manifest = json.loads(archive.read("manifest.json"))
        assert "index.pdf" in names
        assert len(manifest["items"]) == sum(1 for _ in files.iterdir())
        cli.ok("engagement", "evidence", "check", bundle)
    # the filled contract in force (version 2), and the supplementary agreement
    for lang, fee in (("zh", "人民币伍拾肆万元整"), ("en", "540,000.00")):
        cli.ok("--lang", lang, "engagement", "contract", N, tmp_path / f"contract-{lang}.docx")
        cli.ok("--lang", lang, "engagement", "contract", N, tmp_path / f"contract-{lang}.pdf")
        text = "\n".join(
            [p.text for p in docx.Document(tmp_path / f"contract-{lang}.docx").paragraphs]
            + [
                cell.text
                for table in docx.Document(tmp_path / f"contract-{lang}.docx").tables
                for row in table.rows
                for cell in row.cells
            ]
        )
        assert N in text
        assert fee in text
        assert (tmp_path / f"contract-{lang}.pdf").read_bytes().startswith(b"%PDF")
    cli.ok("engagement", "supplement", N, "2", tmp_path / "supplement.docx")
    supplement = "\n".join(p.text for p in docx.Document(tmp_path / "supplement.docx").paragraphs)
    assert "cr-1" in supplement


def test_an_altered_evidence_file_is_detected(cli: Cli, tmp_path: Path, state: AppState) -> None:
    cli.ok("engagement", "create", SAMPLE)
    record(cli, "signed", "2026-01-05")
    proof(cli, tmp_path, "deliverable", "诊断报告", "NPS 12, repeat rate 31 %")

    stored = next((state.settings.data_dir / "evidence").rglob("*.txt"))
    stored.write_text("NPS 42, repeat rate 31 %", encoding="utf-8")  # edited afterwards

    checked = cli.main("--lang", "en", "engagement", "evidence", "verify", N)
    assert checked.exit_code == 1
    assert "诊断报告" in checked.stdout
    assert "changed" in checked.stdout
    refused = cli.fails("--lang", "en", "engagement", "evidence", "export", N, tmp_path / "p.zip")
    assert "#1" in refused
    assert not (tmp_path / "p.zip").exists()
