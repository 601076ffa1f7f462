"""Migration 0011 on a store holding data: redemptions, coupons, tags, survey answers,
invitations and follow-up cases reference their member by ``(tenant_id, member_pk)``, keep
their key to ``tenants``, and keep every row both ways. Rows without a member stay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from conftest import BACKENDS
from memberlab.core import migrate
from migrations.stores import add_two_tenants_with_a_member_each, foreign_keys, instant, store_at

BEFORE = "0010"
TABLES = (
    "redemptions",
    "coupons",
    "member_tags",
    "survey_responses",
    "survey_invitations",
    "follow_up_cases",
)
# what _fill writes: (table, a column that tells the row, its member), in this order
ROWS = [
    ("redemptions", "R-1", 10),
    ("coupons", "C-1", 10),
    ("member_tags", "vip", 10),
    ("survey_responses", "answer-1", 10),
    ("survey_responses", "anonymous", None),
    ("survey_invitations", "invite-1", 10),
    ("follow_up_cases", "manual", None),
]
INSERTS = {
    "redemptions": "INSERT INTO redemptions (tenant_id, member_pk, reward_code, quantity, points,"
    " unit_cost, entry_seq, occurred_at, reference) VALUES (1, :member, 'tea', 1, 500, 0, 1,"
    " :at, :tell)",
    # each row after the first of its table refers to a row of a table that 0011 copies
    "coupons": "INSERT INTO coupons (tenant_id, code, member_pk, reward_code, redemption_id,"
    " value, min_spend, issued_at, valid_until, status) VALUES (1, :tell, :member, 'tea', 1,"
    " 1000, 0, :at, :at, 'issued')",
    "member_tags": "INSERT INTO member_tags (tenant_id, member_pk, tag) VALUES (1, :member, :tell)",
    "survey_responses": "INSERT INTO survey_responses (tenant_id, response_id, member_pk,"
    " responded_at, survey, source, created_at) VALUES (1, :tell, :member, :at,"
    " 'transactional', 'import', :at)",
    "survey_invitations": "INSERT INTO survey_invitations (tenant_id, survey_pk, member_pk,"
    " token_hash, dedupe_key, trigger, language, created_at, expires_at) VALUES (1, 1, :member,"
    " 'hash', :tell, 'manual', 'zh-CN', :at, :at)",
    "follow_up_cases": "INSERT INTO follow_up_cases (tenant_id, member_pk, response_pk,"
    " resurvey_pk, reason, status, opened_at, due_at) VALUES (1, :member, 1, 1, :tell, 'open',"
    " :at, :at)",
}
TELLING = {
    "redemptions": "reference",
    "coupons": "code",
    "member_tags": "tag",
    "survey_responses": "response_id",
    "survey_invitations": "dedupe_key",
    "follow_up_cases": "reason",
}


@pytest.fixture(params=BACKENDS)
def engine_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store at 0010: two tenants, a member each, and rows of each table for A's member."""
    with store_at(BEFORE, request.param, tmp_path) as engine:
        with engine.begin() as connection:
            add_two_tenants_with_a_member_each(connection)
            connection.execute(
                text(
                    "INSERT INTO surveys (id, tenant_id, code, kind, status, definition,"
                    " created_at, updated_at, created_by) VALUES (1, 1, 'after-purchase',"
                    " 'nps', 'active', '{}', :at, :at, 'test')"
                ),
                {"at": instant(connection)},
            )
            for table, tell, member in ROWS:
                connection.execute(
                    text(INSERTS[table]),
                    {"member": member, "tell": tell, "at": instant(connection)},
                )
        yield engine


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            (table, *row)
            for table in dict.fromkeys(table for table, _, _ in ROWS)
            for row in connection.execute(
                text(f"SELECT {TELLING[table]}, member_pk FROM {table} ORDER BY {TELLING[table]}")
            )
        ]


# a coupon's redemption, a case's answer and its new invitation (ON DELETE SET NULL): on
# SQLite, 0011 copies redemptions, survey_responses and survey_invitations and drops the old
# tables, which must neither be refused nor null these
REFERENCES = [(1,), (1, 1)]


def _references(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        coupon = connection.execute(text("SELECT redemption_id FROM coupons")).one()
        case = connection.execute(text("SELECT response_pk, resurvey_pk FROM follow_up_cases"))
        return [tuple(coupon), tuple(case.one())]


def test_the_rows_reference_their_member_in_their_tenant_after_the_upgrade(
    engine_before: Engine,
) -> None:
    migrate.upgrade(engine_before, "0011")

    assert _rows(engine_before) == sorted(ROWS, key=lambda row: (TABLES.index(row[0]), row[1]))
    assert _references(engine_before) == REFERENCES
    for table in TABLES:
        assert (["tenant_id", "member_pk"], "members", ["tenant_id", "id"]) in foreign_keys(
            engine_before, table
        )
        assert (["member_pk"], "members", ["id"]) not in foreign_keys(engine_before, table)
        assert (["tenant_id"], "tenants", ["id"]) in foreign_keys(engine_before, table)
    with pytest.raises(IntegrityError), engine_before.begin() as connection:
        # tenant 1 giving a coupon to tenant 2's member (20): refused by the database
        connection.execute(
            text(INSERTS["coupons"]), {"member": 20, "tell": "C-2", "at": instant(connection)}
        )
    with engine_before.begin() as connection:  # a row without a member is not checked
        connection.execute(
            text(
                "INSERT INTO follow_up_cases (tenant_id, member_pk, reason, status, opened_at,"
                " due_at) VALUES (1, NULL, 'detractor', 'open', :at, :at)"
            ),
            {"at": instant(connection)},
        )


def test_the_downgrade_restores_the_key_to_the_member_alone(engine_before: Engine) -> None:
    migrate.upgrade(engine_before, "0011")

    migrate.downgrade(engine_before, BEFORE)

    assert len(_rows(engine_before)) == len(ROWS)
    assert _references(engine_before) == REFERENCES
    for table in TABLES:
        keys = foreign_keys(engine_before, table)
        assert (["member_pk"], "members", ["id"]) in keys
        assert (["tenant_id"], "tenants", ["id"]) in keys
        assert (["tenant_id", "member_pk"], "members", ["tenant_id", "id"]) not in keys


def test_a_row_naming_another_tenants_member_stops_the_upgrade_by_name(
    engine_before: Engine,
) -> None:
    with engine_before.begin() as connection:
        connection.execute(text("UPDATE member_tags SET tenant_id = 2"))  # member 10 is 1's

    with pytest.raises(RuntimeError, match="1 rows of member_tags name a member of another"):
        migrate.upgrade(engine_before, "0011")

    with engine_before.connect() as connection:
        assert migrate.current_revision(connection) == BEFORE
