"""A fit that cannot be trusted raises a clear error, in both languages; never garbage."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from memberlab.analytics import gamma_gamma
from memberlab.analytics.clv import (
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pnbd,
    fit_purchase_model,
)
from memberlab.analytics.fitting import ModelFitError
from memberlab.core.errors import InvalidInput, MemberLabError
from memberlab.core.i18n import catalogs


def summary(x, t_x, age, m=None) -> pl.DataFrame:
    n = len(x)
    return pl.DataFrame(
        {
            "member_id": [f"M{i}" for i in range(n)],
            "frequency": np.asarray(x, dtype=np.int64),
            "recency": np.asarray(t_x, dtype=float),
            "T": np.asarray(age, dtype=float),
            "monetary_value": np.zeros(n) if m is None else np.asarray(m, dtype=float),
        }
    )


def assert_speaks_both_languages(error: MemberLabError, *fragments: str) -> None:
    english, chinese = error.render("en"), error.render("zh-CN")
    assert english != chinese
    for text in (english, chinese):
        assert "{" not in text
        assert text.strip()
        for fragment in fragments:
            assert fragment in text


@pytest.mark.parametrize(("fit", "name"), [(fit_bgnbd, "BG/NBD"), (fit_pnbd, "Pareto/NBD")])
def test_no_repeat_purchase_at_all_is_refused_with_a_reason(fit, name):
    nobody_came_back = summary(np.zeros(500), np.zeros(500), np.linspace(1, 39, 500))

    with pytest.raises(ModelFitError) as caught:
        fit(nobody_came_back)

    error = caught.value
    assert error.key == "analytics.fit.no_repeat"
    assert error.status == 422
    assert_speaks_both_languages(error, name, "500")
    assert "repeat purchase" in error.render("en")
    assert "复购" in error.render("zh-CN")
    assert error.title("zh-CN") != error.title("en")


def test_identical_histories_do_not_determine_the_model():
    # 200 customers with exactly the same history: four parameters, one data point.
    same = summary(np.ones(200), np.full(200, 5.0), np.full(200, 10.0))

    with pytest.raises(ModelFitError) as caught:
        fit_bgnbd(same)

    assert caught.value.key in {"analytics.fit.boundary", "analytics.fit.not_identified"}
    assert_speaks_both_languages(caught.value, "BG/NBD")


def test_a_flat_spend_model_is_refused():
    same_spend = summary(np.full(50, 2), np.full(50, 5.0), np.full(50, 10.0), np.full(50, 10.0))

    with pytest.raises(ModelFitError) as caught:
        fit_gamma_gamma(same_spend)

    assert caught.value.key in {"analytics.fit.boundary", "analytics.fit.not_identified"}
    assert_speaks_both_languages(caught.value, "Gamma-Gamma")


def test_spend_needs_repeat_customers():
    with pytest.raises(ModelFitError) as caught:
        fit_gamma_gamma(summary(np.zeros(10), np.zeros(10), np.full(10, 5.0)))

    assert caught.value.key == "analytics.fit.no_repeat_spend"
    assert_speaks_both_languages(caught.value, "Gamma-Gamma")


@pytest.mark.parametrize(
    ("x", "t_x", "age"),
    [
        ([1, 2], [5.0, 12.0], [10.0, 10.0]),  # recency above T
        ([0, 2], [3.0, 4.0], [10.0, 10.0]),  # recency without a repeat purchase
        ([1, 2], [-1.0, 4.0], [10.0, 10.0]),  # negative time
    ],
)
def test_impossible_histories_are_refused(x, t_x, age):
    with pytest.raises(ModelFitError) as caught:
        fit_bgnbd(summary(x, t_x, age))

    assert caught.value.key == "analytics.fit.bad_data"


def test_an_empty_summary_is_refused():
    with pytest.raises(ModelFitError) as caught:
        fit_pnbd(summary([], [], []))

    assert caught.value.key == "analytics.fit.no_customers"


def test_unknown_model_and_missing_columns_are_input_errors():
    data = summary([1, 2], [5.0, 6.0], [10.0, 10.0])

    with pytest.raises(InvalidInput):
        fit_purchase_model(data, model="weibull")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        fit_bgnbd(data.drop("T"))
    assert caught.value.errors[0].loc == "T"


def test_correlated_spend_and_frequency_raise_a_warning_in_both_languages():
    rng = np.random.default_rng(3)
    x = rng.poisson(3, 3000) + 1
    spend = 5.0 * x * rng.gamma(20, 1 / 20, 3000)  # heavy buyers spend more per purchase

    fit = fit_gamma_gamma(summary(x, np.full(3000, 5.0), np.full(3000, 10.0), spend))

    (warning,) = fit.warnings
    assert warning.key == "analytics.warn.spend_correlation"
    assert float(warning.params["r"]) > 0.3
    assert warning.params["r"] in warning.message("en")
    assert warning.params["r"] in warning.message("zh-CN")
    assert "独立" in warning.message("zh-CN")


def test_an_infinite_mean_spend_is_flagged_and_refused_for_prediction():
    with pytest.raises(ModelFitError) as caught:
        gamma_gamma.conditional_expected_spend((6.0, 0.8, 15.0), np.array([1.0]), np.array([10.0]))

    assert caught.value.key == "analytics.fit.spend_mean_infinite"
    assert_speaks_both_languages(caught.value, "0.800")


def test_a_fit_result_serialises_to_json_with_translated_warnings():
    rng = np.random.default_rng(4)
    x = rng.poisson(2, 2000) + 1
    spend = 5.0 * x * rng.gamma(20, 1 / 20, 2000)
    fit = fit_gamma_gamma(summary(x, np.full(2000, 5.0), np.full(2000, 10.0), spend))

    data = json.loads(json.dumps(fit.as_dict("zh-CN")))

    assert set(data["params"]) == {"p", "q", "gamma"}
    assert set(data["standard_errors"]) == set(data["params"])
    assert data["converged"] is True
    assert data["n"] == 2000
    assert "独立" in data["warnings"][0]


def test_clv_rejects_bad_arguments():
    rng = np.random.default_rng(5)
    x = rng.poisson(2, 500)
    data = summary(x, np.where(x > 0, 5.0, 0.0), np.full(500, 10.0), rng.gamma(5, 5, 500))
    with pytest.raises(InvalidInput) as caught:
        customer_lifetime_value(None, None, data, time_unit="month")  # type: ignore[arg-type]
    assert caught.value.errors[0].loc == "time_unit"


def test_every_analytics_message_exists_in_both_languages_with_the_same_fields():
    english = {k: v for k, v in catalogs()["en"].items() if k.startswith("analytics.")}
    chinese = {k: v for k, v in catalogs()["zh-CN"].items() if k.startswith("analytics.")}

    assert english.keys() == chinese.keys()
    assert len(english) > 10
