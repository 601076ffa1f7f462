"""``memberlab import`` and ``memberlab export``, against the test database.

Commands run through Typer's ``CliRunner`` on ``memberlab.cli.app`` with the store of the test
(``use_state``), in Chinese unless ``--lang en``; failures are run through
``memberlab.cli.main`` as the console script runs them (exit code 1, message on stderr).
The store has one tenant (the teahouse chain), so ``--tenant`` is not needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import fastexcel
import polars as pl
import pytest

from cli_runner import Cli, running_cli
from memberlab.core.app_state import AppState
from memberlab.members.models import Member
from memberlab.retail.models import Store

if TYPE_CHECKING:
    from tests.dataio.conftest import Files, Tenant

HEADER = ["会员卡号", "手机号", "姓名", "生日"]
GOOD = [["A1", "13812345678", "张三", "1990-05-01"], ["A2", "13912345678", "李四", ""]]
BAD = ["A3", "12345", "王五", ""]


@pytest.fixture
def cli(state: AppState, tea: Tenant, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on the test store, whose only tenant is ``tea``; Chinese by default."""
    with running_cli(state, monkeypatch) as runner:
        yield runner


def one_line(text: str) -> str:
    """Output with Rich's wrapping undone, to look for a sentence in it."""
    return " ".join(text.split())


# --- import --------------------------------------------------------------------------------------


def test_import_prints_a_summary_as_json(cli: Cli, tea: Tenant, files: Files) -> None:
    path = files.csv("members.csv", [HEADER, *GOOD, BAD], encoding="gbk")

    summary = cli.json("import", "members", path)

    assert {k: summary[k] for k in ("kind", "format", "encoding", "rows", "loaded", "skipped",
                                    "rejected", "refused", "dry_run")} == {
        "kind": "members", "format": "csv", "encoding": "gbk", "rows": 3, "loaded": 2,
        "skipped": 0, "rejected": 1, "refused": False, "dry_run": False,
    }  # fmt: skip
    assert summary["rejects_file"] == str(files.path("members.csv.rejects.csv"))
    assert summary["first_rejects"] == [
        {"row": 4, "column": "手机号", "value": "12345", "code": "dataio.v.mobile",
         "reason": "12345 不是有效的手机号"},
    ]  # fmt: skip
    rejects = files.path("members.csv.rejects.csv").read_text(encoding="utf-8-sig")
    assert rejects.splitlines() == [
        "行号,列,值,代码,原因",
        "4,手机号,12345,dataio.v.mobile,12345 不是有效的手机号",
    ]
    assert tea.count(Member) == 2


def test_import_prints_a_summary_for_people(cli: Cli, files: Files) -> None:
    path = files.csv("members.csv", [HEADER, *GOOD, BAD], encoding="gbk")

    zh = one_line(cli.ok("import", "members", path))

    assert "读取格式：CSV, gbk。" in zh
    assert "members.csv：共 3 行，导入 2 行，已存在 0 行，拒绝 1 行。" in zh
    assert "前几个问题：" in zh
    assert "12345 不是有效的手机号" in zh
    assert f"被拒绝的行及原因：{files.path('members.csv.rejects.csv')}" in zh

    en = one_line(cli.ok("--lang", "en", "import", "members", path))

    assert "Read as CSV, gbk." in en
    assert "members.csv: 3 rows, 0 loaded, 2 already present, 1 rejected." in en
    assert "12345 is not a valid mobile number" in en


def test_a_dry_run_shows_the_mapping_and_writes_nothing(
    cli: Cli, tea: Tenant, files: Files
) -> None:
    path = files.csv("members.csv", [[*HEADER, "备注"], *[[*r, ""] for r in GOOD],
                                     [*BAD, ""]])  # fmt: skip

    zh = one_line(cli.ok("import", "members", path, "--dry-run"))
    en = one_line(cli.ok("--lang", "en", "import", "members", path, "--dry-run"))

    assert "列对应：" in zh
    assert "会员卡号 │ member_id" in zh
    assert "未使用的列：备注" in zh
    assert "members.csv：共 3 行，导入 0 行，已存在 0 行，拒绝 1 行。" in zh
    assert "试运行：未写入任何数据。" in zh
    assert "Columns:" in en
    assert "手机号 │ mobile" in en
    assert "Ignored columns: 备注" in en
    assert "Dry run: nothing was written." in en
    assert "12345 is not a valid mobile number" in en
    assert "Rejected rows" not in en
    assert tea.count(Member) == 0
    assert not files.path("members.csv.rejects.csv").exists()


