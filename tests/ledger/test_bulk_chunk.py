"""Working a chunk out: events grouped per member as the rules take them, and rows written
in the terms the live ledger uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from memberlab.core.bulkrows import CopyText, copy_text
from memberlab.datasets.demo import SAMPLE_PROGRAMS, sample_program_text
from memberlab.ledger import bulk_chunk
from memberlab.ledger.bulk_chunk import (
    EVENT_COLUMNS,
    ChunkContext,
    ChunkInput,
    ChunkRows,
    MemberInfo,
    compute_chunk,
    group_events,
)
from memberlab.ledger.rows import Loaded
from memberlab.programs import rules
from memberlab.programs.validation import parse_program_text


def purchases(
    member_ids: list[str], order_ids: list[str], times: list[datetime], **columns: list
) -> pl.DataFrame:
    """Purchase events as the importer hands them over: in member, time and order id order,
    rows numbered. Each an app purchase of one tea for 10.00, unless ``columns`` say else."""
    n = len(member_ids)
    data: dict[str, object] = {
        "member_id": member_ids,
        "kind": ["purchase"] * n,
        "order_id": order_ids,
        "return_id": [None] * n,
        "occurred_at": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
        "channel": ["app"] * n,
        "store": [None] * n,
        "sku": ["tea"] * n,
        "category": ["tea"] * n,
        "quantity": [1] * n,
        "amount_minor": [10_00] * n,
        "points_used": [0] * n,
    }
    data.update(columns)
    return (
        pl.DataFrame(data)
        .sort("member_id", "occurred_at", "order_id")
        .with_row_index("row")
        .select("row", *EVENT_COLUMNS)
    )


def frame(times: list[datetime], zone: str | None) -> pl.DataFrame:
    """Member M1's purchases at ``times``, in a column of ``zone`` (None: naive)."""
    n = len(times)
    orders = [f"O{i}" for i in range(n)]
    at = pl.Series(times, dtype=pl.Datetime("us", zone))
    return purchases(["M1"] * n, orders, times, occurred_at=at)


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


@pytest.mark.parametrize("program_name", SAMPLE_PROGRAMS)
def test_the_copy_lines_of_a_chunk_are_what_copy_text_writes(
    program_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The four tables a purchase fills have COPY lines written for their columns' types;
    ``copy_text`` (checked against psycopg in tests/core/test_bulkio.py) writes the same."""
    program = parse_program_text(sample_program_text(program_name))
    start = datetime(2025, 1, 5, 2, 0, tzinfo=UTC)
    events = purchases(
        # ids with a tab and a backslash, a store and none
        ["M\t1", "M\t1", "M\t1", "M2", "M2"],
        ["O\\1", "O2", "O3", "O\t4", "O5"],
        [start + timedelta(days=d) for d in (0, 3, 400, 1, 2)],
        channel=["app", "store", "app", "mini\\program", "app"],
        store=["S-01", None, "上海\t一店", None, "S-02"],
        sku=["tea", "cake", "tea", "tea", "mug"],
        category=["tea", "bakery", "tea", "tea", "merch"],
        quantity=[1, 2, 1, 3, 1],
        amount_minor=[128_00, 45_50, 3_999_00, 60_00, 88_00],
    )
    members = {
        "M\t1": MemberInfo(1, start - timedelta(days=30), "03-02"),
        "M2": MemberInfo(2, start, None),
    }
    notice_days = program.points.expiring_notice_days

    def work_out() -> ChunkRows:
        states = {
            info.pk: Loaded(
                info.pk,
                rules.new_member_state(
                    program, enrolled_at=info.enrolled_at, birthday=info.birthday
                ),
                is_new=True,
                notice_days=notice_days,
            )
            for info in members.values()
        }
        context = ChunkContext(
            tenant_id=7,
            program=program,
            now=datetime(2026, 11, 25, tzinfo=UTC),
            advance_to=datetime(2026, 11, 25, tzinfo=UTC),
            minor_per_point=rules.unit(program) / program.points_payment.points_per_unit,
            dialect="postgresql",
        )
        chunk = ChunkInput(events, dict(members), states, set(), set(), {})
        result = compute_chunk(context, chunk)
        assert result.rejected == 0, result.rejects
        return result.rows

    written = work_out()
    monkeypatch.setattr(
        bulk_chunk, "_copy_lines", lambda rows, _line, instants: copy_text(rows, instants)
    )
    generic = work_out()

    for table in ("entries", "postings", "lots", "orders"):
        mine, theirs = getattr(written, table), getattr(generic, table)
        assert isinstance(mine, CopyText)
        assert isinstance(theirs, CopyText)
        assert mine.count == theirs.count > 0
        assert mine.text == theirs.text, table


def test_a_chunks_orders_are_written_in_time_order_across_its_members() -> None:
    """Members come one after another, their orders in time order; the orders are written in
    time order over the chunk (so their ids follow the times), each member's still in its."""
    program = parse_program_text(sample_program_text(SAMPLE_PROGRAMS[0]))
    start = datetime(2025, 1, 5, 2, 0, tzinfo=UTC)
    days = [0, 3, 3, 1, 2]  # M1 buys twice at the same moment: their order stays
    events = purchases(
        ["M1", "M1", "M1", "M2", "M2"],
        ["A", "B", "C", "D", "E"],
        [start + timedelta(days=d) for d in days],
    )
    members = {"M1": MemberInfo(1, start, None), "M2": MemberInfo(2, start, None)}
    states = {
        info.pk: Loaded(
            info.pk,
            rules.new_member_state(program, enrolled_at=start, birthday=None),
            is_new=True,
            notice_days=program.points.expiring_notice_days,
        )
        for info in members.values()
    }
    context = ChunkContext(
        tenant_id=7,
        program=program,
        now=datetime(2026, 11, 25, tzinfo=UTC),
        advance_to=None,
        minor_per_point=rules.unit(program) / program.points_payment.points_per_unit,
        dialect="sqlite",
    )
    result = compute_chunk(context, ChunkInput(events, members, states, set(), set(), {}))
    assert result.applied == 5
    assert [row[1] for row in result.rows.orders] == ["A", "D", "E", "B", "C"]
