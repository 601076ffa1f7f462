"""``FastStatement``: a Core statement run on the driver's cursor, on both backends.

It must give what ``Connection.execute`` gives for the same statement: the same rows, with
the column types' conversions (aware UTC datetimes, booleans, JSON), SQLAlchemy's
exceptions, the connection's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from memberlab.core import bulkio, fastsql
from memberlab.core.bulkrows import CopyText
from memberlab.core.db import UtcDateTime
from memberlab.core.fastsql import FastStatement

metadata = MetaData()
things = Table(
    "fastsql_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("detail", JSON),
)
with_default = Table(
    "fastsql_defaults",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), default="unnamed"),
)

# PostgreSQL only: a unique key checked at COMMIT, not at each statement
deferred_metadata = MetaData()
deferred = Table(
    "fastsql_deferred",
    deferred_metadata,
    Column("code", String(20), nullable=False),
    UniqueConstraint("code", deferrable=True, initially="DEFERRED"),
)

BY_NAME = FastStatement(select(things).where(things.c.name == bindparam("name")))
ACTIVE_SINCE = FastStatement(
    select(things.c.name, things.c.at)
    .where(things.c.active.is_(True), things.c.at >= bindparam("since"))
    .order_by(things.c.at)
    .limit(2)
)
INSERT = FastStatement(insert(things))
RENAME = FastStatement(update(things).where(things.c.name == bindparam("old")))

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection with the two tables, all in a transaction rolled back afterwards."""
    with engine.connect() as connection, connection.begin() as transaction:
        metadata.create_all(connection)
        yield connection
        transaction.rollback()


@pytest.fixture
def committing(engine: Engine) -> Iterator[Connection]:
    """A connection with the two tables whose transactions really commit (and roll back);
    the tables are dropped afterwards."""
    with engine.connect() as connection:
        with connection.begin():
            metadata.create_all(connection)
        try:
            yield connection
        finally:
            if connection.in_transaction():
                connection.rollback()
            with connection.begin():
                metadata.drop_all(connection)


def add(connection: Connection, name: str, at: datetime, *, active: bool = True) -> None:
    INSERT.run(connection, {"name": name, "at": at, "active": active, "detail": {"n": [1, 2]}})


def test_rows_are_what_connection_execute_gives(connection: Connection) -> None:
    # a time given in Shanghai comes back as the same instant in UTC, as through the ORM
    add(connection, "tea", NOON.astimezone(timezone(timedelta(hours=8))))
    row = BY_NAME.first(connection, {"name": "tea"})
    expected = connection.execute(BY_NAME.statement, {"name": "tea"}).one()

    assert tuple(row) == tuple(expected)
    assert row.at == NOON
    assert row.at.tzinfo is not None
    assert row.active is True
    assert row.detail == {"n": [1, 2]}
    assert BY_NAME.first(connection, {"name": "coffee"}) is None


def test_literal_parameters_and_limits_are_kept(connection: Connection) -> None:
    for hours, name in [(3, "c"), (1, "a"), (2, "b"), (0, "early")]:
        add(connection, name, NOON + timedelta(hours=hours))
    add(connection, "off", NOON + timedelta(hours=1), active=False)

    rows = ACTIVE_SINCE.rows(connection, {"since": NOON + timedelta(minutes=30)})

    assert [(r.name, r.at) for r in rows] == [
        ("a", NOON + timedelta(hours=1)),
        ("b", NOON + timedelta(hours=2)),
    ]


def test_updates_set_the_columns_named_and_count_rows(connection: Connection) -> None:
    add(connection, "tea", NOON)
    add(connection, "cake", NOON)

    assert RENAME.run(connection, {"old": "tea", "name": "green tea"}) == 1
    assert RENAME.run(connection, {"old": "nothing", "name": "x"}) == 0
    # another set of columns is another compiled statement
    RENAME.run(connection, {"old": "cake", "active": False})

    assert BY_NAME.first(connection, {"name": "green tea"}) is not None
    assert BY_NAME.first(connection, {"name": "cake"}).active is False


def test_run_many_writes_every_row(connection: Connection) -> None:
    INSERT.run_many(
        connection,
        [{"name": f"t{i}", "at": NOON, "active": i % 2 == 0, "detail": None} for i in range(5)],
    )
    INSERT.run_many(connection, [])

    names = connection.execute(select(things.c.name).order_by(things.c.name)).scalars().all()
    assert names == ["t0", "t1", "t2", "t3", "t4"]
    assert BY_NAME.first(connection, {"name": "t3"}).detail is None


def test_the_drivers_errors_come_as_sqlalchemys(connection: Connection) -> None:
    add(connection, "tea", NOON)
    savepoint = connection.begin_nested()
    with pytest.raises(IntegrityError):
        add(connection, "tea", NOON)
    savepoint.rollback()
    # the transaction goes on
    assert BY_NAME.first(connection, {"name": "tea"}) is not None


