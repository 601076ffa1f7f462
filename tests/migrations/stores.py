"""Stores at an earlier revision, holding data, for the tests of one migration each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from conftest import postgres_engine_in_new_schema
from memberlab.core import migrate
from memberlab.core.db import create_db_engine

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@contextmanager
def store_at(revision: str, backend: str, folder: Path) -> Iterator[Engine]:
    """An empty store migrated to ``revision`` on ``backend`` (PostgreSQL: a new schema)."""
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{folder / 'store.db'}")
        migrate.upgrade(engine, revision)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with postgres_engine_in_new_schema(revision) as engine:
        yield engine


def instant(connection: Connection) -> Any:
    """``NOW`` as the raw SQL of these tests writes it on the connection's database."""
    return NOW.isoformat() if connection.dialect.name == "sqlite" else NOW


def add_two_tenants_with_a_member_each(connection: Connection) -> None:
    """Tenants 1 ("a") and 2 ("b"), with members 10 ("M-a") and 20 ("M-b")."""
    for tenant_id, slug in ((1, "a"), (2, "b")):
        connection.execute(
            text(
                "INSERT INTO tenants (id, slug, name_zh, name_en, timezone, currency, language,"
                " created_at, config_stamp) VALUES (:id, :slug, :slug, :slug,"
                " 'Asia/Shanghai', 'CNY', 'zh-CN', :at, 'stamp')"
            ),
            {"id": tenant_id, "slug": slug, "at": instant(connection)},
        )
        connection.execute(
            text(
                "INSERT INTO members (id, tenant_id, member_id, enrolled_at, created_at,"
                " updated_at, consents, status) VALUES (:id, :tenant, :code, :at, :at, :at,"
                " '{}', 'active')"
            ),
            {
                "id": tenant_id * 10,
                "tenant": tenant_id,
                "code": f"M-{slug}",
                "at": instant(connection),
            },
        )


def foreign_keys(engine: Engine, table: str) -> list[tuple[list[str], str, list[str]]]:
    """The table's foreign keys as (columns, referred table, referred columns), sorted."""
    return sorted(
        (key["constrained_columns"], key["referred_table"], key["referred_columns"])
        for key in inspect(engine).get_foreign_keys(table)
    )
