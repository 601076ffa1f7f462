"""Parameter recovery: data simulated from known parameters give them back.

Each model is fitted to at least 10,000 simulated customers (fixed seeds); every estimate
must lie within 3 standard errors of the truth, and the log-likelihood at the estimates
must beat the log-likelihood at the truth and at estimates nudged by one standard error
in either direction (a wrong likelihood or gradient would fail one or the other).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from memberlab.analytics import bgnbd, gamma_gamma, pnbd
from memberlab.analytics.clv import fit_bgnbd, fit_gamma_gamma, fit_pnbd
from memberlab.analytics.fitting import FitResult
from memberlab.analytics.simulate import (
    simulate_bgnbd,
    simulate_pnbd,
    simulate_spend,
    simulate_transactions,
)
from memberlab.analytics.summary import rfm_summary
from memberlab.datasets.world import generate_world

BGNBD_TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
PNBD_TRUTH = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
SPEND_TRUTH = {"p": 6.0, "q": 3.8, "gamma": 15.0}


def ages(n: int, seed: int) -> np.ndarray:
    """Customers acquired over 12 weeks, observed to week 39 (as in CDNOW)."""
    return 39.0 - np.random.default_rng(seed).uniform(0, 12, n)


def assert_recovers(fit: FitResult, truth: dict[str, float]) -> None:
    for name, value in truth.items():
        z = (fit.params[name] - value) / fit.standard_errors[name]
        assert abs(z) < 3, f"{name}: {fit.params[name]:.4f} vs {value} ({z:+.1f} SE)"


def assert_is_the_maximum(fit: FitResult, loglik) -> None:
    best = loglik(fit.values)
    assert best == pytest.approx(fit.loglik, rel=1e-9)
    for i, name in enumerate(fit.params):
        for sign in (-1, 1):
            nudged = list(fit.values)
            nudged[i] += sign * fit.standard_errors[name]
            assert loglik(tuple(nudged)) < best, f"{name} {sign:+d} SE"


def test_bgnbd_recovers_known_parameters():
    data = simulate_bgnbd(20_000, **BGNBD_TRUTH, age=ages(20_000, 1), seed=11)
    x, t_x, age = (data[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T"))

    fit = fit_bgnbd(data)

    assert fit.n == 20_000
    assert_recovers(fit, BGNBD_TRUTH)
    assert_is_the_maximum(fit, lambda p: bgnbd.log_likelihood(p, x, t_x, age).sum())
    assert fit.loglik > bgnbd.log_likelihood(tuple(BGNBD_TRUTH.values()), x, t_x, age).sum()


def test_pareto_nbd_recovers_known_parameters():
    data = simulate_pnbd(20_000, **PNBD_TRUTH, age=ages(20_000, 2), seed=12)
    x, t_x, age = (data[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T"))

    fit = fit_pnbd(data)

    assert_recovers(fit, PNBD_TRUTH)
    assert_is_the_maximum(fit, lambda p: pnbd.log_likelihood(p, x, t_x, age).sum())
    assert fit.loglik > pnbd.log_likelihood(tuple(PNBD_TRUTH.values()), x, t_x, age).sum()


def test_gamma_gamma_recovers_known_parameters():
    rng = np.random.default_rng(13)
    frequency = rng.poisson(3.0, 15_000) + 1  # repeat customers only
    spend = simulate_spend(frequency, **SPEND_TRUTH, seed=14)
    data = pl.DataFrame({"frequency": frequency, "monetary_value": spend})

    fit = fit_gamma_gamma(data)

    assert fit.n == 15_000
    assert_recovers(fit, SPEND_TRUTH)
    x, m = frequency.astype(float), spend
    assert_is_the_maximum(fit, lambda p: gamma_gamma.log_likelihood(p, x, m).sum())
    assert fit.warnings == ()  # simulated spend is independent of frequency


def test_simulated_frequencies_average_the_unconditional_expectation():
    # E[X(t)] (FHL 2005 eq. 9; note 009 eq. 27) against 200,000 simulated customers.
    t = 52.0
    bg = simulate_bgnbd(200_000, **BGNBD_TRUTH, age=t, seed=21)["frequency"]
    pareto = simulate_pnbd(200_000, **PNBD_TRUTH, age=t, seed=22)["frequency"]

    bg_expected = bgnbd.expected_purchases(tuple(BGNBD_TRUTH.values()), t)
    pareto_expected = pnbd.expected_purchases(tuple(PNBD_TRUTH.values()), t)

    assert bg.mean() == pytest.approx(float(bg_expected), rel=0.02)
    assert pareto.mean() == pytest.approx(float(pareto_expected), rel=0.02)


@pytest.fixture(scope="module")
def simulated_log() -> pl.DataFrame:
    """Daily transactions of 30,000 members under BG/NBD purchases and Gamma-Gamma spend."""
    return simulate_transactions(
        30_000,
        r=0.9,
        alpha=40.0,
        a=0.6,
        b=4.0,
        p=6.0,
        q=3.8,
        gamma=15.0,
        start=date(2024, 1, 1),
        days=730,
        join_days=180,
        seed=31,
    )


def test_the_pipeline_from_a_transaction_log_recovers_the_model(simulated_log):
    summary = rfm_summary(simulated_log, calibration_end=date(2025, 12, 30))

    fit = fit_bgnbd(summary)

    # Calendar days blur continuous purchase times a little (two purchases on one day
    # count once), so the estimates land close to the truth rather than within 3 SE.
    truth = {"r": 0.9, "alpha": 40.0, "a": 0.6, "b": 4.0}
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=0.08), name


def test_conditional_forecasts_match_simulated_holdout_purchases(simulated_log):
    # With the true parameters, the forecast of holdout purchases given each member's
    # calibration history (FHL 2005 eq. 10) matches what the simulated members went on to
    # do, overall and for the members without a repeat purchase.
    summary = rfm_summary(
        simulated_log, calibration_end=date(2025, 6, 30), observation_end=date(2025, 12, 30)
    )
    x, t_x, age, actual = (
        summary[c].cast(pl.Float64).to_numpy()
        for c in ("frequency", "recency", "T", "frequency_holdout")
    )
    truth = (0.9, 40.0, 0.6, 4.0)

    forecast = bgnbd.conditional_expected_purchases(
        truth, summary["duration_holdout"][0], x, t_x, age
    )

    assert forecast.sum() == pytest.approx(actual.sum(), rel=0.05)
    zero = x == 0
    assert forecast[zero].sum() == pytest.approx(actual[zero].sum(), rel=0.1)


# --- the demo world against its manifest -----------------------------------------------------


@pytest.fixture(scope="module")
def pure_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 members of the demo world without program effects: BG/NBD purchases and
    Gamma-Gamma order values (under the calendar's seasonality), truth in the manifest."""
    out = tmp_path_factory.mktemp("pure-world")
    generate_world(out, members=20_000, seed=13, program_effects=False)
    return out


