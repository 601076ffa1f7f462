"""The liability's monthly flows are bucketed by local month without formatting each posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from memberlab.ledger.liability import LocalMonths

ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # clocks change by half an hour
    "America/Havana",  # clocks changed at midnight (00:00 became 01:00 on 2012-04-01)
    "America/Asuncion",  # the same on 2017-10-01
    "UTC",
]


def test_a_month_starts_at_local_midnight() -> None:
    month_of = LocalMonths("Asia/Shanghai")

    # 2026-02-01 00:00 in Shanghai is 2026-01-31 16:00 UTC
    first_of_february = datetime(2026, 1, 31, 16, 0, tzinfo=UTC)

    assert month_of(first_of_february) == "2026-02"
    assert month_of(first_of_february - timedelta(microseconds=1)) == "2026-01"
    assert month_of(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == "2026-12"
    assert month_of(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == "2027-01"


def test_a_month_across_a_change_of_clocks() -> None:
    month_of = LocalMonths("America/New_York")

    # clocks went forward on 2026-03-08; April starts at 04:00 UTC (EDT), March at 05:00 (EST)
    assert month_of(datetime(2026, 4, 1, 3, 59, 59, tzinfo=UTC)) == "2026-03"
    assert month_of(datetime(2026, 4, 1, 4, 0, tzinfo=UTC)) == "2026-04"
    assert month_of(datetime(2026, 3, 1, 4, 59, 59, tzinfo=UTC)) == "2026-02"
    assert month_of(datetime(2026, 3, 1, 5, 0, tzinfo=UTC)) == "2026-03"

    # in Havana, 2012-04-01 00:00 did not exist (23:59:59 CST was followed by 01:00 CDT)
    month_of = LocalMonths("America/Havana")
    assert month_of(datetime(2012, 4, 1, 4, 59, 59, tzinfo=UTC)) == "2012-03"
    assert month_of(datetime(2012, 4, 1, 5, 0, tzinfo=UTC)) == "2012-04"


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    around=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)),
    # within four months, so that most instants fall in months met before
    offsets=st.lists(st.integers(-60 * 86400, 60 * 86400), min_size=1, max_size=60),
)
def test_the_month_is_the_local_calendar_month(
    zone: str, around: datetime, offsets: list[int]
) -> None:
    """In any order, across years and changes of clocks: what formatting each instant gives."""
    month_of = LocalMonths(zone)

    for offset in offsets:
        moment = around.replace(tzinfo=UTC) + timedelta(seconds=offset)
        assert month_of(moment) == moment.astimezone(month_of.zone).strftime("%Y-%m")