def test_writes_belong_to_the_connections_transaction(committing: Connection) -> None:
    with committing.begin() as transaction:
        add(committing, "tea", NOON)
        transaction.rollback()
    with committing.begin():
        assert BY_NAME.first(committing, {"name": "tea"}) is None


def test_a_missing_parameter_is_named(connection: Connection) -> None:
    with pytest.raises(KeyError, match="'name'"):
        BY_NAME.rows(connection, {"nmae": "tea"})


def test_naive_times_are_refused_as_by_the_orm(connection: Connection) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        add(connection, "tea", datetime(2026, 11, 25, 12, 0))


def test_python_side_defaults_must_be_given(connection: Connection) -> None:
    statement = FastStatement(insert(with_default))
    with pytest.raises(ValueError, match=r"\['name'\] take a Python-side default"):
        statement.run(connection, {"id": 1})
    assert statement.run(connection, {"id": 2, "name": "given"}) == 1
    assert connection.execute(select(with_default.c.name)).scalars().all() == ["given"]


# --- sent statements: on PostgreSQL queued, and run with the next statement needing an answer --


def test_sent_writes_are_seen_by_the_next_fast_statement(connection: Connection) -> None:
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    INSERT.send_many(
        connection,
        [{"name": n, "at": NOON, "active": False, "detail": None} for n in ("cake", "bun")],
    )
    RENAME.send(connection, {"old": "bun", "name": "steamed bun"})

    assert BY_NAME.first(connection, {"name": "tea"}).active is True
    assert BY_NAME.first(connection, {"name": "steamed bun"}) is not None
    assert BY_NAME.first(connection, {"name": "bun"}) is None


def test_sent_writes_are_seen_by_sqlalchemy_statements(connection: Connection) -> None:
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    names = connection.execute(select(things.c.name)).scalars().all()
    assert names == ["tea"]


def test_a_run_after_sent_writes_counts_its_own_rows(connection: Connection) -> None:
    INSERT.send_many(
        connection, [{"name": n, "at": NOON, "active": True, "detail": None} for n in "abc"]
    )
    assert RENAME.run(connection, {"old": "b", "name": "bee"}) == 1


def test_sent_writes_are_committed_with_nothing_after_them(
    engine: Engine, committing: Connection
) -> None:
    with committing.begin():
        INSERT.send(committing, {"name": "tea", "at": NOON, "active": True, "detail": None})
    with engine.connect() as other, other.begin():
        assert BY_NAME.first(other, {"name": "tea"}) is not None


def test_sent_writes_of_one_table_take_effect_in_the_order_sent(committing: Connection) -> None:
    # on PostgreSQL sent writes are combined into few statements, whose parts cannot see
    # each other's rows: an UPDATE never shares one with another write of its table
    with committing.begin():
        INSERT.send(committing, {"name": "tea", "at": NOON, "active": True, "detail": None})
        RENAME.send(committing, {"old": "tea", "name": "green tea"})
        INSERT.send(committing, {"name": "cake", "at": NOON, "active": True, "detail": None})
        RENAME.send(committing, {"old": "cake", "name": "lemon cake"})
        RENAME.send(committing, {"old": "green tea", "name": "jasmine tea"})
    with committing.begin():
        names = committing.execute(select(things.c.name).order_by(things.c.name)).scalars()
        assert names.all() == ["jasmine tea", "lemon cake"]


def test_many_sent_rows_all_arrive(committing: Connection) -> None:
    # 40 rows of 4 values: more than one combined statement takes (50 parameters)
    rows = [
        {"name": f"tea {i}", "at": NOON + timedelta(minutes=i), "active": i % 2 == 0}
        for i in range(40)
    ]
    with committing.begin():
        INSERT.send_many(committing, [{**row, "detail": {"i": i}} for i, row in enumerate(rows)])
    with committing.begin():
        stored = committing.execute(select(things).order_by(things.c.at)).all()
    assert [(r.name, r.at, r.active, r.detail) for r in stored] == [
        (row["name"], row["at"], row["active"], {"i": i}) for i, row in enumerate(rows)
    ]


