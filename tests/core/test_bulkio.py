"""Bulk rows in the database's own terms: on SQLite, an instant as the very text that
SQLAlchemy stores for a ``UtcDateTime`` column, so that rows written in bulk and rows written
by the ORM sort and compare alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from memberlab.core.bulkio import Adapter
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
