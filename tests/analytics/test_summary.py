"""The RFM summary: lifetimes' definitions, one transaction per member and day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from memberlab.analytics import summary as summary_module
from memberlab.analytics.summary import rfm_summary
from memberlab.core.errors import InvalidInput


def transactions(rows: list[tuple[str, object, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["member_id", "occurred_at", "amount"], orient="row")


def by_member(summary: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {row["member_id"]: row for row in summary.iter_rows(named=True)}


def test_frequency_recency_age_and_spend_follow_the_lifetimes_definitions():
    log = transactions(
        [
            ("A", datetime(2025, 1, 1, 9), 10.0),
            ("A", datetime(2025, 1, 1, 18), 5.0),  # same day: one transaction of 15
            ("A", datetime(2025, 1, 11, 12), 20.0),
            ("A", datetime(2025, 1, 21, 8), 40.0),
            ("B", datetime(2025, 1, 31, 23, 59), 7.0),  # one purchase: frequency 0
            ("C", datetime(2025, 2, 5), 9.0),  # after calibration: not a customer yet
        ]
    )

    summary = by_member(rfm_summary(log, calibration_end=date(2025, 1, 31)))

    assert set(summary) == {"A", "B"}
    assert summary["A"]["frequency"] == 2
    assert summary["A"]["recency"] == 20.0
    assert summary["A"]["T"] == 30.0
    assert summary["A"]["monetary_value"] == 30.0  # mean of the repeat days 20 and 40
    assert summary["B"] == {
        "member_id": "B",
        "frequency": 0,
        "recency": 0.0,
        "T": 0.0,
        "monetary_value": 0.0,
    }


def test_same_day_amounts_are_summed_before_averaging_repeat_purchases():
    log = transactions(
        [
            ("A", date(2025, 3, 1), 100.0),
            ("A", date(2025, 3, 2), 10.0),
            ("A", date(2025, 3, 2), 30.0),
            ("A", date(2025, 3, 5), 20.0),
        ]
    )

    row = by_member(rfm_summary(log, calibration_end=date(2025, 3, 31)))["A"]

    assert row["frequency"] == 2
    assert row["monetary_value"] == 30.0  # (40 + 20) / 2: the first day's 100 left out


def test_week_units_divide_days_by_seven():
    log = transactions([("A", date(1997, 1, 1), 1.0), ("A", date(1997, 1, 15), 2.0)])

    row = by_member(rfm_summary(log, calibration_end=date(1997, 9, 30), time_unit="week"))["A"]

    assert row["recency"] == 2.0
    assert row["T"] == pytest.approx(272 / 7)  # 38.86 weeks, as in the CDNOW summary


def test_holdout_counts_purchase_days_after_calibration_for_calibration_customers():
    log = transactions(
        [
            ("A", date(2025, 1, 1), 10.0),
            ("A", date(2025, 2, 3), 4.0),
            ("A", date(2025, 2, 3), 6.0),  # one holdout day worth 10
            ("A", date(2025, 2, 20), 30.0),
            ("A", date(2025, 4, 1), 99.0),  # after the observation end
            ("B", date(2025, 1, 5), 10.0),
            ("C", date(2025, 2, 10), 10.0),  # first bought in the holdout: left out
        ]
    )

    summary = by_member(
        rfm_summary(log, calibration_end=date(2025, 1, 31), observation_end=date(2025, 2, 28))
    )

    assert set(summary) == {"A", "B"}
    assert summary["A"]["frequency_holdout"] == 2
    assert summary["A"]["monetary_value_holdout"] == 20.0
    assert summary["B"]["frequency_holdout"] == 0
    assert summary["B"]["monetary_value_holdout"] == 0.0
    assert summary["A"]["duration_holdout"] == 28.0


def test_a_zoned_timestamp_counts_on_its_local_day():
    log = pl.DataFrame(
        {
            "member_id": ["A", "A"],
            # 2025-01-01 23:30 and 2025-01-02 00:30 in Shanghai: two days, not one
            "occurred_at": [
                datetime(2025, 1, 1, 15, 30, tzinfo=UTC),
                datetime(2025, 1, 1, 16, 30, tzinfo=UTC),
            ],
            "amount": [1.0, 2.0],
        }
    ).with_columns(pl.col("occurred_at").dt.convert_time_zone("Asia/Shanghai"))

    row = by_member(rfm_summary(log, calibration_end=date(2025, 1, 31)))["A"]

    assert row["frequency"] == 1
    assert row["recency"] == 1.0


def test_iso_text_dates_and_no_amount_column_are_accepted():
    log = pl.DataFrame({"id": ["A", "A", "B"], "day": ["2025-01-01", "2025-01-03", "2025-01-02"]})

    summary = rfm_summary(
        log, member_col="id", time_col="day", amount_col=None, calibration_end="2025-01-10"
    )

    assert summary.columns == ["id", "frequency", "recency", "T"]
    assert by_member(summary.rename({"id": "member_id"}))["A"]["frequency"] == 1


def test_missing_columns_are_named_in_the_error():
    log = pl.DataFrame({"member_id": ["A"], "when": [date(2025, 1, 1)]})

    with pytest.raises(InvalidInput) as caught:
        rfm_summary(log, calibration_end=date(2025, 1, 31))

    assert {e.loc for e in caught.value.errors} == {"occurred_at", "amount"}


def test_observation_end_must_follow_calibration_end():
    log = transactions([("A", date(2025, 1, 1), 1.0)])

    with pytest.raises(InvalidInput):
        rfm_summary(log, calibration_end=date(2025, 1, 31), observation_end=date(2025, 1, 31))


def test_cdnow_summary_matches_the_published_calibration_data(cdnow):
    # FHL (2005): 2,357 customers, 1,411 without a repeat purchase; the Gamma-Gamma note's
    # table 1: 946 repeat customers with a mean repeat spend of $35.08.
    repeat = cdnow.filter(pl.col("frequency") > 0)

    assert cdnow.height == 2357
    assert cdnow.filter(pl.col("frequency") == 0).height == 1411
    assert repeat.height == 946
    assert repeat["monetary_value"].mean() == pytest.approx(35.08, abs=0.005)
    assert cdnow["T"].max() == pytest.approx(272 / 7)
    assert cdnow["frequency_holdout"].sum() == 1882
    assert cdnow["duration_holdout"].unique().to_list() == [39.0]


def random_log(n_members: int, n_rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "member_id": [f"member-{i}" for i in rng.integers(0, n_members, n_rows)],
            "occurred_at": [
                date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 400, n_rows)
            ],
            "amount": np.round(rng.gamma(2.0, 20.0, n_rows), 2),
        }
    )


def test_row_order_does_not_matter():
    # Random order and time order go through the hashed grouping; rows already sorted by
    # member and day are used as they are.
    log = random_log(300, 3000, 1)
    ends = {"calibration_end": date(2024, 9, 30), "observation_end": date(2025, 1, 31)}

    results = [
        rfm_summary(frame, **ends).sort("member_id")
        for frame in (
            log,
            log.sort("occurred_at"),
            log.sort("member_id", "occurred_at"),
        )
    ]

    assert_frames_close(results[0], results[1])
    assert_frames_close(results[0], results[2])


def test_the_exact_grouping_gives_the_same_summary_as_the_hashed_one(monkeypatch):
    # The fast path groups rows by a hash of the member id and falls back to sorting by the
    # id itself if two ids collide; force the fallback and compare.
    log = random_log(300, 3000, 3)
    hashed = rfm_summary(log, calibration_end=date(2024, 9, 30), observation_end=date(2025, 1, 31))
    monkeypatch.setattr(summary_module, "_hashed_order", lambda rows, member_col: None)

    exact = rfm_summary(log, calibration_end=date(2024, 9, 30), observation_end=date(2025, 1, 31))

    assert_frames_close(hashed.sort("member_id"), exact.sort("member_id"))


def test_rows_without_member_or_date_are_ignored():
    log = pl.DataFrame(
        {
            "member_id": ["A", None, "A", "A"],
            "occurred_at": [date(2025, 1, 1), date(2025, 1, 2), None, date(2025, 1, 5)],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )

    summary = rfm_summary(log, calibration_end=date(2025, 1, 31))

    assert summary.to_dicts() == [
        {"member_id": "A", "frequency": 1, "recency": 4.0, "T": 30.0, "monetary_value": 4.0}
    ]


def test_an_empty_log_gives_an_empty_summary():
    log = transactions([("A", date(2025, 3, 1), 1.0)])

    summary = rfm_summary(log, calibration_end=date(2025, 1, 31))

    assert summary.height == 0
    assert summary.columns == ["member_id", "frequency", "recency", "T", "monetary_value"]


def assert_frames_close(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert_frame_equal(left, right, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_the_first_purchase_can_be_counted_as_lifetimes_allows():
    log = transactions(
        [
            ("A", date(2025, 3, 1), 100.0),
            ("A", date(2025, 3, 2), 40.0),
            ("A", date(2025, 3, 5), 20.0),
            ("B", date(2025, 3, 9), 7.0),
        ]
    )

    summary = by_member(
        rfm_summary(log, calibration_end=date(2025, 3, 31), include_first_purchase=True)
    )

    assert (summary["A"]["frequency"], summary["A"]["monetary_value"]) == (3, 160.0 / 3)
    assert (summary["B"]["frequency"], summary["B"]["monetary_value"]) == (1, 7.0)
    assert summary["A"]["recency"] == 4.0