def test_sent_inserts_go_to_the_server_as_one_statement(
    connection: Connection, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no queue: each sent statement runs at once")
    statements: list[str] = []
    call = fastsql._call

    def counted(cursor: Any, sql: str, parameters: Any, many: bool) -> None:
        statements.append(sql)
        call(cursor, sql, parameters, many)

    monkeypatch.setattr(fastsql, "_call", counted)
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    INSERT.send(connection, {"name": "cake", "at": NOON, "active": False, "detail": [1]})
    FastStatement(insert(with_default)).send(connection, {"name": "tea"})
    assert BY_NAME.first(connection, {"name": "cake"}).detail == [1]

    # the three writes as one statement, then the read whose answer was asked for
    assert len(statements) == 2
    assert statements[0].startswith("WITH ")
    assert statements[0].count("INSERT INTO") == 3
    assert connection.execute(select(with_default.c.name)).scalars().all() == ["tea"]


def test_a_sent_statements_error_at_the_commit_rolls_back(
    committing: Connection, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no queue: a sent statement's error comes from send itself")
    row = {"name": "tea", "at": NOON, "active": True, "detail": None}
    with committing.begin():
        INSERT.run(committing, row)
    transaction = committing.begin()
    INSERT.send(committing, {**row, "name": "cake"})
    INSERT.send(committing, row)  # "tea" is taken: raised by the commit
    with pytest.raises(IntegrityError):
        transaction.commit()
    transaction.rollback()  # as after any failed commit
    # nothing of that transaction stayed, and the connection goes on
    with committing.begin():
        assert committing.execute(select(things.c.name)).scalars().all() == ["tea"]


def test_a_commit_the_server_refuses_is_raised_and_keeps_nothing(
    engine: Engine, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("a unique key checked at COMMIT is PostgreSQL's")
    insert_code = FastStatement(insert(deferred))
    with engine.connect() as connection:
        with connection.begin():
            deferred_metadata.create_all(connection)
        try:
            transaction = connection.begin()
            # both pass their statements; the COMMIT, sent with them, finds the duplicate
            insert_code.send(connection, {"code": "tea"})
            insert_code.send(connection, {"code": "tea"})
            with pytest.raises(IntegrityError, match="fastsql_deferred"):
                transaction.commit()
            transaction.rollback()
            with connection.begin():
                assert connection.execute(select(deferred.c.code)).all() == []
        finally:
            with connection.begin():
                deferred_metadata.drop_all(connection)


def test_a_rollback_drops_what_was_sent(committing: Connection) -> None:
    with committing.begin() as transaction:
        INSERT.send(committing, {"name": "tea", "at": NOON, "active": True, "detail": None})
        transaction.rollback()
    # nothing of it reaches the next transaction either
    with committing.begin():
        assert BY_NAME.first(committing, {"name": "tea"}) is None


def test_a_savepoints_rollback_drops_only_what_it_sent(connection: Connection) -> None:
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    savepoint = connection.begin_nested()
    INSERT.send(connection, {"name": "cake", "at": NOON, "active": True, "detail": None})
    savepoint.rollback()

    names = connection.execute(select(things.c.name)).scalars().all()
    assert names == ["tea"]


def test_a_sent_statements_error_is_raised_by_the_next_answer(
    connection: Connection, backend: str
) -> None:
    add(connection, "tea", NOON)
    if backend == "sqlite":  # no queue: the statement runs at once
        with pytest.raises(IntegrityError):
            INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
        return
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    with pytest.raises(IntegrityError, match="fastsql_things") as raised:
        BY_NAME.first(connection, {"name": "tea"})
    # the driver does not say which statement of the pipeline failed: all are named
    assert "INSERT INTO fastsql_things" in str(raised.value)
    assert "SELECT" in str(raised.value)


def test_sent_writes_go_before_a_copy(connection: Connection, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("COPY is PostgreSQL's")
    INSERT.send(connection, {"name": "tea", "at": NOON, "active": True, "detail": None})
    copy = CopyText(f"tea\t{NOON.isoformat()}\tt\n", 1)
    unique_violation = connection.dialect.loaded_dbapi.errors.UniqueViolation
    with pytest.raises(unique_violation):  # the queued "tea" is there before the COPY's
        bulkio.insert_rows(Session(connection), things, ["name", "at", "active"], copy)


@pytest.mark.parametrize("queued", [False, True], ids=["nothing queued", "a write queued"])
def test_a_lost_connection_still_rolls_back_cleanly(
    engine: Engine, backend: str, queued: bool
) -> None:
    if backend == "sqlite":
        pytest.skip("a PostgreSQL server process is what gets lost here")
    with engine.connect() as connection:
        connection.begin()
        pid = connection.exec_driver_sql("select pg_backend_pid()").scalar()
        if queued:  # then the flush before the next statement meets the lost connection
            RENAME.send(connection, {"old": "tea", "name": "green tea"})
        with engine.connect() as other, other.begin():
            other.exec_driver_sql(f"select pg_terminate_backend({pid})")
        with pytest.raises(OperationalError):
            connection.exec_driver_sql("select 1")
        connection.rollback()  # the lost connection's error was the one raised
    with engine.connect() as connection:  # and the pool goes on with a new one
        assert connection.exec_driver_sql("select 1").scalar() == 1
