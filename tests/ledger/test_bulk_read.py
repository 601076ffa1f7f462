"""Reading a file of past transactions in canonical columns (``bulk.read_events``).

Times without an offset are wall times in the program's zone; a time that states its
offset is the instant it names. A file may mix the forms, row by row. A wall time the
clocks skip is refused on its row, not for the whole file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from memberlab.ledger import bulk

HEADER = "member_id,order_id,occurred_at,amount"


def read(tmp_path: Path, *times: str, timezone: str = "Asia/Shanghai") -> pl.DataFrame:
    lines = [HEADER] + [f"M1,O{n},{at},10.00" for n, at in enumerate(times, start=1)]
    path = tmp_path / "transactions.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bulk.read_events(path, timezone=timezone)


def test_times_in_any_form_of_one_file_are_read_row_by_row(tmp_path: Path) -> None:
    frame = read(
        tmp_path,
        "2026-01-05 12:30:00",  # Shanghai's clock, UTC+8
        "2026-01-05T04:30:00Z",
        "2026-01-05T12:30:00+08:00",
        "2026-01-05 12:30",
        "2026年1月5日 12:30",
        "2026-01-05 12:30:00.5-05:00",
    )

    at = datetime(2026, 1, 5, 4, 30, tzinfo=UTC)
    assert frame["occurred_at"].to_list() == [
        at,
        at,
        at,
        at,
        at,
        datetime(2026, 1, 5, 17, 30, 0, 500_000, tzinfo=UTC),
    ]


def test_a_wall_time_the_clocks_skip_is_refused_on_its_row(tmp_path: Path) -> None:
    """New York went from 02:00 to 03:00 on 2026-03-08; 01:30 on 2026-11-01 came twice."""
    frame = read(
        tmp_path,
        "2026-03-08 02:30:00",
        "2026-11-01 01:30:00",  # the first of the two: still summer time, UTC-4
        "2026-03-08T02:30:00-05:00",  # an offset names one instant, skipped hour or not
        timezone="America/New_York",
    )

    good, rejects = bulk._rejects(frame)

    assert rejects == [{"row": 2, "column": "occurred_at", "value": None, "key": "core.v.datetime"}]
    assert good["occurred_at"].to_list() == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
    ]


def test_a_parquet_column_of_instants_or_wall_times_is_read_as_such(tmp_path: Path) -> None:
    wall = datetime(2026, 1, 5, 12, 30)
    path = tmp_path / "transactions.parquet"
    for column, expected in (
        (pl.Series([wall], dtype=pl.Datetime("ms")), datetime(2026, 1, 5, 4, 30, tzinfo=UTC)),
        (
            pl.Series([wall], dtype=pl.Datetime("ns")).dt.replace_time_zone("UTC"),
            datetime(2026, 1, 5, 12, 30, tzinfo=UTC),
        ),
    ):
        frame = pl.DataFrame({"member_id": ["M1"], "order_id": ["O1"], "amount": ["10"]})
        frame.with_columns(column.alias("occurred_at")).write_parquet(path)

        read_back = bulk.read_events(path, timezone="Asia/Shanghai")

        assert read_back["occurred_at"].to_list() == [expected]
        assert read_back.schema["occurred_at"] == pl.Datetime("us", "UTC")
