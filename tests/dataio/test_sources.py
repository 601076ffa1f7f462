"""Opening client files: CSV in the encodings Chinese systems write, XLSX and Parquet.

``read_source`` decides by the bytes, not the file name. Everything comes back as text
(Parquet keeps its types), with a ``_row`` column holding the row number a spreadsheet
shows (the header is row 1). Problems with the whole file are ``InvalidInput`` naming the
file; rows with the wrong number of fields come back as ``bad_rows`` and the other rows
are kept.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from memberlab.core.errors import InvalidInput
from memberlab.dataio.sources import BadRow, Source, read_source

if TYPE_CHECKING:
    from tests.dataio.conftest import Files

HEADER = ["会员卡号", "姓名", "城市"]
ROWS = [["A1", "张三", "上海"], ["A2", "李四", "北京"], ["A3", "王小明", "深圳"]]
TABLE = "\r\n".join(",".join(row) for row in [HEADER, *ROWS]) + "\r\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def cells(source: Source) -> list[tuple[object, ...]]:
    """The rows as read, without the row numbers."""
    return source.frame.drop("_row").rows()


def row_numbers(source: Source) -> list[int]:
    return source.frame["_row"].to_list()


def refusal(path: Path, **kwargs: str) -> tuple[str, str, dict[str, object]]:
    """How ``read_source`` refuses a file: (where, message key, parameters)."""
    with pytest.raises(InvalidInput) as caught:
        read_source(path, **kwargs)
    (error,) = caught.value.errors
    return error.loc, error.key, error.params


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (TABLE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TABLE.encode("utf-8"), "utf-8-sig"),  # Excel's "CSV UTF-8"
        (TABLE.encode("gbk"), "gbk"),  # Excel's "CSV" on a Chinese Windows
        (TABLE.encode("utf-16"), "utf-16"),  # with its byte order mark
        (b"\xfe\xff" + TABLE.encode("utf-16-be"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_the_same_table_reads_the_same_in_every_usual_encoding(
    tmp_path: Path, encoded: bytes, encoding: str
) -> None:
    source = read_source(write(tmp_path, "members.csv", encoded))

    assert source.format == "csv"
    assert source.encoding == encoding
    assert source.separator == ","
    assert source.headers == HEADER  # no byte order mark left on the first header
    assert cells(source) == [tuple(row) for row in ROWS]
    assert row_numbers(source) == [2, 3, 4]


def test_gb18030_is_recognised_by_the_characters_gbk_does_not_have(tmp_path: Path) -> None:
    """䶮 (U+4DAE) and 𠮷 (U+20BB7) exist in GB18030 only: the file is not GBK."""
    for name in ("刘䶮", "吉𠮷"):
        with pytest.raises(UnicodeEncodeError):
            name.encode("gbk")
    text = "会员卡号,姓名\r\nA1,刘䶮\r\nA2,吉𠮷\r\nA3,张三\r\n"

    source = read_source(write(tmp_path, "members.csv", text.encode("gb18030")))

    assert source.encoding == "gb18030"
    assert cells(source) == [("A1", "刘䶮"), ("A2", "吉𠮷"), ("A3", "张三")]


def test_a_file_in_big5_is_not_guessed_but_reads_when_its_encoding_is_given(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "members.csv", "會員編號,姓名\r\nA1,張三\r\n".encode("big5"))

    assert refusal(path) == ("members.csv", "dataio.file.unknown_encoding", {})

    source = read_source(path, encoding="big5")
    assert source.encoding == "big5"
    assert source.headers == ["會員編號", "姓名"]
    assert cells(source) == [("A1", "張三")]


@pytest.mark.parametrize(
    "encoded",
    [
        "name,city\r\ncafé,Zürich\r\nnaïve,Genève\r\n".encode("latin-1"),
        "ﾃｽﾄ,ｶﾅ\r\nｱｲｳ,ｴｵ\r\n".encode("shift_jis"),  # half-width katakana
    ],
    ids=["latin-1", "shift-jis"],
)
def test_bytes_that_do_not_read_as_chinese_are_an_unknown_encoding(
    tmp_path: Path, encoded: bytes
) -> None:
    path = write(tmp_path, "export.csv", encoded)

    assert refusal(path) == ("export.csv", "dataio.file.unknown_encoding", {})


def test_a_given_encoding_that_does_not_fit_names_the_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "members.csv", "会员卡号\r\n张三\r\n".encode("gbk"))

    assert refusal(path, encoding="utf-8") == (
        "members.csv",
        "dataio.file.not_in_encoding",
        {"encoding": "utf-8", "offset": 0},
    )
    assert refusal(path, encoding="klingon") == (
        "members.csv",
        "dataio.file.unknown_encoding_name",
        {"encoding": "klingon"},
    )


def test_a_file_that_starts_as_utf8_but_breaks_off_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "members.csv", b"\xef\xbb\xbfid,name\r\nA1,\xd5\xc5\r\n")

    assert refusal(path) == (
        "members.csv",
        "dataio.file.bad_bytes",
        {"encoding": "UTF-8", "offset": 12},
    )


# --- separators, quotes and line breaks --------------------------------------------------------


@pytest.mark.parametrize("separator", ["\t", ";", "|"])
def test_tab_semicolon_and_pipe_separated_files_are_recognised(
    tmp_path: Path, separator: str
) -> None:
    text = "\r\n".join(separator.join(row) for row in [HEADER, *ROWS]) + "\r\n"

    source = read_source(write(tmp_path, "members.txt", text.encode("utf-8")))

    assert source.separator == separator
    assert source.headers == HEADER
    assert cells(source) == [tuple(row) for row in ROWS]


def test_a_comma_inside_a_semicolon_file_is_part_of_the_value(tmp_path: Path) -> None:
    text = "会员卡号;实付金额\nA1;1,5\nA2;1.234,50\n"

    source = read_source(write(tmp_path, "orders.csv", text.encode("utf-8")))

    assert source.separator == ";"
    assert cells(source) == [("A1", "1,5"), ("A2", "1.234,50")]


def test_quoted_fields_keep_their_commas_quotes_and_line_breaks(tmp_path: Path) -> None:
    """A record spanning two lines is one row: the rows after it keep the numbers of their
    records (as Excel shows them), not of the lines."""
    text = (
        "会员卡号,意见建议,城市\r\n"
        'A1,"好喝, 但是太甜",上海\r\n'
        'A2,"第一行\r\n第二行",北京\r\n'
        'A3,"他说""不错""",深圳\r\n'
        "A4,,广州\r\n"
    )

    source = read_source(write(tmp_path, "responses.csv", text.encode("utf-8")))

    assert cells(source) == [
        ("A1", "好喝, 但是太甜", "上海"),
        ("A2", "第一行\r\n第二行", "北京"),
        ("A3", '他说"不错"', "深圳"),
        ("A4", None, "广州"),
    ]
    assert row_numbers(source) == [2, 3, 4, 5]
    assert source.bad_rows == []


