"""From a client's file to a clean, typed frame and the list of rows that could not be read.

``prepare`` needs no database: it reads the file, maps its headers, parses every value with
the vectorised readers of ``values``, checks each row and returns the good rows in canonical
columns (see ``canonical_columns``) with the rejected ones, each naming its row, column,
value and reason. The loaders then check the rows against the store and write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.dataio import values
from memberlab.dataio.kinds import FieldSpec, FieldType, ImportKind
from memberlab.dataio.mapping import ColumnMapping, map_columns, suggest_header
from memberlab.dataio.sources import Source, read_source
from memberlab.members.phones import normalise_mobile

# Ids may be in any script (门店A01), but without spaces, control characters or quotes.
_ID_FORBIDDEN = r"[\x00-\x20\x7f\"'<>\\,;]"
PROBLEM = "_problem"


@dataclass
class Reject:
    """One value of one row that could not be taken, and why (a message key)."""

    row: int | None
    column: str | None  # the file's own header
    value: str | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    path: Path
    kind: ImportKind
    source: Source
    mapping: ColumnMapping
    frame: pl.DataFrame  # good rows, canonical columns, plus ``_row``
    rejects: list[Reject]
    rows: int  # data rows in the file, including the rejected ones

    @property
    def rejected_rows(self) -> int:
        """Rows with at least one reject (a reject the rules made without a row counts once)."""
        with_row = {r.row for r in self.rejects if r.row is not None}
        return len(with_row) + sum(1 for r in self.rejects if r.row is None)


def prepare(
    path: Path,
    kind: ImportKind,
    *,
    timezone: str,
    now: datetime,
    overrides: dict[str, str | None] | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
) -> Prepared:
    source = read_source(path, sheet=sheet, encoding=encoding)
    mapping = map_columns(source.headers, kind, overrides)
    if mapping.missing:
        raise InvalidInput(
            errors=[
                FieldError(
                    name,
                    "dataio.v.missing_column",
                    {
                        "headers": ", ".join(kind.field(name).synonyms[:4]),
                        "suggestion": suggest_header(name, kind, source.headers) or "-",
                    },
                )
                for name in mapping.missing
            ]
        )
    frame, rejects = parse_frame(source, kind, mapping, timezone=timezone, now=now)
    rows = source.frame.height + len(source.bad_rows)
    return Prepared(path, kind, source, mapping, frame, rejects, rows)


def parse_frame(
    source: Source, kind: ImportKind, mapping: ColumnMapping, *, timezone: str, now: datetime
) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse every mapped column; split the rows into good ones and rejects.

    Work happens in steps that each materialise their columns (text, then date text, then
    values, then problems), so no expression is evaluated twice; the reason for a problem is
    made precise (``no_such_date`` rather than ``not_a_date``) only for the rows that have one.
    """
    raw = source.frame
    mapped = [spec for spec in kind.fields if spec.name in mapping.columns]
    frame = raw.select(
        "_row",
        *[_as_text(raw, mapping.columns[s.name], s).alias(f"_text_{s.name}") for s in mapped],
        *[pl.col(mapping.columns[s.name]).alias(f"_raw_{s.name}") for s in mapped
          if _typed(raw, mapping.columns[s.name], s, timezone) is not None],
    )  # fmt: skip
    dated = [s for s in mapped if s.type in (FieldType.DATETIME, FieldType.DATE)]
    for spec in dated:
        frame = _read_times(frame, spec.name, timezone)
    columns: list[pl.Expr] = []
    for spec in kind.fields:
        if spec.name not in mapping.columns:
            value = (
                _parse(spec, pl.lit(spec.default, dtype=pl.String), timezone)
                if spec.default is not None
                else pl.lit(None)
            )
            columns.append(value.cast(_dtype(spec)).alias(spec.name))
            continue
        raw_column = f"_raw_{spec.name}"
        typed = _typed(frame, raw_column, spec, timezone) if raw_column in frame.columns else None
        if typed is None and spec in dated:
            local = pl.col(f"_local_{spec.name}")
            typed = (
                pl.coalesce(
                    pl.col(f"_instant_{spec.name}"),
                    values.localise(local, timezone).dt.convert_time_zone("UTC"),
                )
                if spec.type == FieldType.DATETIME
                else local.dt.date()
            )
        elif typed is None:
            typed = _parse(spec, _with_default(pl.col(f"_text_{spec.name}"), spec), timezone)
        columns.append(typed.alias(spec.name))
    frame = frame.with_columns(columns)
    frame = frame.with_columns(
        _problem(spec, pl.col(f"_text_{spec.name}"), pl.col(spec.name), now, timezone).alias(
            f"{PROBLEM}:{spec.name}"
        )
        for spec in mapped
    )
    frame = _duplicates(frame, kind, mapping)
    frame = _cross_row_checks(frame, kind)

    problem_columns = [c for c in frame.columns if c.startswith(PROBLEM)]
    rejects = [Reject(b.row, None, None, b.key, dict(b.params)) for b in source.bad_rows]
    bad = pl.any_horizontal([pl.col(c).is_not_null() for c in problem_columns])
    hits = frame.filter(bad)
    for column in problem_columns:
        name = column.split(":", 1)[1]
        found = hits.filter(pl.col(column).is_not_null())
        if found.height == 0:
            continue
        spec = kind.field(name)
        for row, value, key in found.select("_row", f"_text_{name}", column).iter_rows():
            key, _, extra = key.partition("|")
            key = _precise(key, value)
            params = _params(spec, value, extra)
            rejects.append(Reject(row, mapping.columns[name], value, key, params))
    frame = frame.filter(~bad) if hits.height else frame
    rejects.sort(key=lambda r: (r.row or 0, r.column or ""))
    frame = frame.select(
        pl.exclude("^_text_.*$", "^_local_.*$", "^_instant_.*$", "^_raw_.*$", f"^{PROBLEM}.*$")
    )
    return frame, rejects


