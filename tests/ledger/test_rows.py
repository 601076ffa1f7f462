"""An order's stored record (``orders.record``): what the ledger keeps of each line for
returns, written compactly beside the order's own columns, and read back as it was."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from memberlab.ledger.rows import (
    LINE_FIELDS,
    LINE_RETURN_FIELDS,
    ORDER_HEAD,
    order_from_json,
    order_to_json,
)
from memberlab.programs import rules

AT = datetime(2024, 2, 4, 9, 56, 47, tzinfo=UTC)


def head(order: rules.OrderRecord) -> tuple:
    """What the order's row holds in its own columns."""
    return tuple(getattr(order, name) for name in ORDER_HEAD)


def tea_order(**changes) -> rules.OrderRecord:
    values = {
        "order_id": "O000097068",
        "occurred_at": AT,
        "channel": "mini_program",
        "store": "S003",
        "amount_paid": 7297,
        "gross": 7297,
        "points_used": 0,
        "lines": [rules.LineRecord("SKU309", "tea", 3, 7297, 7297, 109, 72)],
        "lot_seq": 3,
        "points": 109,
        "bonus_points": 0,
        "bonus_code": None,
        "growth_order": 5,
    }
    return rules.OrderRecord(**{**values, **changes})


def test_the_record_leaves_out_the_orders_columns_and_what_is_at_its_default() -> None:
    written = orjson.dumps(order_to_json(tea_order())).decode()

    assert written == (
        '{"lines":[["SKU309","tea",3,7297,7297,109,72]],'
        '"lot_seq":3,"points":109,"bonus_points":0,"growth_order":5}'
    )
    # written out in full (every field by name), as before 2026-11-28, it took 508 bytes
    assert len(written) == 106


def test_the_record_layout_follows_the_rules_dataclasses() -> None:
    """``order_from_json`` builds the record by position: the head and the lines' lists
    must keep the order of the fields of ``OrderRecord`` and ``LineRecord``."""
    order_fields = [f.name for f in dataclasses.fields(rules.OrderRecord)]
    line_fields = [f.name for f in dataclasses.fields(rules.LineRecord)]

    assert tuple(order_fields[: len(ORDER_HEAD)]) == ORDER_HEAD
    assert order_fields[len(ORDER_HEAD)] == "lines"
    assert tuple(line_fields) == LINE_FIELDS + LINE_RETURN_FIELDS


def test_a_returned_line_and_the_orders_reversals_are_kept() -> None:
    order = tea_order(
        lines=[
            rules.LineRecord("SKU1", "tea", 2, 5000, 4900, 49, 49, 1, 24, 24, 2450),
            rules.LineRecord("SKU2", "cake", 1, 2000, 2000, 20, 20),
        ],
        bonus_code="big_spender",
        bonus_points=100,
        points_refunded=30,
        bonus_reversed=True,
        growth_order_reversed=True,
        spend_reversed=2450,
    )

    data = order_to_json(order)

    assert data["lines"] == [
        ["SKU1", "tea", 2, 5000, 4900, 49, 49, 1, 24, 24, 2450],
        ["SKU2", "cake", 1, 2000, 2000, 20, 20],
    ]
    assert order_from_json(orjson.loads(orjson.dumps(data)), head(order)) == order


def test_a_record_of_the_full_form_earlier_versions_stored_is_still_read() -> None:
    stored = (
        '{"order_id":"O000097068","occurred_at":"2024-02-04T09:56:47+00:00",'
        '"channel":"mini_program","store":"S003","amount_paid":7297,"gross":7297,'
        '"points_used":0,"lines":[{"sku":"SKU309","category":"tea","quantity":3,'
        '"amount":7297,"paid":7297,"points":109,"growth":72,"returned_quantity":0,'
        '"points_reversed":0,"growth_reversed":0,"paid_returned":0}],"lot_seq":3,'
        '"points":109,"bonus_points":0,"bonus_code":null,"growth_order":5,'
        '"points_refunded":0,"bonus_reversed":false,"growth_order_reversed":false,'
        '"spend_reversed":0}'
    )
    order = tea_order()

    assert order_from_json(orjson.loads(stored), head(order)) == order


amounts = st.integers(min_value=0, max_value=10**12)
lines = st.builds(
    rules.LineRecord,
    sku=st.text(min_size=1, max_size=20),
    category=st.text(max_size=10),
    quantity=st.integers(min_value=1, max_value=1000),
    amount=amounts,
    paid=amounts,
    points=amounts,
    growth=amounts,
    returned_quantity=st.integers(min_value=0, max_value=1000),
    points_reversed=amounts,
    growth_reversed=amounts,
    paid_returned=amounts,
)


@given(
    lines=st.lists(lines, min_size=1, max_size=5),
    lot_seq=st.none() | st.integers(min_value=1, max_value=10**6),
    bonus_code=st.none() | st.text(max_size=10),
    flags=st.tuples(st.booleans(), st.booleans()),
    refunded=st.tuples(amounts, amounts),
)
def test_any_order_reads_back_as_it_was_written(
    lines: list[rules.LineRecord],
    lot_seq: int | None,
    bonus_code: str | None,
    flags: tuple[bool, bool],
    refunded: tuple[int, int],
) -> None:
    order = tea_order(
        lines=lines,
        lot_seq=lot_seq,
        bonus_code=bonus_code,
        bonus_reversed=flags[0],
        growth_order_reversed=flags[1],
        points_refunded=refunded[0],
        spend_reversed=refunded[1],
    )
    text = orjson.dumps(order_to_json(order))

    assert order_from_json(orjson.loads(text), head(order)) == order