def test_blank_lines_are_skipped_but_still_counted(tmp_path: Path) -> None:
    text = "会员卡号,姓名\r\nA1,张三\r\n\r\n   \r\nA2,李四\r\n\r\n"

    source = read_source(write(tmp_path, "members.csv", text.encode("utf-8")))

    assert cells(source) == [("A1", "张三"), ("A2", "李四")]
    assert row_numbers(source) == [2, 5]


def test_a_row_of_only_separators_is_an_empty_row_and_is_skipped(tmp_path: Path) -> None:
    text = "会员卡号,姓名,城市\r\nA1,张三,上海\r\n,,\r\nA2,李四,北京\r\n"

    source = read_source(write(tmp_path, "members.csv", text.encode("utf-8")))

    assert cells(source) == [("A1", "张三", "上海"), ("A2", "李四", "北京")]
    assert row_numbers(source) == [2, 4]


def test_rows_with_too_many_or_too_few_fields_are_bad_rows_and_the_others_are_kept(
    tmp_path: Path,
) -> None:
    text = "会员卡号,姓名,城市\nA1,张三,上海\nA2,李四\nA3,王五,深圳,多余\nA4,赵六,广州\n"

    source = read_source(write(tmp_path, "members.csv", text.encode("utf-8")))

    assert cells(source) == [("A1", "张三", "上海"), ("A4", "赵六", "广州")]
    assert row_numbers(source) == [2, 5]
    assert source.bad_rows == [
        BadRow(3, "dataio.v.field_count", {"expected": 3, "found": 2}),
        BadRow(4, "dataio.v.field_count", {"expected": 3, "found": 4}),
    ]


def test_ragged_rows_are_found_in_a_file_with_multi_line_fields_too(tmp_path: Path) -> None:
    text = '会员卡号,意见建议\r\nA1,"两行\r\n意见"\r\nA2,好,多余\r\nA3\r\nA4,好\r\n'

    source = read_source(write(tmp_path, "responses.csv", text.encode("utf-8")))

    assert cells(source) == [("A1", "两行\r\n意见"), ("A4", "好")]
    assert row_numbers(source) == [2, 5]
    assert source.bad_rows == [
        BadRow(3, "dataio.v.field_count", {"expected": 2, "found": 3}),
        BadRow(4, "dataio.v.field_count", {"expected": 2, "found": 1}),
    ]


