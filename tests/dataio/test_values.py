"""Reading the values of client exports: dates, money, whole numbers and choices.

Each reader is a Polars expression applied to a whole column. The importer first passes
every cell through ``normalise_text`` (full-width characters to ASCII, spaces trimmed,
empty to null) and then through the reader of the field's type, so the tests do the same
(``read``). A value that cannot be read becomes null; ``looks_like_date`` and
``amount_has_fraction_of_fen`` tell the importer *why*, for the rejects file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import polars as pl
import pytest

from memberlab.dataio import kinds, values

Reader = Callable[[pl.Expr], pl.Expr]


def read(reader: Reader, *texts: str | None) -> list[object]:
    """``reader`` applied to ``texts`` as the importer applies it: after ``normalise_text``."""
    frame = pl.DataFrame({"cell": pl.Series(texts, dtype=pl.String)})
    return frame.select(reader(values.normalise_text(pl.col("cell")))).to_series().to_list()


def one(reader: Reader, text: str | None) -> object:
    return read(reader, text)[0]


# --- text ------------------------------------------------------------------------------------


def test_normalise_text_turns_full_width_into_ascii_and_blank_into_null() -> None:
    cells = ["　１２３　", "ＡＢＣ－ｘｙｚ", "  ", "", None, "12。5", "￥12"]
    frame = pl.DataFrame({"cell": pl.Series(cells, dtype=pl.String)})

    normalised = frame.select(values.normalise_text(pl.col("cell"))).to_series().to_list()

    assert normalised == ["123", "ABC-xyz", None, None, None, "12.5", "¥12"]


# --- dates and times -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25", datetime(2026, 11, 25)),
        ("2026/11/25", datetime(2026, 11, 25)),
        ("2026/1/5", datetime(2026, 1, 5)),
        ("2026-1-5", datetime(2026, 1, 5)),
        ("2026.11.25", datetime(2026, 11, 25)),
        ("20261125", datetime(2026, 11, 25)),
        ("2026年11月25日", datetime(2026, 11, 25)),
        ("2026年11月25号", datetime(2026, 11, 25)),
        ("2026-11-25 14:30", datetime(2026, 11, 25, 14, 30)),
        ("2026-11-25 14:30:15", datetime(2026, 11, 25, 14, 30, 15)),
        ("2026/11/25 14:30", datetime(2026, 11, 25, 14, 30)),
        ("2026年11月25日 14:30", datetime(2026, 11, 25, 14, 30)),
        ("2026年1月5日12时30分", datetime(2026, 1, 5, 12, 30)),
        ("2026年1月5日 12点30分15秒", datetime(2026, 1, 5, 12, 30, 15)),
        ("2026-11-25T14:30:00", datetime(2026, 11, 25, 14, 30)),
        ("２０２６－１１－２５", datetime(2026, 11, 25)),  # full-width digits and dashes
        ("２０２６年１１月２５日　１４：３０", datetime(2026, 11, 25, 14, 30)),
        # Excel's serial day numbers (days since 1899-12-30), when a date cell lost its format
        ("46000", datetime(2025, 12, 9)),
        ("45658", datetime(2025, 1, 1)),
    ],
)
def test_every_usual_way_of_writing_a_date_is_read(text: str, expected: datetime) -> None:
    assert one(values.parse_datetime, text) == expected
    assert one(values.parse_date, text) == expected.date()


def test_dates_are_read_as_naive_local_times_in_microseconds() -> None:
    frame = pl.DataFrame({"cell": ["2026-11-25 14:30"]})

    parsed = frame.select(values.parse_datetime(pl.col("cell"))).to_series()

    assert parsed.dtype == pl.Datetime("us")
    assert parsed.dtype.time_zone is None  # type: ignore[union-attr]


def test_fractions_of_a_second_are_kept() -> None:
    text = "2026-11-25 14:30:15.5"

    assert one(values.looks_like_date, text) is True
    assert one(values.parse_datetime, text) == datetime(2026, 11, 25, 14, 30, 15, 500_000)


def test_an_excel_serial_with_a_time_of_day_is_read() -> None:
    assert one(values.parse_datetime, "46000.5") == datetime(2025, 12, 9, 12, 0)
    assert one(values.parse_datetime, "46000.25") == datetime(2025, 12, 9, 6, 0)


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "2026/4/31", "2025年2月29日"])
def test_a_date_that_does_not_exist_has_the_shape_of_a_date_but_no_value(text: str) -> None:
    """The importer says "no such date" rather than "not a date" for these."""
    assert one(values.looks_like_date, text) is True
    assert one(values.parse_datetime, text) is None


@pytest.mark.parametrize("text", ["abc", "2026", "11/25/2026 x", "明天", "25-11"])
def test_text_that_is_not_a_date_is_not_read_and_does_not_look_like_one(text: str) -> None:
    assert one(values.looks_like_date, text) is False
    assert one(values.parse_datetime, text) is None


def test_an_empty_cell_is_null_not_an_error() -> None:
    assert read(values.parse_datetime, None, "", "  ") == [None, None, None]


def test_a_whole_column_is_read_at_once_each_row_on_its_own() -> None:
    column = ["2026-11-25", "abc", "2026年1月5日", None, "2026-02-30"]

    assert read(values.parse_date, *column) == [
        date(2026, 11, 25),
        None,
        date(2026, 1, 5),
        None,
        None,
    ]
    assert read(values.looks_like_date, *column) == [True, False, True, None, True]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T14:30:00+08:00", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        ("2026-11-25 14:30:00+0800", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        ("2026-11-25T14:30+08", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        ("2026-11-25T06:30:00Z", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        ("2026-11-25t06:30:00.125z", datetime(2026, 11, 25, 6, 30, 0, 125_000, tzinfo=UTC)),
        ("2026-11-24T23:30:00-07:00", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        ("2026-1-5T09:00:00+05:30", datetime(2026, 1, 5, 3, 30, tzinfo=UTC)),
        ("2026/11/25 14:30:00+08:00", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
        (
            "２０２６－１１－２５Ｔ１４：３０：００＋０８：００",
            datetime(2026, 11, 25, 6, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_time_with_an_offset_is_read_as_the_instant_it_names(
    text: str, expected: datetime
) -> None:
    assert one(values.parse_offset_instant, text) == expected
    assert one(values.looks_like_date, text) is True


@pytest.mark.parametrize(
    "text", ["2026-11-25 14:30:00", "2026-11-25", "2026年11月25日 14:30", "46000.5", "abc"]
)
def test_a_time_without_an_offset_is_left_to_be_read_as_a_wall_time(text: str) -> None:
    assert one(values.parse_offset_instant, text) is None


@pytest.mark.parametrize(
    "text", ["2026-02-30T14:30:00+08:00", "2026-11-25T14:30:00+25:00", "2026/2/30 14:30+08:00"]
)
def test_an_impossible_date_or_offset_is_not_an_instant_but_looks_like_a_date(text: str) -> None:
    assert one(values.parse_offset_instant, text) is None
    assert one(values.looks_like_date, text) is True


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12", 1200),
        ("12.5", 1250),
        ("12.50", 1250),
        ("0.01", 1),
        ("0", 0),
        ("¥1,234.50", 123450),
        ("￥12", 1200),  # full-width yuan sign
        ("1234.5元", 123450),
        ("RMB 12", 1200),
        ("rmb12.30", 1230),
        ("CNY 8", 800),
        ("１２", 1200),  # full-width digits
        ("１，２３４．５０", 123450),
        ("1,234", 123400),
        ("+5", 500),
        ("-5", -500),
        ("(12.00)", -1200),  # accountants' negative
        ("12.340", 1234),  # a trailing zero is not a fraction of a fen
        ("12.3400", 1234),
    ],
)
def test_amounts_are_read_in_fen(text: str, fen: int) -> None:
    assert one(values.parse_amount, text) == fen
    assert one(values.amount_has_fraction_of_fen, text) is False


@pytest.mark.parametrize("text", ["12.345", "12.005", "0.001", "12.3450", "¥1,234.567", "(1.234)"])
def test_more_than_two_decimals_is_a_fraction_of_a_fen_refused_not_rounded(text: str) -> None:
    assert one(values.amount_has_fraction_of_fen, text) is True
    assert one(values.parse_amount, text) is None


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0.29", 29), ("1.15", 115), ("4.35", 435), ("8.07", 807), ("19.99", 1999),
     ("9,999,999,999.99", 999_999_999_999), ("92233720368.54", 9_223_372_036_854)],
)  # fmt: skip
def test_amounts_are_exact_to_the_fen(text: str, fen: int) -> None:
    """Decimal amounts that binary floating point cannot hold exactly still come out right."""
    assert one(values.parse_amount, text) == fen


@pytest.mark.parametrize("text", ["abc", "12元5角", "1e3", ".5", "1.2.3", "--5", "¥", "12-"])
def test_text_that_is_not_money_is_not_read(text: str) -> None:
    assert one(values.parse_amount, text) is None
    assert one(values.amount_has_fraction_of_fen, text) is False


def test_amounts_are_whole_fen_as_int64() -> None:
    frame = pl.DataFrame({"cell": ["¥1,234.50", "abc", None]})

    fen = frame.select(values.parse_amount(pl.col("cell"))).to_series()

    assert fen.dtype == pl.Int64
    assert fen.to_list() == [123450, None, None]


# --- whole numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("3", 3), ("3.0", 3), ("3.00", 3), ("1,000", 1000), ("+4", 4), ("-2", -2), (" 7 ", 7),
     ("１２", 12), ("0", 0)],
)  # fmt: skip
def test_whole_numbers_are_read(text: str, number: int) -> None:
    assert one(values.parse_integer, text) == number


@pytest.mark.parametrize("text", ["3.5", "3.01", "abc", "1e3", "3个", "½"])
def test_a_number_with_a_fraction_or_text_is_not_a_whole_number(text: str) -> None:
    assert one(values.parse_integer, text) is None


# --- choices -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("门店", "store"),
        ("堂食", "store"),
        ("STORE", "store"),
        ("POS", "store"),
        ("外卖", "delivery"),
        ("美团", "delivery"),
        ("Mini Program", "mini_program"),
        ("mini-program", "mini_program"),
        ("mini_program", "mini_program"),
        ("微信小程序", "mini_program"),
        ("App", "app"),
        ("线上", "online"),
    ],
)
def test_channels_are_read_from_their_many_spellings(text: str, code: str) -> None:
    assert one(lambda c: values.parse_choice(c, kinds.CHANNELS), text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [("男", "male"), ("M", "male"), ("先生", "male"), ("女", "female"), ("F", "female"),
     ("Female", "female"), ("保密", "unknown"), ("其他", "other")],
)  # fmt: skip
def test_genders_are_read_from_their_many_spellings(text: str, code: str) -> None:
    assert one(lambda c: values.parse_choice(c, kinds.GENDERS), text) == code


def test_an_unknown_choice_is_null_so_the_importer_can_refuse_or_keep_it() -> None:
    assert read(lambda c: values.parse_choice(c, kinds.GENDERS), "x", "门店", None) == [
        None,
        None,
        None,
    ]
    assert one(lambda c: values.parse_choice(c, kinds.CHANNELS), "男") is None
