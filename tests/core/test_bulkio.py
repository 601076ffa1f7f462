"""Bulk rows in the database's own terms: on SQLite, an instant as the very text that
SQLAlchemy stores for a ``UtcDateTime`` column, so that rows written in bulk and rows written
by the ORM sort and compare alike; on PostgreSQL, COPY text made by ``copy_text`` that
stores what psycopg's own ``write_row`` stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from memberlab.core import bulkio
from memberlab.core.bulkio import insert_packed, insert_rows
from memberlab.core.bulkrows import (
    PACKED_SCHEMA,
    Adapter,
    CopyText,
    PackedRows,
    copy_text,
    pack_rows,
)
from memberlab.core.db import UtcDateTime

MOMENTS = [
    datetime(2024, 5, 22, 4, 1, 55, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year of three digits, zero-padded
    datetime(2025, 3, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")),  # another zone: as UTC
    datetime(2025, 3, 1, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_an_instant_is_the_text_sqlalchemy_stores_on_sqlite(moment: datetime) -> None:
    table = Table("moments", MetaData(), Column("id", Integer, primary_key=True))
    table.append_column(Column("at", UtcDateTime()))
    engine = create_engine("sqlite://")
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, at=moment))
        stored = connection.execute(text("select at from moments")).scalar_one()
        connection.execute(text("insert into moments (id, at) values (2, :at)"), {"at": stored})

        written = Adapter("sqlite").dt(moment)
        assert written == stored
        assert connection.execute(select(table.c.at).where(table.c.id == 2)).scalar() == moment


def test_an_instant_seen_again_is_the_same_text() -> None:
    adapter = Adapter("sqlite")
    moment = datetime(2026, 11, 25, tzinfo=UTC)
    assert adapter.dt(moment) is adapter.dt(datetime(2026, 11, 25, tzinfo=UTC))
    assert adapter.dt(None) is None


def test_postgresql_takes_instants_as_they_are() -> None:
    moment = datetime(2026, 11, 25, tzinfo=UTC)
    assert Adapter("postgresql").dt(moment) is moment


values = Table(
    "bulkio_values",
    MetaData(),
    Column("row", Integer),
    Column("label", Text),
    Column("at", DateTime(timezone=True)),
    Column("local", DateTime()),
    Column("day", Date),
    Column("flag", Boolean),
    Column("amount", BigInteger),
    Column("price", Numeric(12, 2)),
    Column("detail", JSON),
)
TRICKY_ROWS = [
    (
        1,
        "tab\there, new\nline, return\r, back\\slash, \\N",
        datetime(2024, 5, 22, 4, 1, 55, tzinfo=UTC),
        datetime(2024, 5, 22, 12, 1, 55),
        date(2024, 5, 22),
        True,
        -(2**40),
        Decimal("12.50"),
        orjson.dumps({"quote": 'say "hi"', "path": "C:\\tea", "zh": "拿铁好喝"}).decode(),
    ),
    (
        2,
        "会员日\tonly a tab",
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        None,
        None,
        False,
        0,
        None,
        None,
    ),
    (
        3,
        "",  # empty text, not NULL
        datetime(2025, 3, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        datetime(2025, 3, 1, 8, 0, 0, 5),
        date(999, 1, 2),
        None,
        None,
        Decimal("-0.01"),
        "[]",
    ),
]


def test_copy_text_stores_what_psycopgs_write_row_stores(engine: Engine, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("COPY is PostgreSQL's")
    columns = [c.name for c in values.columns]
    made = copy_text(TRICKY_ROWS)
    assert isinstance(made, CopyText)
    assert made.count == 3
    stored = []
    with engine.connect() as connection:
        values.create(connection)
        try:
            insert_rows(Session(connection), values, columns, made)
            by_copy_text = connection.execute(select(values).order_by(values.c.row)).all()
            connection.execute(values.delete())
            with bulkio._copy_into(connection, values, columns) as copy:
                for row in TRICKY_ROWS:
                    copy.write_row(row)
            by_psycopg = connection.execute(select(values).order_by(values.c.row)).all()
            stored = [by_copy_text, by_psycopg]
        finally:
            connection.rollback()
    assert stored[0] == stored[1]
    assert stored[0][0].label == TRICKY_ROWS[0][1]
    assert stored[0][0].detail["path"] == "C:\\tea"
    assert stored[0][2].at == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def test_an_instant_seen_again_is_the_same_copy_text_while_the_caller_keeps_it() -> None:
    instants: dict[datetime, str] = {}
    rows = [(datetime(2026, 11, 25, tzinfo=UTC), 1), (datetime(2026, 11, 25, tzinfo=UTC), 2)]
    made = copy_text(rows, instants)
    assert isinstance(made, CopyText)
    assert made.text == "2026-11-25 00:00:00.000000+00\t1\n2026-11-25 00:00:00.000000+00\t2\n"
    assert list(instants.values()) == ["2026-11-25 00:00:00.000000+00"]
    copy_text([(datetime(2027, 1, 1, tzinfo=UTC),)])  # without a dict: nothing kept
    assert len(instants) == 1


# --- among: IN with one parameter ----------------------------------------------------------------

CODES = ["O-1", "O'2", 'O"3', "订单-4", "O\\5", "O 6", "O-1"]  # quotes, Chinese, a duplicate


@pytest.mark.parametrize(
    ("wanted", "found"),
    [
        (CODES, {"O-1", "O'2", 'O"3', "订单-4", "O\\5", "O 6"}),
        (["O-1", "missing"], {"O-1"}),
        ([], set()),
    ],
)
def test_among_selects_the_rows_whose_value_is_listed(
    engine: Engine, wanted: list[str], found: set[str]
) -> None:
    table = Table(
        "among_codes",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("code", Text),
    )
    with engine.connect() as connection:
        table.create(connection)
        try:
            stored = sorted(set(CODES) | {"O-7"})
            connection.execute(insert(table), [{"id": i, "code": c} for i, c in enumerate(stored)])
            dialect = connection.dialect.name
            query = select(table.c.code).where(bulkio.among(table.c.code, wanted, dialect))
            by_code = set(connection.scalars(query))
            ids = [i for i, c in enumerate(stored) if c in found]
            query = select(table.c.code).where(bulkio.among(table.c.id, ids, dialect))
            by_id = set(connection.scalars(query))
        finally:
            connection.rollback()

    assert by_code == found
    assert by_id == found


# --- packed rows: SQLite's own image, from a worker process --------------------------------------

packed_a = Table(
    "packed_a", MetaData(), Column("id", Integer, primary_key=True), Column("label", Text)
)
packed_b = Table(
    "packed_b",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime),
    Column("flag", Boolean),
    Column("amount", BigInteger),
)
PACKED_TABLES = [(packed_a, ("id", "label")), (packed_b, ("id", "at", "flag", "amount"))]


def packed(first_id: int, a_rows: int) -> PackedRows:
    """Rows of both tables; how many ``packed_a`` has moves where ``packed_b`` starts in
    the image."""
    adapt = Adapter("sqlite")
    return pack_rows(
        {
            "packed_a": (("id", "label"), [(first_id + i, f"会员 {i}'s") for i in range(a_rows)]),
            "packed_b": (
                ("id", "at", "flag", "amount"),
                [
                    (first_id, adapt.dt(datetime(2026, 11, 25, 8, tzinfo=UTC)), 1, 2**62),
                    (first_id + 1, None, 0, -5),
                ],
            ),
        }
    )


def test_packed_rows_go_in_as_executemany_would_put_them(engine: Engine, backend: str) -> None:
    if backend == "postgresql":
        pytest.skip("packed rows are SQLite's")
    with engine.connect() as connection:
        for table, _ in PACKED_TABLES:
            table.create(connection)
        try:
            session = Session(connection)
            # two images with the same tables, the second with its pages elsewhere: each
            # read as itself, not through the statement prepared for the one before
            insert_packed(session, packed(1, 3), PACKED_TABLES)
            insert_packed(session, packed(100, 400), PACKED_TABLES)
            labels = connection.scalars(select(packed_a.c.label).order_by(packed_a.c.id)).all()
            b_rows = connection.execute(select(packed_b).order_by(packed_b.c.id)).all()
            empty = connection.exec_driver_sql(
                f"select count(*) from {PACKED_SCHEMA}.sqlite_master"
            ).scalar()
        finally:
            connection.rollback()
    assert len(labels) == 403
    assert labels[:2] == ["会员 0's", "会员 1's"]
    assert b_rows == [
        (1, datetime(2026, 11, 25, 8, tzinfo=UTC), True, 2**62),
        (2, None, False, -5),
        (100, datetime(2026, 11, 25, 8, tzinfo=UTC), True, 2**62),
        (101, None, False, -5),
    ]
    assert empty == 0  # the image's memory given back


def test_packed_rows_of_a_table_not_given_are_refused_before_anything_is_written(
    engine: Engine, backend: str
) -> None:
    if backend == "postgresql":
        pytest.skip("packed rows are SQLite's")
    with engine.connect() as connection:
        packed_a.create(connection)
        try:
            with pytest.raises(ValueError, match="packed_b"):
                insert_packed(Session(connection), packed(1, 3), PACKED_TABLES[:1])
            written = connection.scalar(select(func.count()).select_from(packed_a))
        finally:
            connection.rollback()
    assert written == 0


@pytest.mark.parametrize("count", [1, 99, 100, 101, 257])
def test_packed_rows_keep_their_order_and_values_across_statements(count: int) -> None:
    """Rows go in many to a statement, the rest one by one: all in the order given."""
    rows = [(i, f"行 {i}", None if i % 3 else 2**40 + i, i / 4) for i in range(count)]
    made = pack_rows({"t": (("a", "b", "c", "d"), rows)})
    image = sqlite3.connect(":memory:")
    try:
        image.deserialize(made.image)
        read = image.execute('SELECT * FROM "t" ORDER BY rowid').fetchall()
    finally:
        image.close()
    assert made.counts == {"t": count}
    assert read == rows


def test_packing_leaves_out_tables_without_rows() -> None:
    made = pack_rows({"packed_a": (("id", "label"), []), "packed_b": (("id",), [(1,)])})
    assert made.counts == {"packed_b": 1}
    nothing = pack_rows({"packed_a": (("id", "label"), [])})
    assert nothing.counts == {}


# --- key checks skipped: rows whose keys the caller has made sure of ----------------------------

parents = Table("kc_parents", MetaData(), Column("id", Integer, primary_key=True))
children = Table(
    "kc_children",
    parents.metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer, ForeignKey("kc_parents.id")),
)


def role_setting(connection) -> str:
    return connection.exec_driver_sql("SHOW session_replication_role").scalar()


def test_key_checks_are_skipped_inside_the_block_only(engine: Engine, backend: str) -> None:
    with engine.connect() as connection:
        parents.metadata.create_all(connection)
        try:
            connection.execute(insert(parents), [{"id": 1}])
            may = bulkio.may_skip_key_checks(connection)
            with bulkio.key_checks_skipped(connection):
                inside = role_setting(connection) if backend == "postgresql" else None
                # a child of a parent that is not there: only a key check would refuse it
                savepoint = connection.begin_nested()
                try:
                    connection.execute(insert(children), [{"id": 1, "parent_id": 99}])
                    orphan_refused = False
                except IntegrityError:
                    orphan_refused = True
                savepoint.rollback()
            after = role_setting(connection) if backend == "postgresql" else None
            with pytest.raises(IntegrityError):  # checked again after the block
                connection.execute(insert(children), [{"id": 2, "parent_id": 98}])
        finally:
            connection.rollback()

    if backend == "postgresql":  # the tests' role is the server's superuser
        assert may
        assert (inside, after) == ("replica", "origin")
        assert not orphan_refused
    else:
        assert not may
        assert orphan_refused


def test_key_checks_stay_when_not_asked_or_the_role_may_not(engine: Engine, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's session_replication_role")
    with engine.connect() as connection:
        parents.metadata.create_all(connection)
        try:
            with bulkio.key_checks_skipped(connection, skip=False):
                not_asked = role_setting(connection)
            # a role of no privilege (made here, gone with the rollback)
            connection.exec_driver_sql("CREATE ROLE memberlab_kc_plain NOLOGIN")
            connection.exec_driver_sql("SET LOCAL ROLE memberlab_kc_plain")
            may = bulkio.may_skip_key_checks(connection)
            with bulkio.key_checks_skipped(connection):
                plain_role = role_setting(connection)
        finally:
            connection.rollback()

    assert not_asked == "origin"
    assert not may
    assert plain_role == "origin"


def test_a_failure_inside_the_block_leaves_the_checks_on_after_the_rollback(
    engine: Engine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's session_replication_role")
    with engine.connect() as connection:
        parents.metadata.create_all(connection)
        connection.commit()
        try:
            with pytest.raises(IntegrityError), bulkio.key_checks_skipped(connection):
                connection.execute(insert(parents), [{"id": 5}, {"id": 5}])
            connection.rollback()
            setting = role_setting(connection)
        finally:
            connection.rollback()
            parents.metadata.drop_all(connection)
            connection.commit()

    assert setting == "origin"