def test_headers_are_trimmed_and_empty_ones_get_a_name(tmp_path: Path) -> None:
    text = " 会员卡号 ,姓名,\r\nA1,张三,x\r\n"

    source = read_source(write(tmp_path, "members.csv", text.encode("utf-8")))

    assert source.headers == ["会员卡号", "姓名", "column_3"]
    assert cells(source) == [("A1", "张三", "x")]


def test_values_stay_text_so_leading_zeros_survive(tmp_path: Path) -> None:
    text = "store_id,手机号,金额\r\n001,013812345678,0012.50\r\n"

    source = read_source(write(tmp_path, "stores.csv", text.encode("utf-8")))

    assert source.frame.drop("_row").schema == pl.Schema(
        {"store_id": pl.String, "手机号": pl.String, "金额": pl.String}
    )
    assert cells(source) == [("001", "013812345678", "0012.50")]


# --- Excel -------------------------------------------------------------------------------------


def test_the_first_sheet_of_a_workbook_is_read_by_default(files: Files) -> None:
    path = files.xlsx(
        "members.xlsx",
        {
            "会员": [
                ["会员卡号", "手机号", "生日", "入会时间", "积分"],
                ["A1", 13812345678, date(1990, 5, 1), datetime(2026, 1, 5, 12, 30), 3],
                ["A2", "13912345678", "1991/2/3", "2026年1月6日", 12.5],
            ],
            "门店": [["门店编号", "门店名称"], ["001", "一号店"]],
        },
    )

    source = read_source(path)

    assert (source.format, source.sheet, source.encoding) == ("xlsx", "会员", None)
    assert source.headers == ["会员卡号", "手机号", "生日", "入会时间", "积分"]
    assert cells(source) == [
        # a mobile typed as a number stays its digits; real dates come back as dates
        ("A1", "13812345678", "1990-05-01 00:00:00", "2026-01-05 12:30:00", "3"),
        ("A2", "13912345678", "1991/2/3", "2026年1月6日", "12.5"),
    ]
    assert row_numbers(source) == [2, 3]


def test_another_sheet_is_read_by_name_and_an_unknown_one_names_those_there_are(
    files: Files,
) -> None:
    path = files.xlsx(
        "export.xlsx",
        {
            "会员": [["会员卡号"], ["A1"]],
            "门店": [["门店编号", "门店名称"], ["001", "一号店"], [2, "二号店"]],
        },
    )

    source = read_source(path, sheet="门店")

    assert source.sheet == "门店"
    assert cells(source) == [("001", "一号店"), ("2", "二号店")]
    assert refusal(path, sheet="Stores") == (
        "export.xlsx",
        "dataio.file.no_sheet",
        {"sheet": "Stores", "sheets": "会员, 门店"},
    )


def test_empty_rows_in_a_sheet_are_skipped_and_the_others_keep_their_numbers(
    files: Files,
) -> None:
    path = files.xlsx(
        "members.xlsx",
        {"Sheet1": [["会员卡号", "姓名"], ["A1", "张三"], [], [None, None], ["A2", "李四"]]},
    )

    source = read_source(path)

    assert cells(source) == [("A1", "张三"), ("A2", "李四")]
    assert row_numbers(source) == [2, 5]


def test_a_sheet_with_only_a_header_has_no_rows(files: Files) -> None:
    path = files.xlsx("members.xlsx", {"Sheet1": [["会员卡号", "姓名"]]})

    assert refusal(path) == ("members.xlsx", "dataio.file.no_rows", {})


def test_two_columns_with_the_same_header_in_a_sheet_are_refused(files: Files) -> None:
    path = files.xlsx(
        "members.xlsx",
        {"Sheet1": [["会员卡号", "手机号", "手机号"], ["A1", "13812345678", "13912345678"]]},
    )

    assert refusal(path) == (
        "members.xlsx",
        "dataio.file.duplicate_header",
        {"header": "手机号"},
    )


