"""JSON columns are written by ``core.jsoncodec``: orjson's compact text, the standard
library's where orjson refuses, and what the standard library refused still refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, cast, select
from sqlalchemy import Text as TextType
from sqlalchemy.exc import StatementError

from memberlab.core import jsoncodec
from memberlab.core.db import Database

probe = Table(
    "json_probe", MetaData(), Column("id", Integer, primary_key=True), Column("value", JSON)
)

VALUES: list[Any] = [
    {"rules": [{"rule": "member_day", "points": 58}], "tier_before": "银卡", "note": 'a "quote"'},
    {"big": 2**70, "negative": -(2**80)},  # beyond orjson's 64 bits: the standard library's
    [1, 2.5, None, True, "tab\there", "\u2028"],
    {},
]


@pytest.mark.parametrize("value", VALUES)
def test_a_value_comes_back_from_the_store_as_it_went_in(database: Database, value: Any) -> None:
    with database.session(platform=True) as session:
        connection = session.connection()
        probe.create(connection)
        connection.execute(probe.insert().values(id=1, value=value))
        stored, text = connection.execute(
            select(probe.c.value, cast(probe.c.value, TextType))
        ).one()
    assert stored == value
    assert text == jsoncodec.dumps(value)  # the engine writes with jsoncodec, text kept as is


def test_the_text_is_compact_with_characters_as_they_are() -> None:
    assert jsoncodec.dumps({"tier": "金卡", "points": [1, 2]}) == '{"tier":"金卡","points":[1,2]}'
    assert jsoncodec.dumps({1: "one"}) == '{"1":"one"}'  # keys as json.dumps writes them


def test_integers_beyond_64_bits_are_written_exactly() -> None:
    assert jsoncodec.dumps([2**64, -(2**70)]) == f"[{2**64},{-(2**70)}]"


@pytest.mark.parametrize(
    "value", [datetime(2026, 11, 25, tzinfo=UTC), Decimal("1.5"), {"at": {datetime.now(UTC)}}]
)
def test_what_json_dumps_refuses_is_still_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        jsoncodec.dumps(value)


def test_the_store_refuses_such_a_value_and_names_its_type(database: Database) -> None:
    with database.session(platform=True) as session:
        connection = session.connection()
        probe.create(connection)
        with pytest.raises((TypeError, StatementError), match="Decimal"):
            connection.execute(probe.insert().values(id=1, value={"amount": Decimal("1.5")}))
