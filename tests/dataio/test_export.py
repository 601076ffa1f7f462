"""Exporting stored data: CSV for Excel, formatted XLSX, Parquet; and back again.

The ``*_frame`` functions read the store into frames whose columns are the import fields,
so an export imports back without loss: a tenant filled from client files is exported in
each format, the export is imported into a fresh tenant running the same program, and
both tenants export the same frames (members with their points, tiers and totals too,
since the same purchases went through the same rules).
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import fastexcel
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import FIXED_NOW
from memberlab.core.errors import InvalidInput
from memberlab.dataio import export
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.service import LedgerContext
from memberlab.members.models import Member

if TYPE_CHECKING:
    from tests.dataio.conftest import Files, Tenant

TIMEZONE = "Asia/Shanghai"
KINDS = ("stores", "products", "members", "transactions", "responses")  # in import order
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def fill(tenant: Tenant, files: Files) -> None:
    """A little of everything, from client files, as a client would bring it."""
    imports = {
        "stores": files.csv(
            "门店.csv",
            [["门店编号", "门店名称", "store_name", "城市", "city_en", "开业日期"],
             ["S1", "一号店", "First", "上海", "Shanghai", "2020-05-01"],
             ["S2", "二号店", "", "北京", "", "2021年3月8日"]],
            encoding="gbk",
        ),
        "products": files.csv(
            "商品.csv",
            [["商品编码", "商品名称", "英文名", "品类", "售价"],
             ["tea1", "龙井", "Longjing", "tea", "18.00"],
             ["cake", "蛋糕", "Cake", "bakery", "15"],
             ["tea2", "季节特饮", "", "seasonal", "22.50"]],
        ),
        "members": files.xlsx(
            "会员.xlsx",
            {"会员": [
                ["会员卡号", "手机号", "姓名", "性别", "生日", "城市", "语言", "入会时间",
                 "注册渠道", "注册门店", "openid"],
                ["A1", 13812345678, "张三", "男", datetime(1990, 5, 1), "上海", "中文",
                 datetime(2026, 1, 1, 10, 0), "门店", "S1", "o-abc"],
                ["A2", "13912345678", "Li Si", "F", "1991/2/3", "北京", "English",
                 "2026/1/2 8:15:30", "小程序", "", ""],
                ["001", "", "", "", "", "", "", "2026-01-03", "", "", ""],
            ]},
        ),
        "transactions": files.csv(
            "销售.csv",
            [["类型", "会员卡号", "订单号", "退货单号", "下单时间", "实付金额", "门店", "渠道",
              "商品编码", "品类", "数量", "积分抵扣"],
             ["消费", "A1", "O1", "", "2026-01-05 12:30", "12.50", "S1", "门店", "tea1", "tea",
              "1", "0"],
             ["消费", "A1", "O1", "", "2026-01-05 12:30", "30.00", "S1", "门店", "cake",
              "bakery", "2", "0"],
             ["消费", "A2", "O2", "", "2026-03-08 12:30", "￥100", "S2", "小程序", "tea2",
              "seasonal", "4", ""],
             ["消费", "N9", "O3", "", "2026-01-07 09:00", "20", "S2", "外卖", "tea1", "tea",
              "1", ""],
             ["消费", "A1", "O4", "", "2026-02-01 10:00", "50", "S1", "App", "tea1", "tea",
              "2", "100"],
             ["退货", "A1", "O1", "R1", "2026-01-06 10:00", "", "S1", "门店", "cake",
              "bakery", "1", ""]],
            encoding="gbk",
        ),
        "responses": files.xlsx(
            "问卷.xlsx",
            {"Sheet1": [
                ["序号", "提交答卷时间", "会员卡号", "推荐意愿", "满意度", "服务环节", "意见建议"],
                [1, datetime(2026, 11, 20, 10, 0, 5), "A1", 9, 5, "点单", "好喝"],
                [2, "2026-11-21 09:30", "", 6, 3, "", "排队太久, 下次\n再来"],
            ]},
        ),
    }  # fmt: skip
    for kind in KINDS:
        summary = tenant.run(kind, imports[kind])
        assert (summary.rejected, summary.loaded > 0) == (0, True), summary
    answer = files.csv("answer.csv", [["提交时间", "会员卡号", "推荐意愿"],
                                      ["2026-11-22 08:00", "A2", "10"]])  # fmt: skip
    assert tenant.run("responses", answer).loaded == 1  # an answer without an id


def frames_of(tenant: Tenant) -> dict[str, pl.DataFrame]:
    """What ``memberlab export`` writes for each kind (members with personal data)."""
    with tenant.state.database.session(tenant_id=tenant.id) as session:
        return {
            "stores": export.stores_frame(session),
            "products": export.products_frame(session),
            "members": export.members_frame(session, vault=tenant.state.vault, reveal=True),
            "transactions": export.transactions_frame(session),
            "responses": export.responses_frame(session),
        }


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_an_export_imports_into_another_tenant_without_loss(
    tea: Tenant, new_tenant: Any, files: Files, tmp_path: Path, fmt: str
) -> None:
    fill(tea, files)
    exported = frames_of(tea)
    copy = new_tenant("copy")

    for kind in KINDS:
        path = export.write_table(exported[kind], tmp_path / f"{kind}.{fmt}", timezone=TIMEZONE)
        summary = copy.run(kind, path)
        assert (summary.format, summary.rejected) == (fmt, 0), summary.first_rejects

    again = frames_of(copy)
    for kind in KINDS:
        assert_frame_equal(again[kind], exported[kind], check_exact=True)


def test_the_exported_frames_hold_what_was_imported(tea: Tenant, files: Files) -> None:
    """A check of the frames themselves, so the round trip cannot pass by losing both ways."""
    fill(tea, files)

    frames = frames_of(tea)

    members = frames["members"].select(
        "member_id", "mobile", "name", "gender", "language", "enrol_store", "external_id",
        "lifetime_orders", "lifetime_spend",
    ).rows()  # fmt: skip
    assert [tuple(str(v) if v is not None else None for v in row) for row in members] == [
        ("A1", "+8613812345678", "张三", "male", "zh-CN", "S1", "o-abc", "2", "76.50"),
        ("A2", "+8613912345678", "Li Si", "female", "en", None, None, "1", "100.00"),
        ("001", None, None, None, None, None, None, "0", "0.00"),
        ("N9", None, None, None, None, None, None, "1", "20.00"),
    ]
    lines = frames["transactions"].select(
        "kind", "order_id", "return_id", "member_id", "sku", "quantity", "amount", "points_used"
    )
    assert [tuple(str(v) if v is not None else None for v in row) for row in lines.rows()] == [
        ("purchase", "O1", None, "A1", "tea1", "1", "12.50", "0"),
        ("purchase", "O1", None, "A1", "cake", "2", "30.00", "0"),
        ("purchase", "O4", None, "A1", "tea1", "2", "50.00", "100"),
        ("purchase", "O2", None, "A2", "tea2", "4", "100.00", "0"),
        ("purchase", "O3", None, "N9", "tea1", "1", "20.00", "0"),
        ("return", "O1", "R1", "A1", "cake", "1", "15.00", "0"),
    ]
    assert frames["stores"].rows()[1] == ("S2", "二号店", None, "北京", None,
                                          datetime(2021, 3, 8).date())  # fmt: skip
    responses = frames["responses"].select("response_id", "member_id", "nps", "comment").rows()
    assert responses[:2] == [("1", "A1", 9, "好喝"), ("2", None, 6, "排队太久, 下次\n再来")]
    assert responses[2][1:] == ("A2", 10, None)
    assert re.fullmatch(r"R[0-9a-f]{20}", responses[2][0])


def test_members_are_exported_with_personal_data_masked_unless_asked(
    tea: Tenant, files: Files
) -> None:
    fill(tea, files)

    with tea.state.database.session(tenant_id=tea.id) as session:
        masked = export.members_frame(session, vault=tea.state.vault, reveal=False)

    assert masked.select("member_id", "mobile", "name", "birthday").rows()[:2] == [
        ("A1", "138****5678", None, None),
        ("A2", "139****5678", None, None),
    ]


def test_times_are_written_in_the_tenants_zone_without_an_offset(
    tea: Tenant, files: Files, tmp_path: Path
) -> None:
    fill(tea, files)
    frame = frames_of(tea)["transactions"]

    csv_text = export.write_table(frame, tmp_path / "t.csv", timezone=TIMEZONE).read_text(
        encoding="utf-8-sig"
    )
    parquet = pl.read_parquet(export.write_table(frame, tmp_path / "t.parquet"))

    assert "2026-01-05 12:30:00" in csv_text.splitlines()[1]
    assert parquet["occurred_at"].dtype == pl.Datetime("us")  # naive local time
    assert parquet["occurred_at"][0] == datetime(2026, 1, 5, 12, 30)


# --- what the files look like --------------------------------------------------------------------


def test_csv_starts_with_the_utf8_byte_order_mark_for_excel(
    tea: Tenant, files: Files, tmp_path: Path
) -> None:
    fill(tea, files)

    path = export.write_table(frames_of(tea)["stores"], tmp_path / "stores.csv")

    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfstore_id,name_zh,name_en,city,city_en,opened_on\n")
    assert "S1,一号店,First,上海,Shanghai,2020-05-01" in data.decode("utf-8-sig")


def _cell_formats(path: Path, sheet: str = "sheet1") -> tuple[dict[str, bool], dict[str, str]]:
    """Per cell of the first row and of the second: (bold?, number format) from the XML."""
    with zipfile.ZipFile(path) as archive:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
        worksheet = ElementTree.fromstring(archive.read(f"xl/worksheets/{sheet}.xml"))
    codes = {f.get("numFmtId"): f.get("formatCode") for f in styles.iter(f"{MAIN}numFmt")}
    codes.update({"0": "General", "3": "#,##0", "4": "#,##0.00"})  # built-in formats
    fonts = [f.find(f"{MAIN}b") is not None for f in styles.find(f"{MAIN}fonts") or []]
    xfs = list(styles.find(f"{MAIN}cellXfs") or [])
    bold: dict[str, bool] = {}
    number: dict[str, str] = {}
    for cell in worksheet.iter(f"{MAIN}c"):
        xf = xfs[int(cell.get("s", "0"))]
        reference = cell.get("r", "")
        bold[reference] = fonts[int(xf.get("fontId", "0"))]
        number[reference] = codes.get(xf.get("numFmtId", "0"), "?")
    return bold, number


def test_xlsx_has_a_bold_frozen_header_and_money_in_a_money_format(
    tea: Tenant, files: Files, tmp_path: Path
) -> None:
    fill(tea, files)
    frame = frames_of(tea)["products"]  # sku, name_zh, name_en, category, price

    path = export.write_table(frame, tmp_path / "products.xlsx", timezone=TIMEZONE)

    bold, number = _cell_formats(path)
    assert [bold[f"{c}1"] for c in "ABCDE"] == [True] * 5
    assert [bold[f"{c}2"] for c in "ABCDE"] == [False] * 5
    assert number["E2"] == export.MONEY_FORMAT == "#,##0.00"
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    pane = re.search(r"<pane [^>]*/>", sheet)
    assert pane is not None
    assert 'ySplit="1"' in pane.group()
    assert 'state="frozen"' in pane.group()
    read = pl.from_arrow(fastexcel.read_excel(path).load_sheet(0).to_arrow())
    assert isinstance(read, pl.DataFrame)
    assert read.columns == ["sku", "name_zh", "name_en", "category", "price"]
    assert read.select("sku", "price").rows() == [("cake", 15.0), ("tea1", 18.0),
                                                  ("tea2", 22.5)]  # fmt: skip


def test_xlsx_formats_dates_times_and_counts(tea: Tenant, files: Files, tmp_path: Path) -> None:
    fill(tea, files)
    frame = frames_of(tea)["members"].select("member_id", "birthday", "enrolled_at",
                                             "available_points")  # fmt: skip

    path = export.write_table(frame, tmp_path / "members.xlsx", timezone=TIMEZONE)

    _, number = _cell_formats(path)
    assert (number["B2"], number["C2"], number["D2"]) == (
        "yyyy-mm-dd",
        "yyyy-mm-dd hh:mm:ss",
        "#,##0",
    )
    read = pl.from_arrow(fastexcel.read_excel(path).load_sheet(0).to_arrow())
    assert isinstance(read, pl.DataFrame)
    assert read.row(0)[:3] == ("A1", datetime(1990, 5, 1), datetime(2026, 1, 1, 10, 0))


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        export.write_table(pl.DataFrame({"a": [1]}), tmp_path / "out.json")

    (error,) = caught.value.errors
    assert (error.loc, error.key, error.params) == (
        "format",
        "dataio.export.unknown_format",
        {"format": "json"},
    )
    assert error.render("en") == "format: json is not an export format (csv, xlsx, parquet)"
    assert export.format_of(tmp_path / "out.json", "XLSX") == "xlsx"
    assert export.format_of(tmp_path / "out") == "csv"


def test_several_tables_are_sheets_of_one_workbook_or_files_side_by_side(
    tmp_path: Path,
) -> None:
    tables = {"one": pl.DataFrame({"a": [1]}), "two": pl.DataFrame({"b": ["x", "y"]})}

    workbook = export.write_tables(tables, tmp_path / "both.xlsx")
    csvs = export.write_tables(tables, tmp_path / "both.csv")

    assert workbook == [tmp_path / "both.xlsx"]
    assert fastexcel.read_excel(workbook[0]).sheet_names == ["one", "two"]
    assert csvs == [tmp_path / "both-one.csv", tmp_path / "both-two.csv"]
    assert csvs[1].read_bytes() == b"\xef\xbb\xbfb\nx\ny\n"


# --- the ledger and the liability ----------------------------------------------------------------


def _bring_up_to_date(tenant: Tenant) -> None:
    with tenant.state.database.session(tenant_id=tenant.id) as session:
        ctx = LedgerContext(session, tenant.id, FIXED_NOW, tenant.state.vault, "test")
        run_jobs(ctx, as_of=FIXED_NOW)


def _available(session: Session) -> dict[str, int]:
    query = select(Member.member_id, MemberStateRow.available).join(
        MemberStateRow, MemberStateRow.member_pk == Member.id
    )
    return dict(session.execute(query).all())  # type: ignore[arg-type]


def test_the_ledger_export_runs_each_members_balance_to_their_available_points(
    tea: Tenant, files: Files, tmp_path: Path
) -> None:
    fill(tea, files)
    _bring_up_to_date(tea)  # pending points released, birthdays given, as of now

    with tea.state.database.session(tenant_id=tea.id) as session:
        ledger = export.ledger_frame(session)
        available = _available(session)
        only_a1 = export.ledger_frame(session, "A1")

    last = ledger.group_by("member_id", maintain_order=True).last()
    assert dict(last.select("member_id", "balance").iter_rows()) == available
    # A1: 200 welcome, 42 for O1, 15 back for the returned cake, 49 for O4 (50 yuan less the
    # 1 yuan paid with 100 points), those 100 points, 300 on the birthday
    assert available["A1"] == 200 + 42 - 15 + 49 - 100 + 300
    assert only_a1["member_id"].unique().to_list() == ["A1"]
    assert (
        only_a1["balance"].to_list()
        == ledger.filter(pl.col("member_id") == "A1")["balance"].to_list()
    )
    path = export.write_table(ledger, tmp_path / "ledger.parquet")
    assert pl.read_parquet(path)["balance"].to_list() == ledger["balance"].to_list()


def test_the_liability_export_is_a_workbook_with_two_sheets(
    tea: Tenant, files: Files, tmp_path: Path
) -> None:
    fill(tea, files)
    _bring_up_to_date(tea)

    with tea.state.database.session(tenant_id=tea.id) as session:
        frames = export.liability_frames(session, as_of=FIXED_NOW)
        available = sum(_available(session).values())

    paths = export.write_tables(frames, tmp_path / "liability.xlsx", timezone=TIMEZONE)

    assert paths == [tmp_path / "liability.xlsx"]
    workbook = fastexcel.read_excel(paths[0])
    assert workbook.sheet_names == ["by_expiry_month", "flows"]
    by_month = pl.from_arrow(workbook.load_sheet("by_expiry_month").to_arrow())
    assert isinstance(by_month, pl.DataFrame)
    assert by_month.columns == ["month", "points", "value"]
    assert by_month["points"].sum() == available
    assert by_month["value"].sum() == pytest.approx(available / 100)
