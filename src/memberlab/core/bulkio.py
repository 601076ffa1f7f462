"""Fast multi-row inserts for bulk paths (imports, generated worlds).

The ORM and even Core ``insert()`` spend most of a bulk load converting values row by row.
Here rows arrive as tuples already in the database's own terms (``core.bulkrows``), and go in as
one ``executemany`` on SQLite or one ``COPY`` on PostgreSQL, inside the caller's
transaction. Only for trusted, already validated rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ARRAY, Connection, String, Table, any_, bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from memberlab.core import fastsql
from memberlab.core.bulkrows import (
    PACKED_SCHEMA,
    Adapter,
    CopyText,
    NotCopyText,
    PackedRows,
    copy_line,
    empty_image,
)

if TYPE_CHECKING:  # psycopg is PostgreSQL's driver: not imported for SQLite
    from psycopg import Copy


_COPY_BATCH = 5000


def among(column: ColumnElement[Any], values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """``column IN values``, with the values sent as one parameter rather than one each.

    Each parameter of an ``IN`` list costs the driver and the server's parser: for a bulk
    chunk's 20,000 order ids, 370-490 ms on PostgreSQL and 60 ms on SQLite, against 50 ms
    as one array (``= ANY``) and 10 ms as one JSON text (``json_each``).
    The values must be of the column's Python type: SQLite compares the JSON values
    without converting them (the number 10 is not the text '10').
    """
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if dialect == "sqlite":
        text = orjson.dumps(list(values)).decode()
        each = func.json_each(bindparam(None, text, type_=String())).table_valued("value")
        return column.in_(select(each.c.value))
    return column.in_(values)


def adapter_for(session: Session) -> Adapter:
    return Adapter(session.get_bind().dialect.name)


@contextmanager
def _copy_into(connection: Connection, table: Table, columns: Sequence[str]) -> Iterator[Copy]:
    names = ", ".join(f'"{c}"' for c in columns)
    fastsql.flush(connection)  # statements queued before the COPY go first
    driver = connection.connection.driver_connection
    # names come from our own table metadata, never from input
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
    ):
        yield copy


def may_skip_key_checks(connection: Connection) -> bool:
    """PostgreSQL: whether this connection's role may turn the per-row foreign-key checks off
    (``key_checks_skipped``): a superuser may, and since PostgreSQL 15 a role granted it
    (``GRANT SET ON PARAMETER session_replication_role TO <role>``). Always False elsewhere."""
    if connection.dialect.name != "postgresql":
        return False
    if (connection.dialect.server_version_info or (0,)) >= (15,):
        query = "SELECT has_parameter_privilege('session_replication_role', 'SET')"
    else:
        query = "SELECT current_setting('is_superuser') = 'on'"
    return bool(connection.exec_driver_sql(query).scalar())


@contextmanager
def key_checks_skipped(connection: Connection, *, skip: bool = True) -> Iterator[None]:
    """PostgreSQL: the rows written inside skip the per-row foreign-key checks, when ``skip``
    and the role may (``may_skip_key_checks``); otherwise nothing changes.

    For rows whose keys the caller has made sure of otherwise, in the same transaction: the
    rows they refer to exist and are locked (``FOR UPDATE`` or ``FOR KEY SHARE``), which is
    all a check would do, one query per row. A bulk import writes about five rows per
    purchase, and those checks were a third of PostgreSQL's CPU.

    It sets ``session_replication_role`` to ``replica`` for the block (as ``pg_restore``
    and logical replication do), which also turns off ordinary triggers and rules: only for
    tables that have none. The setting is the transaction's (``SET LOCAL``): it is back to
    ``origin`` after the block, and a transaction that fails inside it is rolled back, which
    undoes it too."""
    if not (skip and may_skip_key_checks(connection)):
        yield
        return
    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield
    connection.exec_driver_sql("SET LOCAL session_replication_role = origin")


def insert_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]] | CopyText,
) -> int:
    """Insert tuples of ``columns`` into ``table``; returns how many rows went in.

    ``CopyText`` (PostgreSQL only) goes to the server as it is."""
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    if isinstance(rows, CopyText):
        if not postgresql:
            raise ValueError("COPY text is for PostgreSQL")
        if rows.count:
            with _copy_into(connection, table, columns) as copy:
                copy.write(rows.text)
        return rows.count
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    if postgresql:
        with _copy_into(connection, table, columns) as copy:
            # COPY's text format, written here: psycopg's write_row costs several times more
            # (a row with a value of another type still goes through write_row)
            buffer: list[str] = []
            instants: dict[datetime, str] = {}
            for row in rows:
                try:
                    buffer.append(copy_line(row, instants))
                except NotCopyText:
                    if buffer:
                        copy.write("".join(buffer))
                        buffer.clear()
                    copy.write_row(row)
                    continue
                if len(buffer) >= _COPY_BATCH:
                    copy.write("".join(buffer))
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))
        return len(rows)
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    # names come from our own table metadata, never from input
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    connection.exec_driver_sql(sql, rows)
    return len(rows)


def insert_packed(
    session: Session, packed: PackedRows, tables: Sequence[tuple[Table, Sequence[str]]]
) -> None:
    """Insert the rows of ``packed`` (SQLite only) into ``tables``, in that order, each table
    with the ``columns`` given (those of its rows in the image).

    The image is loaded as the connection's ``PACKED_SCHEMA`` database (attached to every
    SQLite connection, empty, by ``core.db``: a database cannot be attached in a
    transaction), then emptied again."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        raise ValueError("packed rows are for SQLite")
    unknown = set(packed.counts) - {table.name for table, _ in tables}
    if unknown:  # rows that would not be written
        raise ValueError(f"packed rows for tables not given: {sorted(unknown)}")
    if not packed.counts:
        return
    pooled = connection.connection
    driver = pooled.driver_connection
    driver.deserialize(packed.image, name=PACKED_SCHEMA)
    try:
        # A schema cookie this connection has not seen. SQLite keeps a prepared statement
        # while the cookie is unchanged, and two images with the same tables have the same
        # cookie but not the same pages (where a table starts depends on the rows before
        # it): a cached INSERT ... SELECT of the last image would read this one's pages as
        # other tables. A new cookie makes it prepare the statement again.
        cookie = pooled.info.get(_PACKED_COOKIE, _FIRST_PACKED_COOKIE) + 1
        pooled.info[_PACKED_COOKIE] = cookie
        driver.execute(f"PRAGMA {PACKED_SCHEMA}.schema_version = {cookie}")
        # SQLite's defensive mode ignores that pragma without a word: then stop, rather
        # than risk reading one image as another
        (taken,) = driver.execute(f"PRAGMA {PACKED_SCHEMA}.schema_version").fetchone()
        if taken != cookie:
            raise RuntimeError("SQLite ignored PRAGMA schema_version (defensive mode?)")
        for table, columns in tables:
            if not packed.counts.get(table.name):
                continue
            names = ", ".join(f'"{c}"' for c in columns)
            # names come from our own table metadata, never from input; in the rows' order,
            # as executemany would insert them (the ids an autoincrement key gives them)
            sql = (
                f'INSERT INTO main."{table.name}" ({names}) '  # noqa: S608
                f'SELECT {names} FROM {PACKED_SCHEMA}."{table.name}" ORDER BY rowid'
            )
            connection.exec_driver_sql(sql)
    finally:
        driver.deserialize(empty_image(), name=PACKED_SCHEMA)  # its memory back


_PACKED_COOKIE = "memberlab.packed_cookie"
# above any cookie of an image's own (one per table created)
_FIRST_PACKED_COOKIE = 1 << 20