def test_the_demo_world_gives_back_its_manifest(pure_world):
    manifest = json.loads((pure_world / "manifest.json").read_text())
    assert manifest["program_effects"] is False
    lines = pl.read_parquet(pure_world / "transactions.parquet").filter(kind="purchase")

    # the consultant's pipeline on the public file: order lines, local times, yuan
    summary = rfm_summary(lines, calibration_end=manifest["end"])
    purchases = fit_bgnbd(summary)
    spend = fit_gamma_gamma(summary)

    truth = manifest["params"]["bgnbd"]
    for name in ("a", "b"):  # dropout
        z = (purchases.params[name] - truth[name]) / purchases.standard_errors[name]
        assert abs(z) < 3, (name, purchases.params[name], truth[name])
    assert_recovers(spend, manifest["params"]["gamma_gamma"])
    # Purchases on one day count as one (the convention of these models), so the rate
    # the fit sees is the truth's times the share of repeat orders that fall on a new
    # member-day (measured 0.959: heavy buyers sometimes order twice a day). With that
    # share, the mean rate r / alpha is within 3 standard errors (delta method) ...
    orders = lines.group_by("order_id").agg(pl.col("member_id", "occurred_at").first())
    members = orders["member_id"].n_unique()
    member_days = orders.select("member_id", pl.col("occurred_at").dt.date()).n_unique()
    new_day_share = (member_days - members) / (orders.height - members)
    assert 0.9 < new_day_share < 1
    r, alpha = purchases.params["r"], purchases.params["alpha"]
    gradient = np.array([1 / alpha, -r / alpha**2, 0.0, 0.0])
    rate_se = float(np.sqrt(gradient @ purchases.covariance @ gradient))
    expected_rate = truth["r"] / truth["alpha"] * new_day_share
    assert abs(r / alpha - expected_rate) < 3 * rate_se, (r / alpha, expected_rate)
    # ... and the shape r, which the merging also nudges (heavy buyers lose most), is close
    assert r == pytest.approx(truth["r"], rel=0.08)
