"""Cohort retention and revenue: a three-member example by hand, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from memberlab.analytics.cohorts import cohort_matrices
from memberlab.core.errors import InvalidInput


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# m1 joins (first buys) in January and buys in February and March: active in months 0, 1, 2
# m2 joins in January and buys again in March:                      active in months 0, 2
# m3 joins in February and buys in March (and returns 10 there):    active in months 0, 1
ROWS = [
    ("m1", "2024-01-10", 10.0, "purchase", "store"),
    ("m1", "2024-02-05", 20.0, "purchase", "app"),
    ("m1", "2024-03-01", 30.0, "purchase", "store"),
    ("m2", "2024-01-20", 40.0, "purchase", "app"),
    ("m2", "2024-03-15", 50.0, "purchase", "store"),
    ("m3", "2024-02-03", 60.0, "purchase", "store"),
    ("m3", "2024-03-03", 70.0, "purchase", "store"),
    ("m3", "2024-03-04", 10.0, "return", "store"),
]
TX = pl.DataFrame(
    {
        "member_id": [r[0] for r in ROWS],
        "occurred_at": [at(r[1]) for r in ROWS],
        "amount": [r[2] for r in ROWS],
        "kind": [r[3] for r in ROWS],
        "channel": [r[4] for r in ROWS],
    }
)
MEMBERS = pl.DataFrame(
    {
        "member_id": ["m1", "m2", "m3", "m4"],
        "enrolled_at": [at("2024-01-10"), at("2024-01-20"), at("2024-02-03"), at("2024-01-25")],
        "enrol_channel": ["store", "app", "store", "app"],
    }
)


def cell(frame: pl.DataFrame, cohort: str, column: str) -> object:
    return frame.filter(pl.col("cohort") == cohort)[column].item()


def test_retention_of_three_members_by_hand():
    result = cohort_matrices(TX, as_of=date(2024, 3, 31))

    # January: 2 members; month 0 both, month 1 only m1, month 2 both.
    # February: 1 member; months 0 and 1; month 2 (April) is not observed yet.
    assert result.last_month == "2024-03"
    assert result.retention.columns == ["cohort", "members", "0", "1", "2"]
    assert result.retention.rows() == [
        ("2024-01", 2, 1.0, 0.5, 1.0),
        ("2024-02", 1, 1.0, 1.0, None),
    ]


def test_revenue_per_member_by_hand():
    result = cohort_matrices(TX, as_of=date(2024, 3, 31))

    # January: (10 + 40) / 2 = 25; 20 / 2 = 10; (30 + 50) / 2 = 40
    # February: 60; 70 - 10 returned = 60
    assert result.revenue.rows() == [
        ("2024-01", 2, 25.0, 10.0, 40.0),
        ("2024-02", 1, 60.0, 60.0, None),
    ]
    january = result.long.filter(pl.col("cohort") == "2024-01")
    assert january["cumulative_revenue_per_member"].to_list() == [25.0, 35.0, 75.0]


def test_a_month_counts_only_once_it_is_over():
    # On 2024-03-15 March is not over: the last month counted is February.
    result = cohort_matrices(TX, as_of=date(2024, 3, 15))

    assert result.last_month == "2024-02"
    assert result.retention.rows() == [("2024-01", 2, 1.0, 0.5), ("2024-02", 1, 1.0, None)]


def test_rows_by_first_channel_pool_the_start_months():
    # store: m1 (January) and m3 (February); app: m2.
    # store month 2: only m1 has been observed that long (m3's month 2 is April).
    result = cohort_matrices(TX, by="first_channel", as_of=date(2024, 3, 31))

    assert result.retention.rows() == [
        ("app", 1, 1.0, 0.0, 1.0),
        ("store", 2, 1.0, 1.0, 1.0),
    ]
    store = result.long.filter(pl.col("cohort") == "store")
    assert store["members"].to_list() == [2, 2, 1]


def test_enrolment_start_counts_members_who_never_bought():
    # m4 enrolled in January and never bought: January has 3 members, 2 active in month 0.
    result = cohort_matrices(TX, members=MEMBERS, start="enrolment", as_of=date(2024, 3, 31))

    assert cell(result.retention, "2024-01", "members") == 3
    assert cell(result.retention, "2024-01", "0") == pytest.approx(2 / 3)
    assert cell(result.revenue, "2024-01", "0") == pytest.approx(50 / 3)


def test_rows_by_a_member_attribute():
    result = cohort_matrices(
        TX, members=MEMBERS, by="enrol_channel", start="enrolment", as_of=date(2024, 3, 31)
    )

    # app: m2 (bought in month 0) and m4 (never); store: m1 and m3
    assert cell(result.retention, "app", "0") == 0.5
    assert cell(result.retention, "store", "0") == 1.0


def test_grouping_by_a_member_attribute_needs_the_members():
    with pytest.raises(InvalidInput) as caught:
        cohort_matrices(TX, by="enrol_channel")

    assert caught.value.errors[0].key == "analytics.v.members_needed"


def test_unknown_start_is_refused():
    with pytest.raises(InvalidInput) as caught:
        cohort_matrices(TX, start="birthday")

    assert caught.value.errors[0].key == "analytics.v.choice"


def test_properties_on_random_members():
    rng = np.random.default_rng(3)
    n = 400
    counts = rng.integers(1, 15, n)
    member = np.repeat(np.arange(n), counts)
    day = rng.integers(0, 540, member.size)
    frame = pl.DataFrame(
        {
            "member_id": [f"M{m}" for m in member],
            "day": day,
            "amount": rng.gamma(2.0, 20.0, member.size),
        }
    ).select(
        "member_id",
        (pl.lit(datetime(2023, 1, 1, tzinfo=UTC)) + pl.duration(days=pl.col("day"))).alias(
            "occurred_at"
        ),
        "amount",
    )
    # the data end on 2024-06-23; June is complete on the 30th
    result = cohort_matrices(frame, max_periods=12, as_of=date(2024, 6, 30))
    long = result.long

    assert (long.filter(pl.col("period") == 0)["retention"] == 1.0).all()
    assert long["retention"].is_between(0.0, 1.0).all()
    assert long.filter(pl.col("period") == 0)["members"].sum() == n
    # the members observed never grow with the period
    steps = long.sort("cohort", "period").with_columns(
        pl.col("members").diff().over("cohort").alias("step")
    )
    assert (steps["step"].drop_nulls() <= 0).all()
    assert result.retention.width == 2 + 12