def test_a_workbook_cut_in_half_is_damaged(files: Files) -> None:
    whole = files.xlsx("whole.xlsx", {"Sheet1": [["会员卡号"], *[[f"A{n}"] for n in range(200)]]})
    data = whole.read_bytes()
    half = files.raw("half.xlsx", data[: len(data) // 2])

    where, key, params = refusal(half)

    assert (where, key, params["format"]) == ("half.xlsx", "dataio.file.damaged", "XLSX")
    assert params["reason"]


def test_a_zip_archive_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "members.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("members.csv", "会员卡号\nA1\n")

    assert refusal(path) == ("members.xlsx", "dataio.file.not_xlsx", {})


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_columns_keep_their_types(files: Files) -> None:
    frame = pl.DataFrame(
        {
            "会员卡号": ["A1", "A2"],
            "下单时间": [datetime(2026, 1, 5, 12, 30), datetime(2026, 1, 6, 9, 0)],
            "生日": [date(1990, 5, 1), date(1991, 2, 3)],
            "实付金额": [12.5, 0.1 + 0.2],
            "数量": [1, 3],
        }
    )
    path = files.parquet("orders.parquet", frame)

    source = read_source(path)

    assert (source.format, source.encoding, source.sheet) == ("parquet", None, None)
    assert source.headers == list(frame.columns)
    assert source.frame.drop("_row").schema == frame.schema
    assert source.frame.drop("_row").equals(frame)
    assert row_numbers(source) == [2, 3]


def test_a_parquet_file_cut_short_is_damaged(files: Files) -> None:
    frame = pl.DataFrame({"会员卡号": [f"A{n}" for n in range(500)]})
    data = files.parquet("whole.parquet", frame).read_bytes()
    cut = files.raw("cut.parquet", data[: len(data) // 2])

    where, key, params = refusal(cut)

    assert (where, key, params["format"]) == ("cut.parquet", "dataio.file.damaged", "Parquet")


def test_a_parquet_file_without_rows_has_no_rows(files: Files) -> None:
    path = files.parquet("empty.parquet", pl.DataFrame(schema={"会员卡号": pl.String}))

    assert refusal(path) == ("empty.parquet", "dataio.file.no_rows", {})


# --- files that cannot be read at all ------------------------------------------------------------


def _random_bytes() -> bytes:
    generator = random.Random(7)
    return bytes(generator.randrange(256) for _ in range(2000)) + b"\x00"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"", "dataio.file.empty"),
        (b"\xef\xbb\xbf", "dataio.file.empty"),  # only the byte order mark
        (b"\xef\xbb\xbf\r\n \r\n", "dataio.file.empty"),
        (b"  \n\n", "dataio.file.empty"),
        pytest.param(
            "会员卡号,姓名\r\n".encode(),
            "dataio.file.no_rows",
        ),
        ("会员卡号,姓名\r\n\r\n\r\n".encode(), "dataio.file.no_rows"),
        pytest.param(
            "会员卡号,姓名".encode(),
            "dataio.file.no_rows",
        ),
        (b",,\r\nA1,x,y\r\n", "dataio.file.no_header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "dataio.file.binary"),
        (_random_bytes(), "dataio.file.binary"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "dataio.file.old_excel"),
        ("会员卡号,姓名,会员卡号\r\nA1,x,A2\r\n".encode(), "dataio.file.duplicate_header"),
    ],
    ids=[
        "empty",
        "only-bom",
        "bom-and-blank-lines",
        "blank-lines",
        "header-only",
        "header-and-blank-lines",
        "header-without-line-end",
        "empty-header",
        "png",
        "random-bytes",
        "old-xls",
        "duplicate-header",
    ],
)
def test_files_that_cannot_be_imported_are_refused_with_their_name(
    tmp_path: Path, data: bytes, key: str
) -> None:
    path = write(tmp_path, "client file.csv", data)

    where, found, _ = refusal(path)

    assert (where, found) == ("client file.csv", key)


def test_a_duplicate_header_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "members.csv", "会员卡号,手机号, 手机号 \r\nA1,1,2\r\n".encode())

    assert refusal(path) == ("members.csv", "dataio.file.duplicate_header", {"header": "手机号"})


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    where, key, params = refusal(tmp_path / "nowhere.csv")

    assert (where, key) == ("nowhere.csv", "dataio.file.unreadable")
    assert params["reason"]


def test_file_errors_read_well_in_both_languages(tmp_path: Path) -> None:
    path = write(tmp_path, "会员.csv", b"\xd0\xcf\x11\xe0" + bytes(100))

    with pytest.raises(InvalidInput) as caught:
        read_source(path)

    (error,) = caught.value.errors
    assert error.render("en") == (
        "会员.csv: is an old-style Excel file (.xls); save it as .xlsx or CSV and try again"
    )
    assert error.render("zh-CN") == (
        "会员.csv: 是旧版 Excel 文件（.xls），请另存为 .xlsx 或 CSV 后再导入"
    )
