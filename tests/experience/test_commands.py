"""``memberlab cx``: a consultant sets up a survey from a file, sends a link, runs the job,
reads the scores and works the cases, in zh-CN and en."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cli_runner import Cli, running_cli
from experience_setup import GOOD_ANSWER, SAMPLES, path_of, tea_chain
from factories import TenantWithKeys
from memberlab.core.app_state import AppState
from memberlab.experience.models import FollowUpCase, SurveyResponse


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    return tea_chain(state, client)


@pytest.fixture
def cli(state: AppState, tea: TenantWithKeys, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    with running_cli(state, monkeypatch) as runner:
        yield runner


def test_a_survey_from_a_file_to_a_closed_case(
    cli: Cli, client: TestClient, tea: TenantWithKeys
) -> None:
    assert "消费体验调查" not in cli.ok("cx", "survey", "list")
    assert "after_purchase" in cli.ok("cx", "survey", "save", SAMPLES / "after_purchase.yaml")
    assert "active" in cli.ok("--lang", "en", "cx", "survey", "activate", "after_purchase")
    assert "门店" in cli.ok("cx", "touchpoints")

    link = cli.json("cx", "invite", "after_purchase", "M-1", "--touchpoint", "store")
    answer = {**GOOD_ANSWER, "nps": "2", "comment": "[red]排队[/red] 太久"}
    assert client.post(path_of(link["url"]), data=answer).status_code == 200

    scores = cli.json("cx", "scores", "--by", "touchpoint")
    assert [(s["touchpoint"], s["n"], s["value"], s["too_small"]) for s in scores] == [
        ("store", 1, -100.0, True)
    ]
    (case,) = cli.json("cx", "case", "list")
    assert (case["member_id"], case["reason"]) == ("M-1", "detractor")
    shown = cli.ok("--lang", "en", "cx", "case", "list")
    assert "[red]" in shown  # the member's text, not Rich markup
    cli.ok("cx", "case", "assign", str(case["id"]), "王店长")
    closed = cli.ok(
        "--lang", "en", "cx", "case", "close", str(case["id"]), "--resolution", "致歉",
        "--points", "100",
    )  # fmt: skip
    assert f"Case {case['id']} closed; no follow-up survey is active." in closed
    measures = cli.json("cx", "case", "measures")
    assert (measures["closed"], measures["deadline_met_rate"]) == (1, 1.0)
    assert cli.count(SurveyResponse, tea.tenant.id) == 1


def test_bad_input_is_named_and_changes_nothing(cli: Cli, tea: TenantWithKeys, tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "code: broken\ntitle: {zh: 坏, en: Broken}\nquestions:\n  - {id: q1, type: rating}\n",
        encoding="utf-8",
    )
    error = cli.fails("--lang", "en", "cx", "survey", "save", broken)
    assert "questions[0].attribute: A rating says what it rates" in error
    assert "(line 4)" in error
    assert "questions[0].text" in error  # every problem at once
    assert "至少" in cli.fails("cx", "survey", "save", _empty_survey(tmp_path))
    assert "no_such" in cli.fails("--lang", "en", "cx", "invite", "no_such", "M-1")
    assert "--metric" in cli.fails("--lang", "en", "cx", "scores", "--metric", "happiness")
    assert "in the future" in cli.fails("--lang", "en", "cx", "jobs", "--as-of", "2031-01-01")
    assert cli.count(FollowUpCase, tea.tenant.id) == 0


def _empty_survey(folder) -> str:
    path = folder / "empty.yaml"
    path.write_text("code: empty\ntitle: {zh: 空, en: Empty}\nquestions: []\n", encoding="utf-8")
    return str(path)
