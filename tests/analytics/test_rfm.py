"""RFM: the measures, the scores and the segments, worked out by hand on five members."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from memberlab.analytics.rfm import (
    SCHEMES,
    RfmThresholds,
    rfm_table,
    segment_movement,
    segment_summary,
    segments,
)
from memberlab.core.errors import InvalidInput

AS_OF = date(2024, 3, 31)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tx(rows: list[tuple[str, str, str, float, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "member_id": [r[0] for r in rows],
            "order_id": [r[1] for r in rows],
            "occurred_at": [at(r[2]) for r in rows],
            "amount": [r[3] for r in rows],
            "kind": [r[4] for r in rows],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )


# As of 2024-03-31:
#   A: 2024-03-01 100; two orders on 2024-03-30 (50 + 30) -> recency 1, frequency 2
#      (same day once), orders 3, spend 180
#   B: 2024-01-01 200, returns 50 on 01-05        -> recency 90, frequency 1, spend 150
#   C: 2024-03-31 20                              -> recency 0, frequency 1, spend 20
#   D: 2023-12-01, 2024-02-01, 2024-03-15, 10 each -> recency 16, frequency 3, spend 30
#   E: 2024-02-20 500                             -> recency 40, frequency 1, spend 500
#   F: only after the day (2024-04-02)            -> not in the table
FIVE = tx(
    [
        ("A", "a1", "2024-03-01T10:00", 100.0, "purchase"),
        ("A", "a2", "2024-03-30T09:00", 50.0, "purchase"),
        ("A", "a3", "2024-03-30T18:00", 30.0, "purchase"),
        ("B", "b1", "2024-01-01T12:00", 200.0, "purchase"),
        ("B", "b1", "2024-01-05T12:00", 50.0, "return"),
        ("C", "c1", "2024-03-31T23:00", 20.0, "purchase"),
        ("D", "d1", "2023-12-01T08:00", 10.0, "purchase"),
        ("D", "d2", "2024-02-01T08:00", 10.0, "purchase"),
        ("D", "d3", "2024-03-15T08:00", 10.0, "purchase"),
        ("E", "e1", "2024-02-20T08:00", 500.0, "purchase"),
        ("F", "f1", "2024-04-02T08:00", 70.0, "purchase"),
    ]
)


def by_member(frame: pl.DataFrame, column: str) -> dict[str, object]:
    return dict(zip(frame["member_id"], frame[column].to_list(), strict=True))


def test_measures_count_a_day_once_and_subtract_returns():
    table = rfm_table(FIVE, as_of=AS_OF)

    assert table["member_id"].to_list() == ["A", "B", "C", "D", "E"]
    assert by_member(table, "recency") == {"A": 1, "B": 90, "C": 0, "D": 16, "E": 40}
    assert by_member(table, "frequency") == {"A": 2, "B": 1, "C": 1, "D": 3, "E": 1}
    assert by_member(table, "orders") == {"A": 3, "B": 1, "C": 1, "D": 3, "E": 1}
    assert by_member(table, "spend") == {"A": 180.0, "B": 150.0, "C": 20.0, "D": 30.0, "E": 500.0}
    assert by_member(table, "monetary") == by_member(table, "spend")


def test_mean_monetary_is_spend_per_purchase_day():
    table = rfm_table(FIVE, as_of=AS_OF, monetary="mean")

    assert by_member(table, "monetary") == {"A": 90.0, "B": 150.0, "C": 20.0, "D": 10.0, "E": 500.0}


def test_quantile_scores_and_chinese_segments_by_hand():
    # score = 1 + floor(5 x share of members strictly worse), n = 5:
    #   R (worse = older): C 0 -> 4 worse -> 5; A 1 -> 4; D 16 -> 3; E 40 -> 2; B 90 -> 1
    #   F (worse = fewer): B, C, E (1) -> 0 worse -> 1; A 2 -> 3 worse -> 4; D 3 -> 5
    #   M (worse = less):  C 20 -> 1; D 30 -> 2; B 150 -> 3; A 180 -> 4; E 500 -> 5
    # Means: R 3.0, F 2.4, M 3.0; high = strictly above the mean:
    #   A 444 -> HHH important_value; B 113 -> LLL general_winback;
    #   C 511 -> HLL general_develop; D 352 -> LHL general_retain;
    #   E 215 -> LLH important_winback
    table = rfm_table(FIVE, as_of=AS_OF)

    assert by_member(table, "rfm") == {"A": "444", "B": "113", "C": "511", "D": "352", "E": "215"}
    assert {k: str(v) for k, v in by_member(table, "segment").items()} == {
        "A": "important_value",
        "B": "general_winback",
        "C": "general_develop",
        "D": "general_retain",
        "E": "important_winback",
    }


def test_median_reference_changes_only_what_it_should():
    # Medians: R 3, F 1, M 3. F high is now "above 1": A (4) and D (5) as before.
    table = rfm_table(FIVE, as_of=AS_OF, reference="median")

    assert str(by_member(table, "segment")["A"]) == "important_value"
    assert str(by_member(table, "segment")["D"]) == "general_retain"


def test_value_basis_compares_raw_values_with_their_mean():
    # Mean recency 29.4 (A, C, D recent), mean frequency 1.6 (A, D), mean spend 176 (A, E).
    table = rfm_table(FIVE, as_of=AS_OF, basis="value")

    assert {k: str(v) for k, v in by_member(table, "segment").items()} == {
        "A": "important_value",
        "B": "general_winback",
        "C": "general_develop",
        "D": "general_value",
        "E": "important_winback",
    }


def test_rf_grid_scheme():
    # R/F scores: A 4/4 loyal, B 1/1 hibernating, C 5/1 new, D 3/5 loyal, E 2/1 hibernating
    table = rfm_table(FIVE, as_of=AS_OF, scheme="rf_grid")

    assert {k: str(v) for k, v in by_member(table, "segment").items()} == {
        "A": "loyal",
        "B": "hibernating",
        "C": "new_customers",
        "D": "loyal",
        "E": "hibernating",
    }


def test_thresholds_score_on_a_fixed_scale():
    thresholds = RfmThresholds(
        recency=(7, 30, 60, 90), frequency=(2, 3, 5, 8), monetary=(50, 100, 200, 400)
    )
    table = rfm_table(FIVE, as_of=AS_OF, thresholds=thresholds)

    # A: 1 day <= 7 -> 5; 2 days >= 2 -> 2; 180 >= 100 -> 3
    # B: 90 days (above 7, 30, 60; not above 90) -> 2; 1 -> 1; 150 -> 3
    # E: 40 days -> 3; 1 -> 1; 500 -> 5
    assert by_member(table, "rfm")["A"] == "523"
    assert by_member(table, "rfm")["B"] == "213"
    assert by_member(table, "rfm")["E"] == "315"


def test_thresholds_must_ascend():
    bad = RfmThresholds(recency=(7, 7, 60, 90), frequency=(1, 2, 3, 4), monetary=(1, 2, 3, 4))

    with pytest.raises(InvalidInput) as caught:
        rfm_table(FIVE, as_of=AS_OF, thresholds=bad)

    assert [e.key for e in caught.value.errors] == ["analytics.v.rfm_thresholds"]
    assert caught.value.errors[0].loc == "thresholds.recency"


def test_window_counts_frequency_and_spend_in_the_last_days_only():
    # 31 days: 2024-03-01 .. 2024-03-31
    table = rfm_table(FIVE, as_of=AS_OF, window_days=31)

    assert by_member(table, "frequency") == {"A": 2, "B": 0, "C": 1, "D": 1, "E": 0}
    assert by_member(table, "spend") == {"A": 180.0, "B": 0.0, "C": 20.0, "D": 10.0, "E": 0.0}
    assert by_member(table, "recency")["B"] == 90  # recency still sees the whole history


def test_days_are_taken_in_the_time_zone_asked_for():
    # C bought at 23:00 UTC on 03-31, which is already 04-01 in Shanghai.
    table = rfm_table(FIVE, as_of=AS_OF, time_zone="Asia/Shanghai")

    assert "C" not in table["member_id"].to_list()


def test_without_kind_a_negative_amount_is_a_return():
    frame = FIVE.with_columns(
        pl.when(pl.col("kind") == "return")
        .then(-pl.col("amount"))
        .otherwise(pl.col("amount"))
        .alias("amount")
    ).drop("kind")

    assert by_member(rfm_table(frame, as_of=AS_OF), "spend")["B"] == 150.0


def test_missing_columns_are_named():
    with pytest.raises(InvalidInput) as caught:
        rfm_table(FIVE.drop("amount"), as_of=AS_OF)

    assert [(e.loc, e.key) for e in caught.value.errors] == [("amount", "analytics.v.frame_column")]


def random_transactions(n_members: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, n_members)
    member = np.repeat(np.arange(n_members), counts)
    day = rng.integers(0, 365, member.size)
    return pl.DataFrame(
        {
            "member_id": [f"M{m:05d}" for m in member],
            "order_id": [f"O{i:07d}" for i in range(member.size)],
            "occurred_at": [datetime(2024, 1, 1, tzinfo=UTC) for _ in range(member.size)],
            "amount": np.round(rng.gamma(2.0, 30.0, member.size), 2),
            "kind": ["purchase"] * member.size,
        }
    ).with_columns(pl.col("occurred_at") + pl.duration(days=pl.Series(day)))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_segment_sizes_add_up_to_the_members(scheme):
    frame = random_transactions(500, seed=1)
    table = rfm_table(frame, as_of=date(2024, 12, 31), scheme=scheme)
    summary = segment_summary(table)

    assert summary["segment"].to_list() == list(SCHEMES[scheme])
    assert summary["members"].sum() == table.height == 500
    assert summary["member_share"].sum() == pytest.approx(1.0)
    assert summary["value_share"].sum() == pytest.approx(1.0)
    assert summary["spend"].sum() == pytest.approx(table["spend"].sum())


def test_quantile_scores_split_in_fifths_and_ties_share_a_score():
    frame = random_transactions(1000, seed=2)
    table = rfm_table(frame, as_of=date(2024, 12, 31))

    # Spend is continuous (no ties): each score holds exactly a fifth.
    assert table.group_by("m_score").len().sort("m_score")["len"].to_list() == [200] * 5
    # Equal values, equal scores; better values never score lower.
    for value, score, descending in (
        ("recency", "r_score", True),
        ("frequency", "f_score", False),
        ("monetary", "m_score", False),
    ):
        per_value = table.group_by(value).agg(pl.col(score).n_unique().alias("n"))
        assert per_value["n"].max() == 1
        ordered = table.sort(value, descending=descending)[score].to_list()
        assert ordered == sorted(ordered)


def test_segment_movement_between_two_days():
    # By 2024-01-31 only B and D had bought; A, C and E come from "none".
    movement = segment_movement(FIVE, date_a=date(2024, 1, 31), date_b=AS_OF)

    wide = movement.wide
    assert wide["from_segment"].to_list()[0] == "none"
    assert wide.filter(pl.col("from_segment") == "none")["members"].item() == 3
    assert wide["members"].sum() == 5
    assert movement.long["members"].sum() == 5
    a = rfm_table(FIVE, as_of=date(2024, 1, 31))
    b = rfm_table(FIVE, as_of=AS_OF)
    for member in ("B", "D"):
        source = str(by_member(a, "segment")[member])
        target = str(by_member(b, "segment")[member])
        cell = movement.long.filter(
            (pl.col("from_segment") == source) & (pl.col("to_segment") == target)
        )
        assert cell["members"].item() >= 1


def test_segment_movement_needs_the_second_day_later():
    with pytest.raises(InvalidInput) as caught:
        segment_movement(FIVE, date_a=AS_OF, date_b=AS_OF)

    assert caught.value.errors[0].key == "analytics.v.not_after"


def test_segment_names_in_both_languages():
    names = segments("cn8")

    assert names.row(0) == ("important_value", "重要价值客户", "Champions")
    assert names["name_zh"].to_list()[-1] == "一般挽留客户"
    assert names.height == 8
    assert segments("rf_grid").height == 10
