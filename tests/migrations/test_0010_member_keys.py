"""Migration 0010 on a store holding data: a member's ledger rows move to one key,
``(tenant_id, member_pk)`` -> ``members (tenant_id, id)``, and keep every row both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from conftest import BACKENDS
from memberlab.core import migrate
from memberlab.ledger.models import MemberOwned
from migrations.stores import (
    NOW,
    add_two_tenants_with_a_member_each,
    foreign_keys,
    instant,
    store_at,
)

BEFORE = "0009"


@pytest.fixture(params=BACKENDS)
def engine_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at 0009 (two tenants, a member each, one purchase's rows for A's member)."""
    with store_at(BEFORE, request.param, tmp_path) as engine:
        _fill(engine)
        yield engine


def _fill(engine: Engine) -> None:
    with engine.begin() as connection:
        add_two_tenants_with_a_member_each(connection)
        at = instant(connection)
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


def test_the_ledger_rows_reference_their_member_in_their_tenant_after_the_upgrade(
    engine_before: Engine,
) -> None:
    migrate.upgrade(engine_before)

    assert _rows(engine_before) == ROWS
    for table in LEDGER_TABLES:
        assert foreign_keys(engine_before, table) == [
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

    migrate.downgrade(engine_before, BEFORE)

    assert _rows(engine_before) == ROWS
    for table in LEDGER_TABLES:
        assert foreign_keys(engine_before, table) == [
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
    assert foreign_keys(engine_before, "points_lots") == [
        (["member_pk"], "members", ["id"]),
        (["tenant_id"], "tenants", ["id"]),
    ]
