"""Reading the values found in client exports, as vectorised Polars expressions.

Exports from Chinese retail systems write the same thing in many ways: full-width digits
and spaces (１２３　), dates as ``2026-11-25``, ``2026/11/25``, ``2026年11月25日`` or an Excel
serial number, amounts with ``¥``, ``元`` and thousands separators. Each ``parse_*`` function
turns a column into one canonical type and leaves null where the text cannot be read; the
importer compares with the original to say which rows could not be read and why.
"""

from __future__ import annotations

import polars as pl

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space map to their ASCII forms;
# ￥ and the ideographic full stop (used as a decimal point by some IMEs) too.
_FULL_WIDTH = [chr(code) for code in range(0xFF01, 0xFF5F)] + ["\u3000", "\uffe5", "。"]
_HALF_WIDTH = [chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)] + [" ", "¥", "."]

# The shape of date and time text after ``date_text``.
_DATE_SHAPE = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]+)?$"
# Excel stores dates as days since 1899-12-30; 20000..80000 is 1954..2119.
_EXCEL_SERIAL = r"^[0-9]{5}(\.[0-9]+)?$"
_EXCEL_EPOCH = pl.datetime(1899, 12, 30)


FULL_WIDTH_PATTERN = "[\uff01-\uff5e\u3000\uffe5。]"


def normalise_text(column: pl.Expr, *, full_width: bool = True) -> pl.Expr:
    """Full-width characters to ASCII, surrounding white space removed, empty to null.

    ``full_width=False`` skips the first step for a column known to have none (the caller
    checked with ``FULL_WIDTH_PATTERN``): most columns of most files.
    """
    text = column.str.replace_many(_FULL_WIDTH, _HALF_WIDTH) if full_width else column
    text = text.str.strip_chars()
    return pl.when((text == "") | text.is_in(SKIPPED)).then(None).otherwise(text)


# what survey tools write for a question not shown or not answered (问卷星: "(跳过)", "(空)")
SKIPPED = ["(跳过)", "(空)", "（跳过）", "（空）"]


_DATE_WORDS = ["年", "月", "日", "号", "/", "时", "点", "分", "秒", "T"]
_DATE_MARKS = ["-", "-", " ", " ", "-", ":", ":", ":", "", " "]


def date_text(column: pl.Expr) -> pl.Expr:
    """``2026年11月25日 12时30分`` and ``2026/11/25T12:30`` to ``2026-11-25 12:30:00``.

    Every accepted form becomes ``Y-M-D H:M:S[.f]``, so one ``strptime`` reads them all.
    Literal replacements (one pass, Aho-Corasick) do most of the work; the few regular
    expressions are anchored, so rows already in shape cost little.
    """
    text = (
        column.str.replace_many(_DATE_WORDS, _DATE_MARKS)
        .str.replace(r"^([0-9]{4})\.([0-9]{1,2})\.([0-9]{1,2})", "$1-$2-$3")
        .str.replace(r"^([0-9-]+)  +", "$1 ")
        .str.strip_chars(" :")
    )
    return (
        text.str.replace(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})$", "$1 00:00:00")
        .str.replace(r"^([0-9]{4})([0-9]{2})([0-9]{2})$", "$1-$2-$3 00:00:00")
        .str.replace(r"^([0-9-]+ [0-9]{1,2}:[0-9]{1,2})$", "$1:00")
    )


def parse_date_text(text: pl.Expr) -> pl.Expr:
    """A naive local datetime (µs) from the output of ``date_text``; null if unreadable."""
    clock = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False, exact=True)
    serial = (
        pl.when(text.str.contains(_EXCEL_SERIAL))
        .then(
            _EXCEL_EPOCH
            + pl.duration(
                microseconds=(text.cast(pl.Float64, strict=False) * 86_400_000_000).round(0)
            )
        )
        .otherwise(None)
        .cast(pl.Datetime("us"))
    )
    return pl.coalesce(clock, serial)


def parse_datetime(column: pl.Expr) -> pl.Expr:
    """A naive local datetime (µs) from any of the accepted forms; null if unreadable."""
    return parse_date_text(date_text(column))


def looks_like_date(column: pl.Expr) -> pl.Expr:
    """True where the text has the shape of a date (so a null parse means no such day)."""
    return date_text(column).str.contains(_DATE_SHAPE) | column.str.contains(OFFSET_SHAPE)


# An instant that states its offset from UTC, as ISO 8601 and online shops' APIs write it:
# 2026-11-20T10:00:00+08:00, 2026-11-20 10:00+0800, 2026-11-20T02:00:00.5Z, ...+08, and
# with slashes, 2026/11/20 10:00:00+08:00.
OFFSET_SHAPE = (
    r"^\s*([0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2})[Tt ]"
    r"([0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?) ?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)\s*$"
)