# Forms read directly, without normalising the text first; a file uses few of them, so only
# those found in a sample of its rows are tried on every row.
_DIRECT_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_FORMAT_SAMPLE = 2000


def _read_times(frame: pl.DataFrame, name: str, timezone: str) -> pl.DataFrame:
    """``_local_<name>``: the naive local datetime of each text, or null; ``_instant_<name>``:
    the UTC instant of the texts that state their offset (``…T10:00:00+08:00``), else null.

    The forms a sample of the rows uses are read directly; only the rows left over are
    normalised by ``values.date_text`` (Excel serials, odd spacing, ...) and read again. A
    text with an offset is one instant: its local datetime is that instant on the tenant's
    clock (what a date field keeps), and it is not read again as a wall time.
    """
    text = pl.col(f"_text_{name}")
    sample = frame.select(text.drop_nulls().head(_FORMAT_SAMPLE)).to_series()
    used = [
        f
        for f in _DIRECT_FORMATS
        if sample.str.strptime(pl.Datetime("us"), f, strict=False, exact=True).null_count()
        < sample.len()
    ]
    direct = pl.coalesce(
        [text.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in used]
        or [pl.lit(None, dtype=pl.Datetime("us"))]
    )
    local, instant = f"_local_{name}", f"_instant_{name}"
    frame = frame.with_columns(
        direct.alias(local), pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(instant)
    )
    left = frame.filter(pl.col(local).is_null() & text.is_not_null())
    if left.height == 0:
        return frame
    stated = values.parse_offset_instant(text)
    fixed = left.select(
        "_row",
        stated.alias("_fixed_instant"),
        pl.coalesce(
            stated.dt.convert_time_zone(timezone).dt.replace_time_zone(None),
            values.parse_date_text(values.date_text(text)),
        ).alias("_fixed_local"),
    )
    return (
        frame.drop(instant)
        .join(fixed, on="_row", how="left", maintain_order="left")
        .with_columns(pl.coalesce(local, "_fixed_local").alias(local))
        .rename({"_fixed_instant": instant})
        .drop("_fixed_local")
    )


_DATE_SHAPE = re.compile(r"^\s*\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}")
_FRACTION_OF_FEN = re.compile(r"\.\d{3,}$")
# a date and a time followed by what looks meant as an offset (+8, +25:00, Zulu): when the
# date and time exist, the offset is what is wrong
_STATED_OFFSET = re.compile(
    r"^\s*(\d{4}[-/]\d{1,2}[-/]\d{1,2})[Tt ](\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*[+\-Zz]\S*$"
)


def _wall_time_exists(day: str, clock: str) -> bool:
    day = day.replace("/", "-")
    try:
        datetime.strptime(f"{day} {clock.partition('.')[0]}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M")
        except ValueError:
            return False
    return True


