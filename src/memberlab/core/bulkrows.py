"""Bulk rows in the database's own terms, made without a database: the text SQLite's
``DateTime`` stores, PostgreSQL's COPY text format, SQLite's own database image. A bulk
import's worker processes make them (and import only this, not SQLAlchemy);
``core.bulkio`` writes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from itertools import chain
from typing import Any

import orjson

_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
_UTC_INSTANT = _SQLITE_DATETIME + "+00"


def _instant_text(value: datetime, pattern: str, known: dict[datetime, str]) -> str:
    """A UTC instant as ``pattern`` (of year, month, ..., microsecond), remembered in
    ``known``: many instants recur in bulk rows (the import's now, expiries, a posting's
    entry's time), and an aware ``isoformat`` would spend as long on the offset as on the
    rest."""
    text = known.get(value)
    if text is None:
        text = pattern % (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )
        if len(known) > 200_000:
            known.clear()
        known[value] = text
    return text


class Adapter:
    """Converts Python values to what the driver takes fastest for a given database."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self._texts: dict[datetime, str] = {}

    def dt(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if self.sqlite:  # the text SQLAlchemy's SQLite DateTime stores: naive UTC, with µs
            if value.tzinfo is UTC:
                return _instant_text(value, _SQLITE_DATETIME, self._texts)
            value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def js(self, value: Any) -> str:
        return orjson.dumps(value).decode()

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class NotCopyText(Exception):
    """A value ``_copy_text`` leaves to psycopg (``Copy.write_row``)."""


def copy_str(value: str) -> str:
    """A text in COPY text format."""
    # translate looks each character up (2 us for an order's 500-character record): most
    # texts have nothing to escape, which four scans in C find out
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_instant(value: datetime, instants: dict[datetime, str]) -> str:
    """An aware instant in COPY text format; ``instants`` remembers UTC instants' texts."""
    if value.tzinfo is UTC:
        return _instant_text(value, _UTC_INSTANT, instants)
    return value.isoformat()


def _copy_text(value: Any, instants: dict[datetime, str]) -> str:
    """One value in PostgreSQL's COPY text format, meaning what ``Copy.write_row`` would;
    ``instants`` remembers the text of UTC instants met before."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        return copy_str(value)
    if value is None:
        return "\\N"
    if kind is datetime:
        return copy_instant(value, instants)
    if kind is bool:
        return "t" if value else "f"
    if kind is date:
        return value.isoformat()
    if kind is Decimal:
        return str(value)
    raise NotCopyText


@dataclass(frozen=True)
class CopyText:
    """Rows already in PostgreSQL's COPY text format, made where the rows were worked out
    (a bulk import's worker process), so that writing them is one ``write``."""

    text: str
    count: int


def copy_line(row: Sequence[Any], instants: dict[datetime, str]) -> str:
    return "\t".join([_copy_text(value, instants) for value in row]) + "\n"


def copy_text(
    rows: list[Sequence[Any]] | CopyText, instants: dict[datetime, str] | None = None
) -> list[Sequence[Any]] | CopyText:
    """``rows`` as ``CopyText``, or as they are if a value needs psycopg's own adaptation.

    ``instants``: texts of UTC instants to share between calls (a chunk's tables: an entry's
    time is its postings' too); it lives as long as the caller keeps it."""
    if isinstance(rows, CopyText):
        return rows
    instants = {} if instants is None else instants
    try:
        lines = [copy_line(row, instants) for row in rows]
    except NotCopyText:
        return rows
    return CopyText("".join(lines), len(rows))


# the schema name under which an SQLite connection holds a ``PackedRows`` image to insert
PACKED_SCHEMA = "packed_rows"


# whether this Python's sqlite3 can serialize a database (it can where SQLite has the API,
# as in every build we know of); without it, workers send their rows as tuples
CAN_PACK = hasattr(sqlite3.Connection, "serialize")


@cache
def empty_image() -> bytes:
    """An empty database's image: what ``PACKED_SCHEMA`` holds between two inserts."""
    connection = sqlite3.connect(":memory:")
    try:  # a database with no page yet has no image: make one and leave it empty
        connection.execute("CREATE TABLE t (x)")
        connection.execute("DROP TABLE t")
        return connection.serialize()
    finally:
        connection.close()


# rows per INSERT in ``pack_rows``: one statement step for many rows rather than one per row
# took a quarter off packing a chunk (100-1,000 rows alike; SQLite caps the variables)
_ROWS_PER_INSERT = 100


def _insert_many(connection: sqlite3.Connection, table: str, width: int, rows: list[tuple]) -> None:
    """``rows`` into ``table`` in their order (so in rowid order), many to a statement."""
    variables = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(_ROWS_PER_INSERT, variables // width))
    one = "(" + ", ".join("?" * width) + ")"
    whole = len(rows) // per * per
    if whole:
        flat = chain.from_iterable
        connection.executemany(
            f'INSERT INTO "{table}" VALUES ' + ", ".join([one] * per),  # noqa: S608
            [tuple(flat(rows[i : i + per])) for i in range(0, whole, per)],
        )
    connection.executemany(f'INSERT INTO "{table}" VALUES {one}', rows[whole:])  # noqa: S608


@dataclass(frozen=True)
class PackedRows:
    """Rows of several tables in one SQLite database image (``sqlite3``'s ``serialize``),
    each table named as its destination and holding the rows of ``counts[name]``.

    How a worker process hands rows to an SQLite store: pickling the image is a copy of its
    bytes, where a list of tuples is pickled and unpickled value by value; and the store
    takes each table with one ``INSERT ... SELECT`` (``bulkio.insert_packed``), in SQLite's
    C code, where ``executemany`` binds every value from Python. The binding moves to the
    workers, and the importing process, which reads and writes every chunk in turn and so
    bounds the rate however many cores work chunks out, does less: 200,000 purchases took
    4.7-5.1 s of its CPU against 6.9-8.6 s. (On two cores the total CPU is about the same.)
    """

    image: bytes
    counts: dict[str, int]


def pack_rows(tables: Mapping[str, tuple[Sequence[str], list[tuple]]]) -> PackedRows:
    """``{table: (columns, rows)}`` as a ``PackedRows``; tables without rows are left out.

    The columns have no declared type, so each value is kept exactly as given (SQLite's
    BLOB affinity) and takes the destination column's affinity on the way in, as a value
    bound by ``executemany`` does. Names come from our table metadata, never from input."""
    if not any(rows for _, rows in tables.values()):
        return PackedRows(empty_image(), {})  # an empty database has no image of its own
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        connection.execute("BEGIN")
        counts: dict[str, int] = {}
        for table, (columns, rows) in tables.items():
            if not rows:
                continue
            names = ", ".join(f'"{c}"' for c in columns)
            connection.execute(f'CREATE TABLE "{table}" ({names})')
            _insert_many(connection, table, len(columns), rows)
            counts[table] = len(rows)
        connection.execute("COMMIT")
        return PackedRows(connection.serialize(), counts)
    finally:
        connection.close()