def test_all_or_nothing_ends_with_exit_code_1_when_it_refuses(
    cli: Cli, tea: Tenant, files: Files
) -> None:
    path = files.csv("members.csv", [HEADER, *GOOD, BAD])

    refused = cli.invoke("--lang", "en", "import", "members", path, "--all-or-nothing")
    as_json = cli.invoke("import", "members", path, "--all-or-nothing", "--json")

    assert refused.exit_code == 1
    assert "Nothing was loaded: --all-or-nothing and 1 rows are bad." in one_line(refused.stdout)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["refused"] is True
    assert tea.count(Member) == 0
    fine = files.csv("fine.csv", [HEADER, *GOOD])
    assert cli.json("import", "members", fine, "--all-or-nothing")["loaded"] == 2


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("zh", "错误: 输入无效：\n"
               "  broken.csv: 是二进制文件，不是 CSV 文本、Excel（.xlsx）或 Parquet"),
        ("en", "Error: The input is not valid:\n  broken.csv: is a binary file, not CSV text, "
               "Excel (.xlsx) or Parquet"),
    ],
)  # fmt: skip
def test_a_broken_file_is_an_error_naming_it_in_the_chosen_language(
    cli: Cli, files: Files, lang: str, expected: str
) -> None:
    path = files.raw("broken.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")

    exited = cli.main("--lang", lang, "import", "members", path)

    assert exited.exit_code == 1
    assert exited.stderr.strip() == expected


def test_a_missing_column_is_an_error_that_says_what_to_do(cli: Cli, files: Files) -> None:
    path = files.csv("stores.csv", [["门店名称", "城市"], ["一号店", "上海"]])

    exited = cli.main("--lang", "en", "import", "stores", path)

    assert exited.exit_code == 1
    message = exited.stderr.strip()
    assert message.startswith(
        "Error: The input is not valid:\n"
        "  store_id: no column found for this required field (usual headers: store_id, store"
    )
    assert message.endswith("closest in the file: -); name it in a mapping file")


def test_the_usual_headers_in_a_missing_column_error_are_all_different(
    cli: Cli, files: Files
) -> None:
    path = files.csv("stores.csv", [["门店名称", "城市"], ["一号店", "上海"]])

    stderr = cli.main("--lang", "en", "import", "stores", path).stderr

    named = stderr.split("usual headers: ", 1)[1].split(";", 1)[0].split(", ")
    assert len(named) == len(set(named)) == 4, named


def test_mapping_sheet_encoding_and_rejects_options(
    cli: Cli, tea: Tenant, files: Files, tmp_path: Path
) -> None:
    mapping = files.text("mapping.yaml", "store_id: 编码(新)\nname_zh: 名字\n")
    workbook = files.xlsx(
        "stores.xlsx",
        {"说明": [["这是说明页"]], "门店": [["编码(新)", "名字"], ["S1", "一号店"], ["S 2", "x"]]},
    )
    rejects = tmp_path / "out" / "bad.csv"

    summary = cli.json("import", "stores", workbook, "--mapping", mapping, "--sheet", "门店",
                       "--rejects", rejects)  # fmt: skip

    assert (summary["sheet"], summary["loaded"], summary["rejected"]) == ("门店", 1, 1)
    assert summary["mapping"] == {"columns": {"store_id": "编码(新)", "name_zh": "名字"},
                                  "ignored": []}  # fmt: skip
    assert summary["rejects_file"] == str(rejects)
    assert rejects.read_text(encoding="utf-8-sig").splitlines()[1].startswith("3,编码(新),S 2,")
    assert tea.count(Store) == 1

    big5 = files.raw("stores.csv", "門店編號,門店名稱\r\nS3,三號店\r\n".encode("big5"))
    refused = cli.main("--lang", "en", "import", "stores", big5)
    assert refused.exit_code == 1
    assert "give it with --encoding (e.g. big5)" in refused.stderr
    read = cli.json("import", "stores", big5, "--encoding", "big5",
                    "--mapping", files.text("m.yaml", "store_id: 門店編號\n"))  # fmt: skip
    assert (read["encoding"], read["loaded"]) == ("big5", 1)