def _precise(key: str, value: str | None) -> str:
    """The exact reason for a few rows: a date that has a date's shape does not exist; an
    amount with three decimals is a fraction of a fen."""
    text = value or ""
    stated = _STATED_OFFSET.match(text)
    if key == "dataio.v.not_a_date" and stated and _wall_time_exists(*stated.group(1, 2)):
        return "dataio.v.bad_offset"
    if key == "dataio.v.not_a_date" and _DATE_SHAPE.match(text):
        return "dataio.v.no_such_date"
    if key == "dataio.v.not_an_amount":
        digits = re.sub(r"(?i)rmb|cny|[¥￥元,\s()+]", "", text).rstrip("0")
        if _FRACTION_OF_FEN.search(digits) and re.fullmatch(r"-?\d+\.\d+", digits):
            return "dataio.v.fraction_of_fen"
    return key


# --- values --------------------------------------------------------------------------------


def _dtype(spec: FieldSpec) -> pl.DataType:
    return {
        FieldType.DATETIME: pl.Datetime("us", "UTC"),
        FieldType.DATE: pl.Date(),
        FieldType.AMOUNT: pl.Int64(),
        FieldType.INTEGER: pl.Int64(),
    }.get(spec.type, pl.String())


def _as_text(raw: pl.DataFrame, header: str, spec: FieldSpec) -> pl.Expr:
    """The cell as the user would read it (for the rejects file and for parsing)."""
    dtype = raw.schema[header]
    column = pl.col(header)
    if dtype == pl.String:
        full_width = bool(raw[header].str.contains(values.FULL_WIDTH_PATTERN).any())
        return values.normalise_text(column, full_width=full_width)
    if dtype.is_float() and spec.type == FieldType.AMOUNT:
        column = column.round(6)  # 0.1 + 0.2 is 0.3 yuan, not a fraction of a fen
    if dtype.is_float() and spec.type in (FieldType.INTEGER, FieldType.ID, FieldType.MOBILE):
        whole = column.cast(pl.Int64, strict=False)
        return (
            pl.when(whole == column).then(whole.cast(pl.String)).otherwise(column.cast(pl.String))
        )
    return column.cast(pl.String)


def _typed(raw: pl.DataFrame, header: str, spec: FieldSpec, timezone: str) -> pl.Expr | None:
    """Parquet columns that already hold dates keep them, without a round trip through text."""
    dtype = raw.schema[header]
    column = pl.col(header)
    if spec.type == FieldType.DATETIME and isinstance(dtype, pl.Datetime):
        moment = column.cast(pl.Datetime("us", dtype.time_zone))
        if dtype.time_zone is None:
            moment = values.localise(moment, timezone)
        return moment.dt.convert_time_zone("UTC")
    if spec.type == FieldType.DATETIME and dtype == pl.Date:
        return values.localise(column.cast(pl.Datetime("us")), timezone).dt.convert_time_zone("UTC")
    if spec.type == FieldType.DATE and isinstance(dtype, pl.Datetime):
        return column.dt.date()
    if spec.type == FieldType.DATE and dtype == pl.Date:
        return column
    return None


def _with_default(text: pl.Expr, spec: FieldSpec) -> pl.Expr:
    return text if spec.default is None else text.fill_null(pl.lit(spec.default))


def _parse(spec: FieldSpec, text: pl.Expr, timezone: str) -> pl.Expr:
    match spec.type:
        case FieldType.DATETIME:  # ``text`` is already ``values.date_text``
            local = values.parse_date_text(text)
            return values.localise(local, timezone).dt.convert_time_zone("UTC")
        case FieldType.DATE:
            return values.parse_date_text(text).dt.date()
        case FieldType.AMOUNT:
            return values.parse_amount(text)
        case FieldType.INTEGER:
            return values.parse_integer(text)
        case FieldType.CHOICE:
            assert spec.choices is not None
            code = values.parse_choice(text, spec.choices)
            return code.fill_null(text) if spec.open_choices else code
        case FieldType.MOBILE:
            return text.map_elements(normalise_mobile, return_dtype=pl.String)
        case _:
            return text


