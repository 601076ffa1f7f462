"""Lifetime value on CDNOW: the published estimates, and agreement with lifetimes.

Published figures: Fader, Hardie and Lee (2005), "'Counting Your Customers' the Easy Way",
*Marketing Science* 24 (2), section 7 (BG/NBD and Pareto/NBD on the 2,357-customer CDNOW
sample, 39 weeks of calibration from 1 January 1997, time in weeks, ``T`` from each
customer's first purchase); Fader and Hardie (2013), "The Gamma-Gamma Model of Monetary
Value" (note 025), and FHL (2005) "RFM and CLV" (p = 6.25, q = 3.74, gamma = 15.44 on the
946 repeat customers). The Gamma-Gamma log-likelihood, not printed in the note, is the one
CLVTools and lifetimes report (-4055.9). Reference per-customer values come from lifetimes
0.11.3 run on the same summary.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from memberlab.analytics import bgnbd
from memberlab.analytics.clv import (
    customer_lifetime_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pnbd,
    fit_purchase_model,
    holdout_comparison,
    monthly_rate,
    predict_purchases,
    spend_frequency_correlation,
)
from memberlab.core.errors import InvalidInput

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_PNBD_LL = -9595.0
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
GAMMA_GAMMA_LL = -4055.9
# lifetimes 0.11.3 (BetaGeoFitter / GammaGammaFitter standard_errors_) on the same data.
LIFETIMES_BGNBD_SE = {"r": 0.012557, "alpha": 0.378224, "a": 0.185734, "b": 0.705414}
LIFETIMES_GAMMA_GAMMA_SE = {"p": 1.190055, "q": 0.290133, "gamma": 4.159423}


def decimals(published: float) -> int:
    text = repr(published)
    return len(text.split(".")[1]) if "." in text else 0


def significant(value: float, figures: int = 3) -> float:
    return float(f"{value:.{figures}g}")


def assert_reproduces(estimates: dict[str, float], published: dict[str, float]) -> None:
    for name, value in published.items():
        # To the published precision, which is at least 3 significant figures.
        assert round(estimates[name], decimals(value)) == value, name
        assert significant(estimates[name]) == significant(value), name


def test_bgnbd_reproduces_fader_hardie_lee_on_cdnow(cdnow):
    fit = fit_bgnbd(cdnow)

    assert_reproduces(fit.params, PUBLISHED_BGNBD)
    assert round(fit.loglik, 1) == PUBLISHED_BGNBD_LL
    assert fit.n == 2357
    assert fit.converged
    for name, se in LIFETIMES_BGNBD_SE.items():
        assert fit.standard_errors[name] == pytest.approx(se, rel=1e-3)


def test_pareto_nbd_reproduces_fader_hardie_lee_on_cdnow(cdnow):
    fit = fit_pnbd(cdnow)

    assert_reproduces(fit.params, PUBLISHED_PNBD)
    assert round(fit.loglik, 1) == PUBLISHED_PNBD_LL
    assert all(se > 0 and math.isfinite(se) for se in fit.standard_errors.values())


def test_gamma_gamma_reproduces_the_published_spend_model_on_cdnow(cdnow):
    fit = fit_gamma_gamma(cdnow)

    assert_reproduces(fit.params, PUBLISHED_GAMMA_GAMMA)
    assert round(fit.loglik, 1) == GAMMA_GAMMA_LL
    assert fit.n == 946
    for name, se in LIFETIMES_GAMMA_GAMMA_SE.items():
        assert fit.standard_errors[name] == pytest.approx(se, rel=1e-3)
    assert fit.warnings == ()  # r = 0.11: spend and frequency are close to independent


def test_cdnow_spend_is_nearly_independent_of_frequency(cdnow):
    # FHL (2005, "RFM and CLV") report a correlation of 0.11 on these data.
    assert round(spend_frequency_correlation(cdnow), 2) == 0.11


def test_holdout_forecast_by_calibration_frequency_matches_the_paper(cdnow):
    bg = holdout_comparison(fit_bgnbd(cdnow), cdnow)
    pareto = holdout_comparison(fit_pnbd(cdnow), cdnow)

    assert bg["frequency"].to_list() == ["0", "1", "2", "3", "4", "5", "6", "7+", "all"]
    zero = bg.row(0, named=True)
    # FHL (2005), section 7: 334 of the 1,411 zero-repeat customers' holdout purchases
    # (0.24 each); the BG/NBD forecasts 0.23, the Pareto/NBD 0.14.
    assert (zero["customers"], zero["actual_total"]) == (1411, 334)
    assert round(zero["forecast_mean"], 2) == 0.23
    assert round(pareto.row(0, named=True)["forecast_mean"], 2) == 0.14
    overall = bg.row(-1, named=True)
    assert overall["customers"] == 2357
    assert overall["actual_total"] == 1882
    assert overall["forecast_total"] == pytest.approx(bg["forecast_total"][:-1].sum())
    assert 0.8 < overall["forecast_total"] / overall["actual_total"] < 1.0


def test_clv_agrees_with_lifetimes_month_by_month_convention(cdnow):
    purchases = fit_bgnbd(cdnow)
    spend = fit_gamma_gamma(cdnow)

    values = customer_lifetime_value(
        purchases, spend, cdnow, months=12, discount_rate=0.01, time_unit="week"
    ).sort("member_id")

    # lifetimes: GammaGammaFitter.customer_lifetime_value(bgf, ..., time=12,
    # discount_rate=0.01, freq="W") on the same summary.
    assert values["clv"][:3].to_list() == pytest.approx([36.273977, 4.640936, 8.344481], rel=1e-5)
    assert values["clv"].sum() == pytest.approx(71507.953, rel=1e-6)


def test_clv_is_the_discounted_sum_of_monthly_expected_purchases_times_spend(cdnow):
    purchases = fit_bgnbd(cdnow)
    spend = fit_gamma_gamma(cdnow)
    few = cdnow.head(20)
    x, t_x, age, m = (
        few[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T", "monetary_value")
    )
    p, q, gamma = spend.values
    expected_spend = np.where(x > 0, p * (gamma + x * m) / (p * x + q - 1), p * gamma / (q - 1))
    rate = monthly_rate(0.10)
    by_hand = np.zeros(few.height)
    for month in range(1, 25):
        made = bgnbd.conditional_expected_purchases(
            purchases.values, 4.345 * month, x, t_x, age
        ) - bgnbd.conditional_expected_purchases(purchases.values, 4.345 * (month - 1), x, t_x, age)
        by_hand += 0.3 * expected_spend * made / (1 + rate) ** month

    values = customer_lifetime_value(
        purchases, spend, few, months=24, annual_discount_rate=0.10, margin=0.3, time_unit="week"
    )

    assert values["clv"].to_numpy() == pytest.approx(by_hand, rel=1e-10)
    assert values["expected_spend"].to_numpy() == pytest.approx(expected_spend)
    assert (1 + rate) ** 12 == pytest.approx(1.10)


def test_clv_refuses_two_discount_rates(cdnow):
    purchases = fit_bgnbd(cdnow)
    spend = fit_gamma_gamma(cdnow)

    with pytest.raises(InvalidInput):
        customer_lifetime_value(
            purchases, spend, cdnow, discount_rate=0.01, annual_discount_rate=0.1
        )


def test_predictions_match_lifetimes_for_the_pareto_nbd(cdnow):
    predicted = predict_purchases(fit_pnbd(cdnow), cdnow, t=10).sort("member_id").head(3)

    # lifetimes ParetoNBDFitter on the same summary: conditional_probability_alive and
    # conditional_expected_number_of_purchases_up_to_time(10, ...).
    assert predicted["p_alive"].to_list() == pytest.approx([0.869135, 0.167995, 0.295110], rel=1e-4)
    assert predicted["expected_purchases"].to_list() == pytest.approx(
        [0.424503, 0.049916, 0.031234], rel=1e-4
    )


def test_unconditional_expectation_grows_with_the_horizon(cdnow):
    for fit in (fit_purchase_model(cdnow, model="bgnbd"), fit_purchase_model(cdnow, model="pnbd")):
        values = expected_purchases(fit, np.array([0.0, 13.0, 39.0, 78.0]))
        assert values[0] == 0.0
        assert np.all(np.diff(values) > 0)
