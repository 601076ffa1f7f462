"""Schema migrations (Alembic), run from code: ``memberlab db upgrade`` and the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("memberlab") / "migrations"))
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is now at."""
    return _migrate(bind, command.upgrade, revision)


def downgrade(bind: Engine | Connection, revision: str) -> str:
    """Take the schema back to ``revision`` (for a release rolled back); returns where it is."""
    return _migrate(bind, command.downgrade, revision)


def _migrate(bind: Engine | Connection, step: Callable[[Config, str], None], revision: str) -> str:
    """``step`` to ``revision`` in one transaction; the caller's, if it has one open.

    On SQLite a migration that changes a table's keys copies the table and drops the old
    one, and with foreign keys enforced that drop first deletes every row: the rows of other
    tables that reference it are refused (RESTRICT) or lose their reference (SET NULL). So
    migrations run with enforcement off, and ``PRAGMA foreign_key_check`` then checks every
    key before the transaction commits. The pragma cannot change inside a transaction: on a
    SQLite connection with one open, a migration that has anything to do is refused.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return _migrate(connection, step, revision)
    config = alembic_config()
    config.attributes["connection"] = bind
    if not bind.in_transaction():
        with migration_transaction(bind):
            step(config, revision)
        return current_revision(bind) or ""
    if bind.dialect.name == "sqlite":
        enforced = bind.exec_driver_sql("PRAGMA foreign_keys").scalar()
        if enforced and current_revision(bind) != _resolved(revision):
            raise RuntimeError(
                "on SQLite, migrate with an engine or a connection without an open transaction"
                " (foreign keys are enforced, and copying a table would break other tables' keys)"
            )
    step(config, revision)
    return current_revision(bind) or ""


def _resolved(revision: str) -> str:
    return head_revision() if revision == "head" else revision


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """The transaction migrations run in, on ``connection`` (which has none open): on
    SQLite with foreign keys unenforced, and every key checked before it commits. Used here
    and by the ``alembic`` command's ``env.py``."""
    if connection.dialect.name != "sqlite":
        with connection.begin():
            yield
        return
    with sqlite_foreign_keys_off(connection), connection.begin():
        yield
        check_foreign_keys(connection)


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite's foreign key enforcement off on ``connection`` (which has no open
    transaction) for the block, and on again after it."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """Every foreign key of a SQLite database holds, or an error naming where they do not."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        counts: dict[tuple[str, str], int] = {}
        for table, _rowid, parent, _key in broken:
            counts[(table, parent)] = counts.get((table, parent), 0) + 1
        named = ", ".join(f"{n} rows of {t} (to {p})" for (t, p), n in sorted(counts.items()))
        raise RuntimeError(f"the migration would break foreign keys: {named}")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def refuse_rows_of_another_tenants_member(connection: Connection, tables: Iterable[str]) -> None:
    """For a migration that gives ``tables`` the member key (``members.models.member_key``):
    rows it would refuse in the database's own words stop the upgrade, named by table."""
    members = sa.table("members", sa.column("id"), sa.column("tenant_id"))
    for table in tables:
        rows = sa.table(table, sa.column("tenant_id"), sa.column("member_pk"))
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(rows.join(members, members.c.id == rows.c.member_pk))
            .where(members.c.tenant_id != rows.c.tenant_id)
        ).scalar_one()
        if count:
            raise RuntimeError(
                f"{count} rows of {table} name a member of another tenant (their tenant_id"
                " is not the member's): correct them before upgrading"
            )
