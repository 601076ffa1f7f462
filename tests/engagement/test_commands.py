"""``memberlab engagement``: a consultant checks the contract file, stores it, records what
happens and reads where it stands, in zh-CN and en."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_runner import Cli, running_cli
from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.engagement.models import EngagementEvent

SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    make_tenant(state, slug="firm")
    with running_cli(state, monkeypatch) as runner:
        yield runner


def test_from_the_contract_file_to_its_status(cli: Cli) -> None:
    assert "ML-2026-001：合同条款有效" in cli.ok("engagement", "validate", SAMPLE)
    cli.ok("engagement", "create", SAMPLE)
    cli.ok("engagement", "record", "ML-2026-001", "signed", "--on", "2026-01-05")
    paid = cli.ok(
        "--lang", "en", "engagement", "record", "ML-2026-001", "payment", "--on", "2026-01-09",
        "--data", '{"amount": "144000.00", "instalment": "advance"}', "--key", "pay-1",
    )  # fmt: skip
    assert "Recorded: payment on 2026-01-09." in paid
    again = cli.ok(
        "--lang", "en", "engagement", "record", "ML-2026-001", "payment", "--on", "2026-01-09",
        "--data", '{"amount": "144000.00", "instalment": "advance"}', "--key", "pay-1",
    )  # fmt: skip
    assert "Already recorded" in again

    status = cli.json("engagement", "status", "ML-2026-001", "--as-of", "2026-01-31")
    advance = status["instalments"][0]
    assert (advance["due"], advance["state"]) == ("2026-01-12", "paid")
    shown = cli.ok("engagement", "status", "ML-2026-001", "--as-of", "2026-01-31")
    assert "needs_questionnaire" in shown
    assert "违约" in shown  # the questionnaire came late: the client's lack of cooperation
    assert [e["contract_number"] for e in cli.json("engagement", "list")] == ["ML-2026-001"]


def test_bad_input_is_named_and_changes_nothing(cli: Cli, tmp_path: Path, state: AppState) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        SAMPLE.read_text(encoding="utf-8").replace("portion: 30, trigger: signing", "portion: 20, "
                                                   "trigger: signing"),
        encoding="utf-8",
    )  # fmt: skip
    error = cli.fails("--lang", "en", "engagement", "validate", broken)
    assert "payment.instalments" in error
    cli.ok("engagement", "create", SAMPLE)
    assert "not signed yet" in cli.fails(
        "--lang", "en", "engagement", "record", "ML-2026-001", "payment", "--on", "2026-01-09",
        "--data", '{"amount": "1.00"}',
    )  # fmt: skip
    assert "--data" in cli.fails(
        "--lang", "en", "engagement", "record", "ML-2026-001", "signed", "--on", "2026-01-05",
        "--data", "{not json",
    )  # fmt: skip
    assert "--on" in cli.fails(
        "--lang", "en", "engagement", "record", "ML-2026-001", "signed", "--on", "5 Jan"
    )
    assert cli.count(EngagementEvent, _tenant_id(state)) == 0


def _tenant_id(state: AppState) -> int:
    from memberlab.core import tenants

    with state.database.session(platform=True) as session:
        return tenants.get_tenant(session, "firm").id


def test_the_staff_handbook_of_the_program_in_force(
    state: AppState, cli: Cli, tmp_path: Path
) -> None:
    from memberlab.datasets.demo import sample_program_text

    program = tmp_path / "teahouse.yaml"
    program.write_text(sample_program_text("teahouse"), encoding="utf-8")
    cli.ok("program", "load", program, "--tenant", "firm")
    cli.ok("program", "activate", "teahouse@1", "--effective-from", "2025-01-01T00:00:00+08:00",
           "--tenant", "firm")  # fmt: skip

    cli.ok("engagement", "handbook", tmp_path / "handbook.pdf", "--brand", "茶语咖啡")
    cli.ok("--lang", "en", "engagement", "handbook", tmp_path / "handbook.docx")

    assert (tmp_path / "handbook.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "handbook.docx").stat().st_size > 0
    assert "out: " in cli.fails("--lang", "en", "engagement", "handbook", tmp_path / "x.txt")