def parse_offset_instant(column: pl.Expr) -> pl.Expr:
    """The UTC instant (µs) of a text that states its offset; null for any other text.

    Such a text names one instant whatever the tenant's time zone, so it is not read as a
    wall time: ``2026-11-20T10:00:00+08:00`` and ``2026-11-20T02:00:00Z`` are the same.
    """
    parts = column.str.extract_groups(OFFSET_SHAPE)
    clock = parts.struct.field("2")
    offset = parts.struct.field("3").str.to_uppercase()
    text = pl.concat_str(
        parts.struct.field("1").str.replace_all("/", "-", literal=True),
        pl.lit(" "),
        pl.when(clock.str.count_matches(":") == 1).then(clock + ":00").otherwise(clock),
        pl.when(offset == "Z")
        .then(pl.lit("+00:00"))
        .when(offset.str.len_chars() == 3)
        .then(offset + ":00")
        .otherwise(offset),
    )
    return text.str.strptime(
        pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S%.f%z", strict=False, exact=True
    )


def localise(moment: pl.Expr, timezone: str) -> pl.Expr:
    """A naive wall time as the instant it names in ``timezone``: a wall time that happens
    twice (clocks going back) is the first, one that never happens (clocks going forward)
    is null, so the importer refuses it."""
    return moment.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")


def read_instants(texts: pl.Series, timezone: str) -> pl.Series:
    """UTC instants (µs) of a column of date-time texts; null where a text is not one.

    A text that states its offset is that instant; any other form accepted by
    ``parse_datetime`` is a wall time in ``timezone``. The usual ``2026-11-25 14:30:00`` is
    read directly, and only the other rows go through the slower general readers.
    """
    direct = texts.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False, exact=True)
    instants = pl.select(localise(pl.lit(direct), timezone).dt.convert_time_zone("UTC")).to_series()
    left = direct.is_null() & texts.is_not_null()
    if not left.any():
        return instants.alias(texts.name)
    text = pl.col("text")
    rest = pl.DataFrame({"text": texts.filter(left)}).select(
        pl.coalesce(
            parse_offset_instant(text),
            localise(parse_datetime(text), timezone).dt.convert_time_zone("UTC"),
        )
    )
    return instants.scatter(left.arg_true(), rest.to_series()).alias(texts.name)


# What surrounds an amount in exports; removed in one literal pass (Aho-Corasick).
_MONEY_MARKS = ["¥", "元", ",", " ", "\t", "RMB", "rmb", "Rmb", "CNY", "cny"]


def parse_amount(column: pl.Expr) -> pl.Expr:
    """Money in minor units (fen): ``¥1,234.50``, ``1234.5元``, ``RMB 12`` -> 123450, ...

    Through a float: exact for any amount with at most two decimals below 10^13 yuan (the
    error is far below half a fen); more decimals are refused by the importer, not rounded.
    """
    text = column.str.replace_many(_MONEY_MARKS, [""] * len(_MONEY_MARKS))
    text = (
        pl.when(text.str.starts_with("("))
        .then(
            text.str.replace(r"^\((.*)\)$", "-$1")  # accountants' (12.00) is -12.00
        )
        .otherwise(text)
    )
    # at most two decimals that matter: 12.340 is fine, 12.345 is a fraction of a fen
    well_formed = text.str.contains(r"^[-+]?[0-9]+(\.[0-9]{0,2}0*)?$")
    value = (text.cast(pl.Float64, strict=False) * 100).round(0).cast(pl.Int64, strict=False)
    return pl.when(well_formed).then(value)


def amount_has_fraction_of_fen(column: pl.Expr) -> pl.Expr:
    """True where an amount has more than two decimals (``12.345``): refused, not rounded."""
    text = column.str.replace_all(r"(?i)rmb|cny|[¥元,\s()+]", "")
    return text.str.contains(r"^-?[0-9]+\.[0-9]{3,}$") & ~text.str.contains(r"\.[0-9]{2}0+$")


def parse_integer(column: pl.Expr) -> pl.Expr:
    """Whole numbers; ``3.0`` and ``1,000`` are accepted, ``3.5`` is not."""
    # "9分" and "4星" as survey tools export scores
    text = column.str.replace_many([",", " "], ["", ""]).str.replace(r"(\.0+)?[分星]?$", "")
    return pl.when(text.str.contains(r"^[-+]?[0-9]+$")).then(text.cast(pl.Int64, strict=False))


def parse_date(column: pl.Expr) -> pl.Expr:
    """A calendar date from any accepted date or datetime form."""
    return parse_datetime(column).dt.date()


def parse_choice(column: pl.Expr, synonyms: dict[str, str]) -> pl.Expr:
    """Map the many spellings of a choice (``门店``, ``Store``, ``堂食``) to its code."""
    lowered = column.str.to_lowercase().str.replace_all(r"[\s_-]", "")
    table = {_choice_key(key): code for key, code in synonyms.items()}
    return lowered.replace_strict(list(table), list(table.values()), default=None)


def _choice_key(text: str) -> str:
    return text.lower().replace(" ", "").replace("_", "").replace("-", "")
