"""Working a chunk out: events grouped per member as the rules take them, and rows written
in the terms the live ledger uses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import polars as pl

from memberlab.core.bulkio import Adapter
from memberlab.ledger.bulk_chunk import EVENT_COLUMNS, group_events
from memberlab.ledger.service import order_from_json, order_to_json
from memberlab.programs import rules


def frame(times: list[datetime], zone: str | None) -> pl.DataFrame:
    n = len(times)
    data = {
        "member_id": ["M1"] * n,
        "kind": ["purchase"] * n,
        "order_id": [f"O{i}" for i in range(n)],
        "return_id": [None] * n,
        "occurred_at": pl.Series(times, dtype=pl.Datetime("us", zone)),
        "channel": ["app"] * n,
        "store": [None] * n,
        "sku": ["tea"] * n,
        "category": ["tea"] * n,
        "quantity": [1] * n,
        "amount_minor": [1250] * n,
        "points_used": [0] * n,
    }
    return pl.DataFrame(data).select(EVENT_COLUMNS).with_row_index("row")


def test_times_reach_the_rules_as_utc_instants_whatever_the_columns_zone() -> None:
    naive = [datetime(2025, 3, 1, 10, 0), datetime(2025, 3, 2, 9, 30, 0, 500)]
    for zone in (None, "UTC", "Etc/UTC"):
        (member,) = group_events(frame(naive, zone), minor_per_point=Decimal(1))
        times = [event.occurred_at for _, _, event in member.events]
        assert times == [t.replace(tzinfo=UTC) for t in naive]
        assert all(t.tzinfo is UTC for t in times)
    # a column in another zone (Polars reads the naive times as UTC): the same instants,
    # in that zone (10:00 UTC is 18:00 in Shanghai)
    (member,) = group_events(frame(naive, "Asia/Shanghai"), minor_per_point=Decimal(1))
    first = member.events[0][2].occurred_at
    assert first == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert first.hour == 18


def test_an_orders_record_is_written_as_the_live_ledger_writes_it() -> None:
    """The live ledger stores ``order_to_json``'s dict; the bulk path writes the dataclass
    with orjson: the same JSON, read back as the same record."""
    record = rules.OrderRecord(
        order_id="O1",
        occurred_at=datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        channel="app",
        store=None,
        amount_paid=9900,
        gross=10000,
        points_used=100,
        lines=[rules.LineRecord("tea", "tea", 2, 10000, 9900, 99, 99, returned_quantity=1)],
        lot_seq=3,
        points=99,
        bonus_points=0,
        bonus_code=None,
        growth_order=5,
    )
    written = Adapter("sqlite").js(record)
    assert written == orjson.dumps(order_to_json(record)).decode()
    assert order_from_json(orjson.loads(written)) == record