def test_a_broken_mapping_file_names_its_line(cli: Cli, files: Files) -> None:
    mapping = files.text("mapping.yaml", "store_id: 编码\n  name_zh: 名字\n")
    path = files.csv("stores.csv", [["编码", "名字"], ["S1", "一号店"]])

    exited = cli.main("--lang", "en", "import", "stores", path, "--mapping", mapping)

    assert exited.exit_code == 1
    assert "mapping: the mapping file is not valid YAML" in exited.stderr
    assert "(line 2)" in exited.stderr


# --- export --------------------------------------------------------------------------------------


def test_export_members_to_a_workbook(cli: Cli, files: Files, tmp_path: Path) -> None:
    cli.ok("import", "members", files.csv("members.csv", [HEADER, *GOOD]))
    out = tmp_path / "exports" / "members.xlsx"

    said = one_line(cli.ok("--lang", "en", "export", "members", out))

    assert said == f"2 rows written to {out}."
    frame = pl.from_arrow(fastexcel.read_excel(out).load_sheet(0).to_arrow())
    assert isinstance(frame, pl.DataFrame)
    assert frame.select("member_id", "mobile", "name").rows() == [
        ("A1", "138****5678", None),
        ("A2", "139****5678", None),
    ]
    assert fastexcel.read_excel(out).sheet_names == ["members"]


def test_export_members_with_personal_data_and_as_json(
    cli: Cli, files: Files, tmp_path: Path
) -> None:
    cli.ok("import", "members", files.csv("members.csv", [HEADER, *GOOD]))
    out = tmp_path / "members.data"

    answer = cli.json("export", "members", out, "--format", "parquet", "--pii")

    assert answer == {"what": "members", "rows": 2, "files": [str(out)]}
    frame = pl.read_parquet(out)
    assert frame.select("member_id", "mobile", "name").rows() == [
        ("A1", "+8613812345678", "张三"),
        ("A2", "+8613912345678", "李四"),
    ]


def test_export_of_the_other_kinds(cli: Cli, files: Files, tmp_path: Path) -> None:
    cli.ok(
        "import", "stores", files.csv("stores.csv", [["门店编号", "门店名称"], ["S1", "一号店"]])
    )
    orders = files.csv(
        "orders.csv",
        [["会员卡号", "订单号", "下单时间", "实付金额", "门店"],
         ["A1", "O1", "2026-01-05 12:30", "42.50", "S1"]],
    )  # fmt: skip
    cli.ok("import", "transactions", orders)

    stores = cli.json("export", "stores", tmp_path / "stores.csv")
    lines = cli.json("export", "transactions", tmp_path / "lines.csv")
    ledger = cli.json("export", "ledger", tmp_path / "ledger.parquet", "--member", "A1")
    liability = cli.json("export", "liability", tmp_path / "liability.xlsx")
    liability_csv = cli.json("export", "liability", tmp_path / "liability.csv")

    assert (stores["rows"], lines["rows"]) == (1, 1)
    # an order-level file has no SKUs: the order's one line goes by the order id
    assert (tmp_path / "lines.csv").read_text(encoding="utf-8-sig").splitlines()[1] == (
        "purchase,O1,,A1,2026-01-05 12:30:00,store,S1,O1,other,1,42.50,0"
    )
    assert pl.read_parquet(tmp_path / "ledger.parquet")["member_id"].unique().to_list() == ["A1"]
    assert ledger["rows"] >= 2  # sign-up and purchase at least
    assert liability["files"] == [str(tmp_path / "liability.xlsx")]
    assert fastexcel.read_excel(tmp_path / "liability.xlsx").sheet_names == [
        "by_expiry_month",
        "flows",
    ]
    assert liability_csv["files"] == [
        str(tmp_path / "liability-by_expiry_month.csv"),
        str(tmp_path / "liability-flows.csv"),
    ]


def test_export_to_an_unknown_format_is_an_error(cli: Cli, tmp_path: Path) -> None:
    exited = cli.main("--lang", "en", "export", "stores", tmp_path / "stores.json")

    assert exited.exit_code == 1
    assert exited.stderr.strip() == (
        "Error: The input is not valid:\n"
        "  format: json is not an export format (csv, xlsx, parquet)"
    )
    assert not (tmp_path / "stores.json").exists()
