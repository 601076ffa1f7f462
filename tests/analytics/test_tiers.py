"""Tiers over time, migration, progress to the next tier, time to upgrade, and
performance by tier, on three members worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from memberlab.analytics.tiers import (
    members_near_next_tier,
    tier_at,
    tier_distribution,
    tier_migration,
    tier_performance,
    tier_progress,
    time_to_upgrade,
)
from memberlab.core.errors import InvalidInput

TIERS = ["sprout", "green", "gold"]
THRESHOLDS = [("sprout", 0), ("green", 800), ("gold", 2500)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MEMBERS = pl.DataFrame(
    {
        "member_id": ["a", "b", "c"],
        "enrolled_at": [at("2024-01-05"), at("2024-02-10"), at("2024-03-01")],
    }
)
# a: sprout from 01-05, green 02-01, gold 04-15
# b: sprout from 02-10, green 03-31 (late evening)
# c: sprout from 03-01, green 03-01, back to sprout 03-02 (a return)
HISTORY = pl.DataFrame(
    {
        "member_id": ["a", "a", "b", "c", "c"],
        "at": [
            at("2024-02-01T10:00"),
            at("2024-04-15T10:00"),
            at("2024-03-31T23:00"),
            at("2024-03-01T12:00"),
            at("2024-03-02T12:00"),
        ],
        "tier": ["green", "gold", "green", "green", "sprout"],
    }
)


def test_distribution_at_month_ends_by_hand():
    frame = tier_distribution(HISTORY, members=MEMBERS, tiers=TIERS)

    counts = {
        month: dict(zip(part["tier"], part["members"], strict=True))
        for (month,), part in frame.group_by("month", maintain_order=True)
    }
    assert counts == {
        "2024-01": {"sprout": 1, "green": 0, "gold": 0},  # a
        "2024-02": {"sprout": 1, "green": 1, "gold": 0},  # b new; a green
        "2024-03": {"sprout": 1, "green": 2, "gold": 0},  # c back to sprout; b green
        "2024-04": {"sprout": 1, "green": 1, "gold": 1},  # a gold
    }
    assert frame.filter(pl.col("month") == "2024-02")["month_end"][0] == date(2024, 2, 29)
    assert frame.filter(pl.col("month") == "2024-03")["share"].to_list() == pytest.approx(
        [1 / 3, 2 / 3, 0.0]
    )


def test_distribution_counts_every_enrolled_member_each_month():
    frame = tier_distribution(HISTORY, members=MEMBERS, tiers=TIERS, end=date(2024, 8, 31))

    per_month = frame.group_by("month").agg(pl.col("members").sum()).sort("month")
    assert per_month["members"].to_list() == [1, 2, 3, 3, 3, 3, 3, 3]


def test_tier_on_a_day():
    held = tier_at(HISTORY, on=date(2024, 3, 31), members=MEMBERS, entry_tier="sprout")

    assert held.rows() == [("a", "green"), ("b", "green"), ("c", "sprout")]


def test_migration_matrix_by_hand():
    # 01-31: a sprout, b and c not yet members. 04-30: a gold, b green, c sprout.
    migration = tier_migration(
        HISTORY, date_a=date(2024, 1, 31), date_b=date(2024, 4, 30), members=MEMBERS, tiers=TIERS
    )

    assert migration.wide.rows() == [
        ("none", 2, 1, 1, 0),
        ("sprout", 1, 0, 0, 1),
        ("green", 0, 0, 0, 0),
        ("gold", 0, 0, 0, 0),
    ]
    assert dict(migration.moves.rows()) == {"new": 2, "up": 1, "same": 0, "down": 0}
    up = migration.long.filter(pl.col("move") == "up")
    assert up.filter(pl.col("members") > 0).select("from_tier", "to_tier").row(0) == (
        "sprout",
        "gold",
    )


def test_migration_needs_a_later_second_day():
    with pytest.raises(InvalidInput):
        tier_migration(HISTORY, date_a=date(2024, 4, 30), date_b=date(2024, 1, 31))


def test_time_to_upgrade_by_hand():
    # green (or higher) first held: a after 27 days, b after 50, c on day 0
    # gold: a after 101 days
    frame = time_to_upgrade(HISTORY, MEMBERS, tiers=TIERS)

    assert frame["tier"].to_list() == ["green", "gold"]
    green = frame.row(0, named=True)
    assert green["reached"] == 3
    assert green["share_reached"] == 1.0
    assert green["days_mean"] == pytest.approx((27 + 50 + 0) / 3)
    assert green["days_median"] == 27
    gold = frame.row(1, named=True)
    assert (gold["reached"], gold["days_median"]) == (1, 101)
    assert gold["share_reached"] == pytest.approx(1 / 3)


def test_a_jump_over_a_tier_reaches_it():
    history = pl.DataFrame({"member_id": ["a"], "at": [at("2024-01-15")], "tier": ["gold"]})
    frame = time_to_upgrade(history, MEMBERS.head(1), tiers=TIERS)

    assert frame["reached"].to_list() == [1, 1]
    assert frame["days_median"].to_list() == [10, 10]


TX = pl.DataFrame(
    {
        "member_id": ["a", "a", "b", "b", "c"],
        "order_id": ["1", "2", "3", "3", "4"],
        "occurred_at": [
            at("2024-01-10"),
            at("2024-05-01"),
            at("2024-02-11"),
            at("2024-02-12"),
            at("2025-01-01"),
        ],
        "amount": [700.0, 1590.0, 600.0, 10.0, 50.0],
        "kind": ["purchase", "purchase", "purchase", "return", "purchase"],
    }
)


def test_progress_to_the_next_tier_by_hand():
    # Growth over 2024 (after 2023-12-31): 1 per yuan + 5 per order.
    #   a: 700 + 1590 + 2 x 5 = 2300 -> green earned, 200 short of gold (2500)
    #   b: 600 - 10 returned + 5 = 595 -> sprout, 205 short of green (800)
    #   c: its purchase is in 2025, not counted
    frame = tier_progress(TX, THRESHOLDS, as_of=date(2024, 12, 31))

    assert frame.rows() == [
        ("a", 2300.0, "green", "gold", 2500.0, 200.0, pytest.approx(0.92)),
        ("b", 595.0, "sprout", "green", 800.0, 205.0, pytest.approx(595 / 800)),
    ]


def test_progress_takes_the_growth_rule_as_parameters():
    frame = tier_progress(TX, THRESHOLDS, as_of=date(2024, 12, 31), per_yuan=0.5, per_order=0)

    assert frame["growth"].to_list() == [1145.0, 295.0]


def test_members_near_the_next_tier():
    # within 10 %: a is 200 / 2500 = 8 % short; b 205 / 800 = 26 % short
    near = members_near_next_tier(TX, THRESHOLDS, as_of=date(2024, 12, 31), within=0.1)

    assert near["member_id"].to_list() == ["a"]
    wider = members_near_next_tier(TX, THRESHOLDS, as_of=date(2024, 12, 31), within=0.3)
    assert wider["member_id"].to_list() == ["a", "b"]


def test_progress_from_the_tier_members_hold():
    held = pl.DataFrame({"member_id": ["a", "b", "d"], "tier": ["gold", "green", "sprout"]})
    frame = tier_progress(TX, THRESHOLDS, as_of=date(2024, 12, 31), current=held)

    rows = {r["member_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["a"]["next_tier"] is None  # already at the top
    assert (rows["b"]["next_tier"], rows["b"]["gap"]) == ("gold", 2500 - 595)
    assert (rows["d"]["growth"], rows["d"]["gap"]) == (0.0, 800.0)


def test_thresholds_must_ascend():
    with pytest.raises(InvalidInput) as caught:
        tier_progress(TX, [("sprout", 0), ("green", 0)], as_of=date(2024, 12, 31))

    assert caught.value.errors[0].key == "analytics.v.tier_thresholds"


def test_spend_and_retention_by_tier_by_hand():
    # Start 2024-03-31 (12 months before 2025-03-31): a green, b green, c sprout.
    #   green: a bought before and after (1590), b only before -> retention 1/2,
    #          spend per member 795, per active 1590
    #   sprout: c bought only after (50)
    frame = tier_performance(TX, HISTORY, as_of=date(2025, 3, 31), members=MEMBERS, tiers=TIERS)

    rows = {r["tier"]: r for r in frame.iter_rows(named=True)}
    assert frame["tier"].to_list() == ["sprout", "green"]
    assert rows["green"]["members"] == 2
    assert rows["green"]["active_before"] == 1.0
    assert rows["green"]["retention"] == 0.5
    assert rows["green"]["spend_per_member"] == 795.0
    assert rows["green"]["spend_per_active"] == 1590.0
    assert (rows["sprout"]["active_before"], rows["sprout"]["retention"]) == (0.0, 1.0)
