"""Running the migrations from code (``core.migrate``) on SQLite, where a migration that
changes a table's keys copies the table: foreign keys are not enforced meanwhile, and are
all checked before the migration commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from memberlab.core import migrate
from memberlab.core.db import create_db_engine


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Engine:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate.upgrade(engine, "0010")
    return engine


def test_an_upgrade_leaves_foreign_keys_enforced(sqlite_store: Engine) -> None:
    assert migrate.upgrade(sqlite_store) == migrate.head_revision()

    with sqlite_store.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_broken_key_found_after_the_steps_rolls_the_migration_back(
    sqlite_store: Engine,
) -> None:
    """A row whose key does not hold (written while enforcement was off) stops the upgrade
    by table, and the store stays where it was."""
    with (
        sqlite_store.connect() as connection,
        migrate.sqlite_foreign_keys_off(connection),
        connection.begin(),
    ):
        connection.execute(
            text("INSERT INTO member_tags (tenant_id, member_pk, tag) VALUES (1, 99, 'ghost')")
        )

    with pytest.raises(RuntimeError, match="1 rows of member_tags"):
        migrate.upgrade(sqlite_store)

    with sqlite_store.connect() as connection:
        assert migrate.current_revision(connection) == "0010"


def test_a_sqlite_connection_with_an_open_transaction_is_not_migrated(
    sqlite_store: Engine,
) -> None:
    """Enforcement cannot be turned off inside a transaction."""
    with sqlite_store.begin() as connection:
        with pytest.raises(RuntimeError, match="without an open transaction"):
            migrate.upgrade(connection)
        assert migrate.current_revision(connection) == "0010"

    with sqlite_store.begin() as connection:  # nothing to do: fine
        assert migrate.upgrade(connection, "0010") == "0010"
