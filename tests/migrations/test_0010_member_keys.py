"""Migration 0010 on a store holding data: a member's ledger rows move to one key,
``(tenant_id, member_pk)`` -> ``members (tenant_id, id)``, and keep every row both ways."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from conftest import BACKENDS, postgres_engine_in_new_schema
from memberlab.core import migrate
from memberlab.core.db import create_db_engine
from memberlab.ledger.models import MemberOwned

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
BEFORE = "0009"


@pytest.fixture(params=BACKENDS)
def engine_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at 0009 (two tenants, a member each, one purchase's rows for A's member)."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'store.db'}")
        migrate.upgrade(engine, BEFORE)
        _fill(engine)
        yield engine
        engine.dispose()
        return
    with postgres_engine_in_new_schema(BEFORE) as engine:
        _fill(engine)
        yield engine


def _fill(engine: Engine) -> None:
    at = NOW.isoformat() if engine.dialect.name == "sqlite" else NOW
    with engine.begin() as connection:
        for tenant_id, slug in ((1, "a"), (2, "b")):
            connection.execute(
                text(
                    "INSERT INTO tenants (id, slug, name_zh, name_en, timezone, currency, language,"
                    " created_at, config_stamp) VALUES (:id, :slug, :slug, :slug,"
                    " 'Asia/Shanghai', 'CNY', 'zh-CN', :at, 'stamp')"
                ),
                {"id": tenant_id, "slug": slug, "at": at},
            )
            connection.execute(
                text(
                    "INSERT INTO members (id, tenant_id, member_id, enrolled_at, created_at,"
                    " updated_at, consents, status) VALUES (:id, :tenant, :code, :at, :at, :at,"
                    " '{}', 'active')"
                ),
                {"id": tenant_id * 10, "tenant": tenant_id, "code": f"M-{slug}", "at": at},
            )
        connection.execute(
            text(
                "INSERT INTO ledger_entries (tenant_id, member_pk, seq, kind, at, recorded_at,"
                " points, growth, spend, orders, detail)"
                " VALUES (1, 10, 1, 'purchase', :at, :at, 120, 120, 12000, 1, '{}')"
            ),
            {"at": at},
        )
        connection.execute(
            text(
                "INSERT INTO postings (tenant_id, member_pk, entry_seq, leg, source, destination,"
                " amount, at) VALUES (1, 10, 1, 0, 'issued', 'available', 120, :at)"
            ),
            {"at": at},
        )
        connection.execute(
            text(
                "INSERT INTO points_lots (tenant_id, member_pk, seq, earned_at, available_at,"
                " expires_at, amount, remaining, source, released, reference, noticed)"
                " VALUES (1, 10, 2, :at, :at, NULL, 120, 120, 'purchase', :yes, 'O-1', :no)"
            ),
            {"at": at, "yes": True, "no": False},
        )
        connection.execute(
            text(
                "INSERT INTO tier_changes (tenant_id, member_pk, at, from_tier, to_tier, reason)"
                " VALUES (1, 10, :at, 'green', 'gold', 'upgrade')"
            ),
            {"at": at},
        )


# each table's key columns and one value, for the rows _fill wrote
ROW_COLUMNS = {
    "ledger_entries": "tenant_id, member_pk, seq, points",
    "postings": "tenant_id, member_pk, entry_seq, amount",
    "points_lots": "tenant_id, member_pk, seq, remaining",
    "tier_changes": "tenant_id, member_pk, id, to_tier",
}
ROWS = [(1, 10, 1, 120), (1, 10, 1, 120), (1, 10, 2, 120), (1, 10, 1, "gold")]
# every table whose rows belong to a member, as the models say
LEDGER_TABLES = sorted(model.__tablename__ for model in MemberOwned.__subclasses__())


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for table, columns in ROW_COLUMNS.items()
            for row in connection.execute(text(f"SELECT {columns} FROM {table}"))
        ]


def _primary_key(engine: Engine, table: str) -> list[str]:
    return inspect(engine).get_pk_constraint(table)["constrained_columns"]


def _member_keys(engine: Engine, table: str) -> list[tuple[list[str], str, list[str]]]:
    keys = inspect(engine).get_foreign_keys(table)
    return sorted(
        (key["constrained_columns"], key["referred_table"], key["referred_columns"]) for key in keys
    )


def test_the_ledger_rows_reference_their_member_in_their_tenant_after_the_upgrade(
    engine_before: Engine,
) -> None:
    migrate.upgrade(engine_before)

    assert _rows(engine_before) == ROWS
    for table in LEDGER_TABLES:
        assert _member_keys(engine_before, table) == [
            (["tenant_id", "member_pk"], "members", ["tenant_id", "id"])
        ]
    assert _primary_key(engine_before, "ledger_entries") == ["tenant_id", "member_pk", "seq"]
    assert _primary_key(engine_before, "postings") == [
        "tenant_id",
        "member_pk",
        "entry_seq",
        "leg",
    ]
    indexes = {index["name"] for index in inspect(engine_before).get_indexes("postings")}
    assert "ix_postings_tenant_at" not in indexes
    with pytest.raises(IntegrityError), engine_before.begin() as connection:
        # tenant 1 writing a posting for tenant 2's member (20): refused by the database
        connection.execute(
            text(
                "INSERT INTO postings (tenant_id, member_pk, entry_seq, leg, source, destination,"
                " amount, at) VALUES (1, 20, 1, 0, 'issued', 'available', 5, :at)"
            ),
            {"at": NOW.isoformat() if engine_before.dialect.name == "sqlite" else NOW},
        )
    assert _rows(engine_before) == ROWS


def test_the_downgrade_restores_the_two_keys_and_keeps_the_rows(engine_before: Engine) -> None:
    migrate.upgrade(engine_before)

    with engine_before.begin() as connection:
        migrate.downgrade(connection, BEFORE)

    assert _rows(engine_before) == ROWS
    for table in LEDGER_TABLES:
        assert _member_keys(engine_before, table) == [
            (["member_pk"], "members", ["id"]),
            (["tenant_id"], "tenants", ["id"]),
        ]
    assert _primary_key(engine_before, "postings") == ["member_pk", "entry_seq", "leg"]
    indexes = {index["name"] for index in inspect(engine_before).get_indexes("postings")}
    assert "ix_postings_tenant_at" in indexes


def test_a_row_naming_another_tenants_member_stops_the_upgrade_by_name(
    engine_before: Engine,
) -> None:
    with engine_before.begin() as connection:
        connection.execute(text("UPDATE points_lots SET tenant_id = 2"))  # member 10 is 1's

    with pytest.raises(RuntimeError, match="1 rows of points_lots name a member of another"):
        migrate.upgrade(engine_before)

    with engine_before.connect() as connection:
        assert migrate.current_revision(connection) == BEFORE
    assert _member_keys(engine_before, "points_lots") == [
        (["member_pk"], "members", ["id"]),
        (["tenant_id"], "tenants", ["id"]),
    ]
