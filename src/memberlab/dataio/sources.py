"""Opening a client's file: CSV in any of the usual encodings, XLSX, or Parquet.

Everything is read as text (Parquet columns keep their types): the importer, not the reader,
decides what a value means, so a mobile number keeps its leading zeros and ``001`` stays a
store code. Problems with the file as a whole (empty, binary, damaged, an encoding we cannot
read) are errors with the file's name; problems with single rows come back as ``bad_rows``
for the rejects file, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from memberlab.core.errors import FieldError, InvalidInput

# Encodings tried in order when none is given. GB18030 is a superset of GBK and GB2312: a file
# that decodes as GBK is reported as such, since that is what the exporting system wrote.
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SEPARATORS = (",", "\t", ";", "|")


@dataclass
class BadRow:
    row: int  # the row number a spreadsheet shows (the header is row 1)
    key: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class Source:
    """A file's rows as a frame, its header row, and how it was read."""

    frame: pl.DataFrame  # a ``_row`` column holds each row's number in the file
    headers: list[str]
    format: str  # csv | xlsx | parquet
    encoding: str | None = None
    separator: str | None = None
    sheet: str | None = None
    bad_rows: list[BadRow] = field(default_factory=list)


def _fail(path: Path, key: str, **params: object) -> InvalidInput:
    return InvalidInput(errors=[FieldError(path.name, key, dict(params))])


