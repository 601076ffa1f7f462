"""NPS, CSAT and CES with their intervals, worked by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from memberlab.experience.scores import MIN_RESPONSES, compare, estimate, score_table

# 40 promoters, 30 passives, 30 detractors: NPS 10.
SAMPLE = [10] * 40 + [8] * 30 + [3] * 30


def test_nps_with_its_adjusted_wald_interval() -> None:
    # adjusted: n = 103, p = 40.75/103 = 0.39563, d = 30.75/103 = 0.29854,
    # centre 0.09709, variance (0.69417 - 0.09709^2)/103 = 0.0066480, se 0.081535,
    # half-width 1.95996 * 0.081535 = 0.15980: (-6.27, 25.69)
    result = estimate(SAMPLE, "nps")

    assert (result.n, result.value) == (100, 10.0)
    assert result.low == pytest.approx(-6.2719, abs=1e-3)
    assert result.high == pytest.approx(25.6894, abs=1e-3)
    assert result.too_small is False


def test_csat_top_two_box_with_a_wilson_interval() -> None:
    # 60 of 80 answered 4 or 5: 75 %; Wilson: centre (0.75 + 3.8415/160)/(1 + 3.8415/80)
    # = 0.77367/1.04802 = 0.73822, half 1.95996*sqrt(0.75*0.25/80 + 3.8415/25600)/1.04802
    # = 0.093392: (64.48, 83.16)
    result = estimate([5, 4, 4, 3, 2, 5, 5, 4] * 10, "csat")

    assert result.value == 75.0
    assert result.low == pytest.approx(64.52, abs=0.05)
    assert result.high == pytest.approx(83.19, abs=0.05)


def test_ces_mean_with_a_t_interval() -> None:
    result = estimate([7, 6, 5, 7, 6] * 8, "ces")

    # mean 6.2; squares of deviations 22.4 over 40 answers: sd sqrt(22.4/39) = 0.7579;
    # t(39) 2.0227; half 2.0227 * 0.7579 / sqrt(40) = 0.2424
    assert result.value == pytest.approx(6.2)
    assert result.high - result.value == pytest.approx(0.2424, abs=1e-3)


def test_a_small_group_is_flagged() -> None:
    assert estimate([10] * (MIN_RESPONSES - 1), "nps").too_small is True
    assert estimate([10] * MIN_RESPONSES, "nps").too_small is False


def test_a_real_change_is_significant_and_noise_is_not() -> None:
    worse = [10] * 20 + [8] * 30 + [3] * 50  # NPS -30
    noise = [10] * 38 + [8] * 33 + [3] * 29  # NPS 9

    assert compare(SAMPLE * 3, worse * 3, "nps").significant is True
    assert compare(SAMPLE, noise, "nps").significant is False
    change = compare(SAMPLE * 3, worse * 3, "nps")
    assert change.low < change.difference < change.high < 0


def test_csat_and_ces_changes_have_their_own_tests() -> None:
    good = [5, 5, 4, 4, 3] * 40  # 80 % top-2
    bad = [5, 4, 3, 2, 2] * 40  # 40 %

    assert compare(good, bad, "csat").difference == pytest.approx(-40.0)
    assert compare(good, bad, "csat").significant is True
    assert compare([6, 7] * 50, [6, 7] * 50, "ces").significant is False


def test_score_table_by_period_and_touchpoint() -> None:
    rows = []
    for month, values in ((1, SAMPLE), (2, [10] * 50 + [3] * 50)):
        for i, value in enumerate(values):
            rows.append(
                {
                    "responded_at": datetime(2026, month, 1 + i % 28, tzinfo=UTC),
                    "touchpoint": "store" if i % 2 else "delivery",
                    "nps": value,
                }
            )
    frame = pl.DataFrame(rows)

    by_month = score_table(frame, "nps", period="month")
    by_touchpoint = score_table(frame, "nps", by=["touchpoint"], period="month")

    assert by_month.select("n", "value").rows() == [(100, 10.0), (100, 0.0)]
    assert by_touchpoint.height == 4
    assert by_touchpoint["n"].sum() == 200
    assert not by_month["too_small"].any()


@pytest.mark.parametrize(
    ("promoters", "detractors"),
    [(0.5, 0.2), (0.3, 0.3), (0.7, 0.05), (0.15, 0.6)],
)
def test_the_nps_interval_covers_the_truth_95_times_in_100(
    promoters: float, detractors: float
) -> None:
    # 4,000 samples of 100 answers from a known population (seeded); coverage estimated to
    # within about 0.0034 (one standard error), so 0.93-0.97 fails only a broken interval.
    rng = np.random.default_rng(7)
    reps, n = 4_000, 100
    scores = rng.choice([10, 8, 3], size=(reps, n), p=[promoters, 1 - promoters - detractors,
                                                     detractors])  # fmt: skip
    answers = pl.DataFrame({"sample": np.repeat(np.arange(reps), n), "nps": scores.ravel()})

    table = score_table(answers, "nps", by=["sample"])

    truth = 100 * (promoters - detractors)
    covered = ((table["low"] <= truth) & (truth <= table["high"])).mean()
    assert 0.93 <= covered <= 0.97, covered