def _problem(
    spec: FieldSpec, text: pl.Expr, value: pl.Expr, now: datetime, timezone: str
) -> pl.Expr:
    """A message key where the row's value is not acceptable, else null."""
    given = text.is_not_null()
    unreadable = given & value.is_null()
    checks: list[tuple[pl.Expr, str]] = []
    if spec.required:
        checks.append((~given & value.is_null(), "dataio.v.missing"))
    match spec.type:
        case FieldType.ID:
            bad = text.str.contains(_ID_FORBIDDEN) | (text.str.len_chars() > 64)
            checks.append((given & bad, "dataio.v.bad_id"))
        case FieldType.DATETIME:
            checks.append((unreadable, "dataio.v.not_a_date"))
            checks.append((value > pl.lit(now.astimezone(UTC)), "dataio.v.future"))
        case FieldType.DATE:
            checks.append((unreadable, "dataio.v.not_a_date"))
            # today on the tenant's calendar, not in UTC
            today = now.astimezone(ZoneInfo(timezone)).date()
            checks.append((value > pl.lit(today), "dataio.v.future"))
            checks.append((value.dt.year() < 1900, "dataio.v.too_old"))
        case FieldType.AMOUNT:
            checks.append((unreadable, "dataio.v.not_an_amount"))
            if spec.minimum is not None:
                checks.append((value < spec.minimum * 100, "dataio.v.negative"))
        case FieldType.INTEGER:
            checks.append((unreadable, "dataio.v.not_integer"))
            if spec.minimum is not None:
                checks.append((value < spec.minimum, "dataio.v.below_minimum"))
            if spec.maximum is not None:
                checks.append((value > spec.maximum, "dataio.v.above_maximum"))
        case FieldType.CHOICE:
            checks.append((unreadable, "dataio.v.choice"))
            checks.append((value.str.len_chars() > spec.max_length, "dataio.v.too_long"))
        case FieldType.MOBILE:
            checks.append((unreadable, "dataio.v.mobile"))
        case FieldType.TEXT:
            checks.append((text.str.len_chars() > spec.max_length, "dataio.v.too_long"))
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(checks):
        expression = pl.when(condition.fill_null(False)).then(pl.lit(reason)).otherwise(expression)
    return expression


def _params(spec: FieldSpec, value: str | None, extra: str) -> dict[str, Any]:
    params: dict[str, Any] = {"value": value if value is not None else ""}
    if spec.minimum is not None:
        params["minimum"] = spec.minimum
    if spec.maximum is not None:
        params["maximum"] = spec.maximum
    if spec.choices is not None:
        params["choices"] = ", ".join(sorted(set(spec.choices.values())))
    params["max_length"] = spec.max_length
    if extra:
        params["first_row"] = extra
    return params


# --- rows against each other -----------------------------------------------------------------


def _duplicates(frame: pl.DataFrame, kind: ImportKind, mapping: ColumnMapping) -> pl.DataFrame:
    """A second row with the same id as an earlier one is refused, naming the first."""
    for name in kind.unique:
        if name not in mapping.columns:
            continue
        first = pl.col("_row").min().over(name)
        repeated = pl.col(name).is_not_null() & (pl.col("_row") != first)
        flag = pl.concat_str(pl.lit("dataio.v.duplicate|"), first.cast(pl.String))
        column = f"{PROBLEM}:{name}"
        earlier = pl.col(column) if column in frame.columns else pl.lit(None, dtype=pl.String)
        frame = frame.with_columns(
            pl.when(earlier.is_null() & repeated).then(flag).otherwise(earlier).alias(column)
        )
    return frame


def _cross_row_checks(frame: pl.DataFrame, kind: ImportKind) -> pl.DataFrame:
    """Lines of one order must agree on its member; a return line may leave its amount empty
    (the rules take back what the returned quantity earned)."""
    if kind.name == "returns" or kind.name != "transactions":
        return frame
    amount = f"{PROBLEM}:amount"
    if amount in frame.columns:
        frame = frame.with_columns(
            pl.when((pl.col(amount) == "dataio.v.missing") & (pl.col("kind") == "return"))
            .then(None)
            .otherwise(pl.col(amount))
            .alias(amount)
        )
    column = f"{PROBLEM}:member_id"
    mixed = (pl.col("member_id").n_unique().over(["order_id", "kind"]) > 1) & pl.col(
        "member_id"
    ).is_not_null()
    first = pl.col("_row").min().over(["order_id", "kind"]).cast(pl.String)
    flag = pl.concat_str(pl.lit("dataio.v.order_mixed|"), first)
    return frame.with_columns(
        pl.when(pl.col(column).is_null() & mixed).then(flag).otherwise(pl.col(column)).alias(column)
    )
