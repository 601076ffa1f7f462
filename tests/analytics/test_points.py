"""Points economics: cohorts of a tiny ledger by hand, the chain-ladder forecast on a ledger
whose redemption and expiry pattern is known, the liability by expiry and IFRS 15."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from memberlab.analytics.points import (
    deferred_revenue,
    ifrs15_view,
    liability_by_expiry,
    points_cohorts,
    points_forecast,
)
from memberlab.core.errors import InvalidInput


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ledger(rows: list[tuple[str, str, str, int]], **extra: list[object]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "member_id": [r[0] for r in rows],
            "at": [at(r[1]) for r in rows],
            "kind": [r[2] for r in rows],
            "points": [r[3] for r in rows],
            **extra,
        },
        schema_overrides={"points": pl.Int64},
    )


# a earns 100 (Jan) and 50 (Feb), redeems 120 in March (first in, first out: all of January
#   and 20 of February), and the other 30 of February expire in December.
# b earns 40 (Jan), a return takes 10 of them back two days later, pays 10 with points in
#   February: 20 are still outstanding.
TINY_ROWS = [
    ("a", "2024-01-05T10:00", "purchase", 100),
    ("a", "2024-02-03T10:00", "purchase", 50),
    ("a", "2024-03-10T10:00", "redemption", -120),
    ("a", "2024-12-31T12:00", "expire", -30),
    ("b", "2024-01-07T10:00", "purchase", 40),
    ("b", "2024-01-09T10:00", "return", -10),
    ("b", "2024-02-01T10:00", "payment", -10),
    ("b", "2024-02-01T10:00", "release", 0),
]
TINY = ledger(TINY_ROWS)


def test_cohorts_of_a_tiny_ledger_by_hand():
    result = points_cohorts(TINY, as_of=date(2024, 12, 31))

    assert result.method == "fifo"
    assert result.cohorts.select(
        "cohort", "issued", "reversed", "net_issued", "redeemed", "expired", "outstanding"
    ).rows() == [
        ("2024-01", 140, 10, 130, 110, 0, 20),
        ("2024-02", 50, 0, 50, 20, 30, 0),
    ]
    february = result.cohorts.row(1, named=True)
    assert (february["redeemed_share"], february["expired_share"]) == (0.4, 0.6)
    assert result.outstanding_points == 20
    assert result.unattributed == 0


def test_the_lots_earning_times_give_the_same_cohorts():
    # With each outflow's lot (as postings give it), no first-in-first-out is needed.
    rows = [
        *TINY_ROWS[:2],
        ("a", "2024-03-10T10:00", "redemption", -100),
        ("a", "2024-03-10T10:00", "redemption", -20),
        ("a", "2024-12-31T12:00", "expire", -30),
        *TINY_ROWS[4:7],
    ]
    earned = [
        None,
        None,
        at("2024-01-05T10:00"),
        at("2024-02-03T10:00"),
        at("2024-02-03T10:00"),
        None,
        at("2024-01-07T10:00"),
        at("2024-01-07T10:00"),
    ]
    result = points_cohorts(
        ledger(rows, earned_at=pl.Series(earned, dtype=pl.Datetime("us", "UTC"))),
        as_of=date(2024, 12, 31),
    )

    assert result.method == "lot"
    fifo = points_cohorts(TINY, as_of=date(2024, 12, 31))
    assert result.cohorts.equals(fifo.cohorts)


def test_development_triangle_by_hand():
    result = points_cohorts(TINY, as_of=date(2024, 12, 31))

    january = result.development.filter(pl.col("cohort") == "2024-01")
    # age 1 (February): b's 10 paid; age 2 (March): a's 100 redeemed
    assert january["redeemed"].to_list()[:3] == [0, 10, 100]
    assert january["outstanding_end"].to_list()[:3] == [130, 120, 20]
    assert result.redeemed_triangle.row(0)[1:4] == pytest.approx((0.0, 10 / 130, 110 / 130))
    assert result.expired_triangle.filter(pl.col("cohort") == "2024-02")["10"].item() == 0.6
    # January: 12 months observed (ages 0-11); February: 11
    assert result.development.group_by("cohort").len().sort("cohort")["len"].to_list() == [12, 11]


def test_what_comes_in_equals_what_goes_out_and_what_is_left():
    result = points_cohorts(TINY, as_of=date(2024, 12, 31))
    c = result.cohorts

    assert (
        c["issued"] - c["reversed"] - c["redeemed"] - c["expired"] - c["outstanding"] == 0
    ).all()
    assert c["outstanding"].sum() == result.outstanding_points


def test_spending_beyond_all_earnings_is_reported():
    debt = ledger(
        [
            ("a", "2024-01-05T10:00", "purchase", 30),
            ("a", "2024-01-20T10:00", "return", -50),  # 20 more than ever earned
        ]
    )
    result = points_cohorts(debt, as_of=date(2024, 1, 31))

    assert result.unattributed == 20
    assert [w.key for w in result.warnings] == ["analytics.points.unattributed"]
    assert result.outstanding_points == -20


def test_issuance_rate_with_the_transactions():
    transactions = pl.DataFrame(
        {
            "member_id": ["a", "b", "a"],
            "occurred_at": [at("2024-01-05T10:00"), at("2024-01-07T10:00"), at("2024-02-03")],
            "amount": [100.0, 40.0, 50.0],
        }
    )
    result = points_cohorts(TINY, as_of=date(2024, 12, 31), transactions=transactions)

    assert result.cohorts["issued_per_yuan"].to_list() == [1.0, 1.0]


def patterned_ledger() -> pl.DataFrame:
    """Each month of 2024 one member earns 1,000 points, redeems half the next month and
    lets the rest expire three months after earning; the history ends on 2024-12-31."""
    rows = []
    for month in range(1, 13):
        member = f"m{month:02d}"
        rows.append((member, f"2024-{month:02d}-10T10:00", "purchase", 1000))
        if month + 1 <= 12:
            rows.append((member, f"2024-{month + 1:02d}-10T10:00", "redemption", -500))
        if month + 3 <= 12:
            rows.append((member, f"2024-{month + 3:02d}-01T00:00", "expire", -500))
    return ledger(rows)


def test_hazards_of_the_pattern():
    result = points_cohorts(patterned_ledger(), as_of=date(2024, 12, 31))
    hazards = {r["age"]: r for r in result.hazards.iter_rows(named=True)}

    assert hazards[0]["redemption_hazard"] == 0.0
    assert hazards[1]["redemption_hazard"] == 0.5  # 11 cohorts, 5,500 of 11,000
    assert hazards[2]["redemption_hazard"] == hazards[2]["expiry_hazard"] == 0.0
    assert hazards[3]["expiry_hazard"] == 1.0  # 9 cohorts, all that was left
    assert result.historical_redemption_rate == 0.5  # January to September are resolved


def test_forecast_rolls_the_outstanding_points_forward():
    # Outstanding on 2024-12-31: October 500 (expires in January, age 3), November 500
    # (expires in February), December 1,000 (half redeemed in January, half expires in
    # March). Redeemed 500, expired 1,500: 25 % of the 2,000 will be redeemed.
    result = points_cohorts(patterned_ledger(), as_of=date(2024, 12, 31))
    forecast = points_forecast(result, horizon_months=12)

    assert forecast.outstanding == 2000
    assert forecast.expected_redeemed == pytest.approx(500)
    assert forecast.expected_expired == pytest.approx(1500)
    assert forecast.unresolved == pytest.approx(0)
    assert forecast.expected_redemption_rate == pytest.approx(0.25)
    months = forecast.by_month.head(3)
    assert months["month"].to_list() == ["2025-01", "2025-02", "2025-03"]
    assert months["expected_redeemed"].to_list() == pytest.approx([500, 0, 0])
    assert months["expected_expired"].to_list() == pytest.approx([500, 500, 500])
    december = forecast.by_cohort.filter(pl.col("cohort") == "2024-12").row(0, named=True)
    assert december["expected_redemption_rate"] == pytest.approx(0.5)


def test_forecast_with_lots_expires_what_is_left_at_expiry():
    result = points_cohorts(patterned_ledger(), as_of=date(2024, 12, 31))
    # December's 1,000 can be used until the end of February 2025.
    lots = pl.DataFrame(
        {
            "member_id": ["m12"],
            "earned_at": [at("2024-12-10T10:00")],
            "expires_at": [at("2025-03-01T00:00")],
            "amount": [1000],
            "remaining": [1000],
        }
    )
    forecast = points_forecast(result, lots=lots, horizon_months=12)

    assert forecast.method == "hazards+expiry"
    assert forecast.expected_redeemed == pytest.approx(500)
    assert forecast.expected_expired == pytest.approx(500)
    assert forecast.by_month["expected_expired"].to_list()[:3] == pytest.approx([0, 500, 0])


def test_ifrs15_numbers_by_hand():
    # 12,345 points x 0.01 = 123.45 face value; x 0.8 = 98.76 deferred; 24.69 breakage
    view = ifrs15_view(12_345, "0.01", 0.8)

    assert view.face_value == Decimal("123.45")
    assert view.deferred_revenue == Decimal("98.76")
    assert view.expected_breakage_value == Decimal("24.69")
    assert view.expected_breakage_rate == pytest.approx(0.2)


def test_deferred_revenue_from_the_ledger():
    # 2,000 outstanding x 0.01 = 20.00; forecast rate 0.25 -> 5.00; historical 0.5 -> 10.00
    history = patterned_ledger()

    forecast = deferred_revenue(history, value_per_point="0.01", as_of=date(2024, 12, 31))
    assert (forecast.outstanding_points, forecast.deferred_revenue) == (2000, Decimal("5.00"))
    assert forecast.rate_source == "forecast"
    historical = deferred_revenue(
        history, value_per_point="0.01", as_of=date(2024, 12, 31), rate="historical"
    )
    assert (historical.deferred_revenue, historical.rate_source) == (Decimal("10.00"), "historical")
    given = deferred_revenue(history, value_per_point="0.01", as_of=date(2024, 12, 31), rate=0.9)
    assert given.deferred_revenue == Decimal("18.00")


def test_deferred_revenue_reuses_the_cohorts_worked_out_already():
    history = patterned_ledger()
    day = date(2024, 12, 31)
    cohorts = points_cohorts(history, as_of=day)

    for rate in ("forecast", "historical", 0.9):
        again = deferred_revenue(history, value_per_point="0.01", as_of=day, rate=rate)
        reused = deferred_revenue(
            history, value_per_point="0.01", as_of=day, rate=rate, cohorts=cohorts
        )
        assert reused == again
    # cohorts of another day are refused
    with pytest.raises(InvalidInput):
        deferred_revenue(history, value_per_point="0.01", as_of=date(2024, 11, 30), cohorts=cohorts)


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(InvalidInput):
        ifrs15_view(100, "0.01", 1.2)
    with pytest.raises(InvalidInput):
        deferred_revenue(TINY, value_per_point="0.01", rate="guess")


def test_liability_by_expiry_month():
    lots = pl.DataFrame(
        {
            "member_id": ["a", "a", "b", "c"],
            "earned_at": [at("2024-03-01"), at("2024-05-01"), at("2024-05-02"), at("2024-06-01")],
            # Shanghai midnight of 2026-01-01 is 16:00 UTC on 2025-12-31
            "expires_at": [at("2025-12-31T16:00"), at("2026-01-01T00:00"), None, None],
            "amount": [100, 200, 300, 400],
            "remaining": [100, 150, 0, 400],
        },
        schema_overrides={"expires_at": pl.Datetime("us", "UTC")},
    )

    utc = liability_by_expiry(lots, value_per_point="0.01")
    assert utc.rows() == [("2025-12", 250, 2.5), ("never", 400, 4.0)]
    local = liability_by_expiry(lots, time_zone="Asia/Shanghai")
    assert local.rows() == [("2025-12", 100), ("2026-01", 150), ("never", 400)]
