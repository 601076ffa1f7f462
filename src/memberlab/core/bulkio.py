"""Fast multi-row inserts for bulk paths (imports, generated worlds).

The ORM and even Core ``insert()`` spend most of a bulk load converting values row by row.
Here rows arrive as tuples already in the database's own terms (``Adapter``), and go in as
one ``executemany`` on SQLite or one ``COPY`` on PostgreSQL, inside the caller's
transaction. Only for trusted, already validated rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.orm import Session


class Adapter:
    """Converts Python values to what the driver takes fastest for a given database."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def dt(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if self.sqlite:  # the text SQLAlchemy's SQLite DateTime stores: naive UTC, with µs
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def js(self, value: Any) -> str:
        return orjson.dumps(value).decode()

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value


def adapter_for(session: Session) -> Adapter:
    return Adapter(session.get_bind().dialect.name)


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert tuples of ``columns`` into ``table``; returns how many rows went in."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    connection = session.connection()
    names = ", ".join(f'"{c}"' for c in columns)
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        with (
            driver.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return len(rows)
    marks = ", ".join("?" for _ in columns)
    # names come from our own table metadata, never from input
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    connection.exec_driver_sql(sql, rows)
    return len(rows)