def read_source(path: Path, *, sheet: str | None = None, encoding: str | None = None) -> Source:
    """Read ``path`` by its content (not its name): Parquet, XLSX or delimited text."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as error:
        raise _fail(path, "dataio.file.unreadable", reason=error.strerror or str(error)) from None
    if not head.strip().strip(_UTF8_BOM).strip():
        raise _fail(path, "dataio.file.empty")
    if head.startswith(b"PAR1"):
        return _read_parquet(path)
    if head.startswith(b"PK\x03\x04"):
        return _read_xlsx(path, sheet)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(path, "dataio.file.old_excel")
    return _read_text(path, encoding)


# --- Parquet and Excel ---------------------------------------------------------------------


def _read_parquet(path: Path) -> Source:
    try:
        frame = pl.read_parquet(path)
    except Exception as error:  # Polars raises several types for damaged files
        raise _fail(
            path, "dataio.file.damaged", format="Parquet", reason=_first_line(error)
        ) from None
    if frame.height == 0:
        raise _fail(path, "dataio.file.no_rows")
    headers = frame.columns
    return Source(frame.with_row_index("_row", offset=2), headers, "parquet")


def _read_xlsx(path: Path, sheet: str | None) -> Source:
    try:
        with zipfile.ZipFile(path) as archive:
            if "xl/workbook.xml" not in archive.namelist():
                raise _fail(path, "dataio.file.not_xlsx")
            archive.testzip()
        import fastexcel

        workbook = fastexcel.read_excel(path)
    except InvalidInput:
        raise
    except Exception as error:
        raise _fail(path, "dataio.file.damaged", format="XLSX", reason=_first_line(error)) from None
    names = list(workbook.sheet_names)
    if sheet is not None and sheet not in names:
        raise _fail(path, "dataio.file.no_sheet", sheet=sheet, sheets=", ".join(names))
    chosen = sheet if sheet is not None else names[0]
    # the header row as written: fastexcel renames a repeated header (手机号, 手机号_1)
    first = workbook.load_sheet(chosen, header_row=None, n_rows=1, dtypes="string")
    written = [str(v) for v in pl.from_arrow(first.to_arrow()).row(0) if v is not None]  # type: ignore[union-attr]
    _check_headers(path, list(written))
    # Everything as text except dates, which Excel stores as numbers with a date format.
    loaded = workbook.load_sheet(chosen, dtypes="string")
    frame = pl.from_arrow(loaded.to_arrow())
    assert isinstance(frame, pl.DataFrame)
    frame = frame.select(pl.all().cast(pl.String))
    if frame.height == 0:
        raise _fail(path, "dataio.file.no_rows")
    headers = [str(h) for h in frame.columns]
    # rows entirely empty are spacing in a sheet, not data
    frame = frame.with_row_index("_row", offset=2).filter(
        ~pl.all_horizontal(pl.exclude("_row").is_null())
    )
    return Source(frame, headers, "xlsx", sheet=chosen)


# --- delimited text ------------------------------------------------------------------------


def _decode(path: Path, raw: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except LookupError:
            raise _fail(path, "dataio.file.unknown_encoding_name", encoding=encoding) from None
        except UnicodeDecodeError as error:
            raise _fail(
                path, "dataio.file.not_in_encoding", encoding=encoding, offset=error.start
            ) from None
    if raw.startswith(_UTF8_BOM):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            raise _fail(
                path, "dataio.file.bad_bytes", encoding="UTF-8", offset=error.start
            ) from None
    if raw.startswith(_UTF16_BOMS):
        return raw.decode("utf-16"), "utf-16"
    if b"\x00" in raw[:8192]:
        raise _fail(path, "dataio.file.binary")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for candidate in ("gbk", "gb18030"):
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        if _plausible(text):
            return text, candidate
    raise _fail(path, "dataio.file.unknown_encoding")


def _plausible(text: str) -> bool:
    """Whether text decoded as GBK reads as Chinese, not as mojibake of another encoding.

    Mojibake from Latin-1 or Shift-JIS bytes lands on rare characters and private-use code
    points; real Chinese text sits in the common CJK block and ASCII.
    """
    sample = text[:20000]
    odd = sum(
        1
        for ch in sample
        if not (ch.isascii() or "\u4e00" <= ch <= "\u9fa5" or "\u3000" <= ch <= "\u303f")
        and not ("\uff00" <= ch <= "\uffef")
    )
    return odd <= max(2, len(sample) // 200)


def _sniff_separator(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _read_text(path: Path, encoding: str | None) -> Source:
    raw = path.read_bytes()
    text, used = _decode(path, raw, encoding)
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    separator = _sniff_separator(first_line)
    quoted = '"' in text
    if quoted and first_line.count('"') % 2:
        return _read_quoted(path, text, used, separator)
    headers = next(csv.reader([first_line], delimiter=separator))
    _check_headers(path, headers)
    body = text.encode("utf-8")
    if not text.split("\n", 1)[1:] or not text.split("\n", 1)[1].strip():
        raise _fail(path, "dataio.file.no_rows")
    fast = _read_regular(body, headers, separator, quoted)
    if fast is not None:
        return Source(fast, headers, "csv", encoding=used, separator=separator)
    # Every line as one string (0x1f never occurs in text), to count its fields natively.
    lines = pl.read_csv(
        body,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        skip_rows=1,
    ).with_row_index("_row", offset=2)
    read_lines = lines.height
    # an empty line, or one of separators only (how Excel saves an empty row), is no row
    blank = pl.col("line").str.replace_all(separator, "", literal=True).str.strip_chars(' "\r')
    lines = lines.with_columns(pl.col("line").str.strip_suffix("\r")).filter(blank != "")
    if lines.height == 0:
        raise _fail(path, "dataio.file.no_rows")
    skipped_lines = read_lines != lines.height
    if quoted and (lines["line"].str.count_matches('"', literal=True) % 2 == 1).any():
        # a quoted field spans lines: only a real CSV reader can tell where records end
        return _read_quoted(path, text, used, separator)
    expected = len(headers) - 1
    # separators inside quoted fields do not separate
    unquoted = pl.col("line").str.replace_all(r'"[^"]*"', "") if quoted else pl.col("line")
    lines = lines.with_columns(unquoted.str.count_matches(separator, literal=True).alias("n"))
    wrong = lines.filter(pl.col("n") != expected)
    bad_rows = [
        BadRow(row, "dataio.v.field_count", {"expected": expected + 1, "found": fields + 1})
        for row, fields in wrong.select("_row", "n").iter_rows()
    ]
    good = lines.filter(pl.col("n") == expected) if bad_rows else lines
    if good.height == 0:
        return Source(
            pl.DataFrame(schema={**dict.fromkeys(headers, pl.String), "_row": pl.UInt32}),
            headers,
            "csv",
            encoding=used,
            separator=separator,
            bad_rows=bad_rows,
        )
    rebuilt = bool(bad_rows) or skipped_lines
    if rebuilt:
        body = good["line"].str.join("\n").item().encode("utf-8")
    frame = pl.read_csv(
        body,
        has_header=False,
        skip_rows=0 if rebuilt else 1,
        separator=separator,
        infer_schema=False,
        quote_char='"' if quoted else None,
        new_columns=[f"c{i}" for i in range(len(headers))],
    )
    frame.columns = headers
    frame = frame.with_columns(good["_row"].cast(pl.UInt32).alias("_row"))
    return Source(frame, headers, "csv", encoding=used, separator=separator, bad_rows=bad_rows)


def _read_regular(
    body: bytes, headers: list[str], separator: str, quoted: bool
) -> pl.DataFrame | None:
    """The common case in one native pass: every line a row with exactly the header's fields.

    Returns None when the file is not that regular (a row with too many or too few fields,
    an empty line, a record over several lines); the careful line-by-line reading then
    finds and numbers the odd rows.
    """
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            skip_rows=1,
            separator=separator,
            infer_schema=False,
            quote_char='"' if quoted else None,
            new_columns=[f"c{i}" for i in range(len(headers))],
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError):
        return None
    # A short row leaves its last field null; an empty line is a row of nulls. Either needs
    # the careful path (a genuinely empty last cell costs only that detour).
    if frame.height == 0 or frame[f"c{len(headers) - 1}"].null_count():
        return None
    if quoted and body.count(b"\n") != frame.height + 1 - (not body.endswith(b"\n")):
        return None  # a quoted field holds a line break: records and lines differ
    frame.columns = headers
    return frame.with_row_index("_row", offset=2).select(*headers, "_row")


def _read_quoted(path: Path, text: str, used: str, separator: str) -> Source:
    """Quoted fields may hold separators and line breaks: the csv module reads them exactly."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        headers = next(reader)
    except StopIteration:
        raise _fail(path, "dataio.file.empty") from None
    _check_headers(path, headers)
    columns: list[list[str | None]] = [[] for _ in headers]
    rows: list[int] = []
    bad_rows: list[BadRow] = []
    record = 1
    try:
        for fields in reader:
            record += 1
            if not any(value.strip() for value in fields):
                continue
            if len(fields) != len(headers):
                params = {"expected": len(headers), "found": len(fields)}
                bad_rows.append(BadRow(record, "dataio.v.field_count", params))
                continue
            for column, value in zip(columns, fields, strict=True):
                column.append(value if value != "" else None)
            rows.append(record)
    except csv.Error as error:
        bad_rows.append(BadRow(record + 1, "dataio.v.unreadable_row", {"reason": str(error)}))
    if not rows and not bad_rows:
        raise _fail(path, "dataio.file.no_rows")
    frame = pl.DataFrame(
        {f"c{i}": pl.Series(values, dtype=pl.String) for i, values in enumerate(columns)}
    )
    frame.columns = headers
    frame = frame.with_columns(pl.Series("_row", rows, dtype=pl.UInt32))
    return Source(frame, headers, "csv", encoding=used, separator=separator, bad_rows=bad_rows)


def _check_headers(path: Path, headers: list[str]) -> None:
    cleaned = [h.strip() for h in headers]
    if not any(cleaned):
        raise _fail(path, "dataio.file.no_header")
    seen: set[str] = set()
    for header in cleaned:
        if header and header in seen:
            raise _fail(path, "dataio.file.duplicate_header", header=header)
        seen.add(header)
    headers[:] = [h or f"column_{i + 1}" for i, h in enumerate(cleaned)]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
