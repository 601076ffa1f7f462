"""Customer lifetime value: purchase and spend models fitted on an RFM summary frame.

The pipeline, each step a pure function over Polars frames::

    summary = rfm_summary(transactions, calibration_end=..., time_unit="week")
    purchases = fit_purchase_model(summary, model="bgnbd")     # or "pnbd"
    spend = fit_gamma_gamma(summary)
    values = customer_lifetime_value(purchases, spend, summary, time_unit="week")
    check = holdout_comparison(purchases, summary)             # needs observation_end

Models: BG/NBD (:mod:`.bgnbd`), Pareto/NBD (:mod:`.pnbd`) and Gamma-Gamma
(:mod:`.gamma_gamma`), fitted by maximum likelihood with standard errors. Fits that do not
converge raise :class:`~memberlab.analytics.fitting.ModelFitError`; they never return
estimates silently.

Fitting works on the distinct ``(frequency, recency, T)`` rows with a count, which is what
makes it fast: with day or week units, a million customers share far fewer histories.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal

import numpy as np
import polars as pl

from memberlab.analytics import bgnbd, gamma_gamma, pnbd
from memberlab.analytics.fitting import FitResult, ModelFitError
from memberlab.analytics.special import distinct_rows
from memberlab.analytics.summary import TIME_UNITS, TimeUnit, rfm_summary
from memberlab.core.errors import FieldError, InvalidInput

__all__ = [
    "DAYS_PER_MONTH",
    "FitResult",
    "ModelFitError",
    "customer_lifetime_value",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_pnbd",
    "fit_purchase_model",
    "holdout_comparison",
    "monthly_rate",
    "predict_purchases",
    "rfm_summary",
    "spend_frequency_correlation",
]

PurchaseModel = Literal["bgnbd", "pnbd"]
_PURCHASE_MODELS: dict[str, ModuleType] = {
    "bgnbd": bgnbd,
    "pnbd": pnbd,
    bgnbd.MODEL: bgnbd,
    pnbd.MODEL: pnbd,
}
# lifetimes' customer_lifetime_value steps month by month: 30 days, or 4.345 weeks.
DAYS_PER_MONTH = 30.0
_PERIODS_PER_MONTH = {"day": DAYS_PER_MONTH, "week": 4.345}


def _require(summary: pl.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise InvalidInput(
            errors=[FieldError(c, "analytics.v.summary_column", {"column": c}) for c in missing]
        )


def _model(fit: FitResult) -> ModuleType:
    try:
        return _PURCHASE_MODELS[fit.model]
    except KeyError:
        raise InvalidInput(
            errors=[FieldError("model", "analytics.v.unknown_model", {"value": fit.model})]
        ) from None


def _arrays(summary: pl.DataFrame, *columns: str) -> tuple[np.ndarray, ...]:
    return tuple(summary[c].cast(pl.Float64).to_numpy() for c in columns)


def _collapse(*columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct rows of the columns, and the number of customers sharing each (the weights)."""
    values, _, counts = distinct_rows(*columns)
    return (*values, counts.astype(float))


def fit_purchase_model(
    summary: pl.DataFrame,
    *,
    model: PurchaseModel = "bgnbd",
    frequency_col: str = "frequency",
    recency_col: str = "recency",
    t_col: str = "T",
) -> FitResult:
    """Fit BG/NBD (``"bgnbd"``) or Pareto/NBD (``"pnbd"``) to an RFM summary.

    Time units are those of the summary (``alpha`` and ``beta`` are per that unit). Raises
    :class:`ModelFitError` when the model cannot be fitted (for instance, no repeat
    purchases at all) or does not converge.
    """
    if model not in ("bgnbd", "pnbd"):
        raise InvalidInput(
            errors=[FieldError("model", "analytics.v.unknown_model", {"value": str(model)})]
        )
    _require(summary, frequency_col, recency_col, t_col)
    x, t_x, age, weights = _collapse(*_arrays(summary, frequency_col, recency_col, t_col))
    return _PURCHASE_MODELS[model].fit(x, t_x, age, weights)


def fit_bgnbd(summary: pl.DataFrame, **columns: str) -> FitResult:
    """BG/NBD (Fader, Hardie and Lee 2005) on an RFM summary; see :func:`fit_purchase_model`."""
    return fit_purchase_model(summary, model="bgnbd", **columns)


def fit_pnbd(summary: pl.DataFrame, **columns: str) -> FitResult:
    """Pareto/NBD on an RFM summary; see :func:`fit_purchase_model`."""
    return fit_purchase_model(summary, model="pnbd", **columns)


def spend_frequency_correlation(
    summary: pl.DataFrame,
    *,
    frequency_col: str = "frequency",
    monetary_col: str = "monetary_value",
) -> float:
    """Pearson r between repeat frequency and mean repeat spend (repeat customers only).

    The Gamma-Gamma model assumes independence; :func:`fit_gamma_gamma` warns when
    ``|r| > 0.3``.
    """
    _require(summary, frequency_col, monetary_col)
    x, m = _arrays(summary, frequency_col, monetary_col)
    return gamma_gamma.spend_frequency_correlation(x, m)


def fit_gamma_gamma(
    summary: pl.DataFrame,
    *,
    frequency_col: str = "frequency",
    monetary_col: str = "monetary_value",
) -> FitResult:
    """Gamma-Gamma spend model on the repeat customers of an RFM summary.

    ``monetary_value`` must be the mean of the *repeat* purchases (as :func:`rfm_summary`
    computes it). The result's warnings include the frequency/spend correlation check.
    """
    _require(summary, frequency_col, monetary_col)
    repeat = summary.select(frequency_col, monetary_col).filter(pl.col(frequency_col) > 0)
    x, m = _arrays(repeat, frequency_col, monetary_col)
    return gamma_gamma.fit(x, m)


def expected_purchases(fit: FitResult, t: float | np.ndarray) -> np.ndarray:
    """Unconditional E[X(t)]: expected repeat purchases of a new customer within ``t``."""
    return _model(fit).expected_purchases(fit.values, t)


def predict_purchases(
    fit: FitResult,
    summary: pl.DataFrame,
    *,
    t: float,
    member_col: str | None = "member_id",
    frequency_col: str = "frequency",
    recency_col: str = "recency",
    t_col: str = "T",
) -> pl.DataFrame:
    """Per member: ``p_alive`` at the end of calibration and ``expected_purchases`` in the
    next ``t`` time units (conditional on the member's history)."""
    _require(summary, frequency_col, recency_col, t_col)
    model = _model(fit)
    x, t_x, age = _arrays(summary, frequency_col, recency_col, t_col)
    columns: dict[str, object] = {}
    if member_col is not None:
        _require(summary, member_col)
        columns[member_col] = summary[member_col]
    alive = model.p_alive(fit.values, x, t_x, age)
    columns["p_alive"] = alive
    columns["expected_purchases"] = model.conditional_expected_purchases(
        fit.values, t, x, t_x, age, alive=alive
    )
    return pl.DataFrame(columns)


def monthly_rate(annual_rate: float) -> float:
    """The monthly rate equivalent to an annual one: ``(1 + annual)^(1/12) - 1``."""
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def customer_lifetime_value(
    purchase_fit: FitResult,
    spend_fit: FitResult,
    summary: pl.DataFrame,
    *,
    months: int = 12,
    discount_rate: float | None = None,
    annual_discount_rate: float | None = None,
    margin: float = 1.0,
    time_unit: TimeUnit = "day",
    member_col: str | None = "member_id",
    frequency_col: str = "frequency",
    recency_col: str = "recency",
    t_col: str = "T",
    monetary_col: str = "monetary_value",
) -> pl.DataFrame:
    """Discounted expected value of each member over the next ``months`` months.

    The convention of ``lifetimes`` (``GammaGammaFitter.customer_lifetime_value``) is kept so
    the figures compare: month ``i`` (1..``months``) spans ``30 (i-1)`` to ``30 i`` days
    (``4.345`` weeks a month with week units); its expected purchases are the difference of
    the conditional cumulative expectations at the two ends; each month's value is
    ``margin * E[spend] * purchases / (1 + d)^i`` with ``d`` the *monthly* discount rate
    (``discount_rate``, default 0.01 as in lifetimes; or give ``annual_discount_rate`` and
    the monthly rate is ``(1 + annual)^(1/12) - 1``). ``E[spend]`` is the Gamma-Gamma
    conditional expectation (note 025, equation 5), the population mean for members without
    a repeat purchase.

    Returns ``member, p_alive, expected_purchases`` (over the whole horizon),
    ``expected_spend`` and ``clv``.
    """
    if discount_rate is not None and annual_discount_rate is not None:
        raise InvalidInput(errors=[FieldError("discount_rate", "analytics.v.discount")])
    if annual_discount_rate is not None:
        rate = monthly_rate(annual_discount_rate)
    else:
        rate = 0.01 if discount_rate is None else discount_rate
    if int(months) != months or months < 1:
        raise InvalidInput(
            errors=[FieldError("months", "analytics.v.months", {"value": str(months)})]
        )
    for name, value in (("discount_rate", rate), ("margin", margin)):
        if value < 0:
            raise InvalidInput(
                errors=[FieldError(name, "analytics.v.negative", {"value": str(value)})]
            )
    if time_unit not in TIME_UNITS:
        raise InvalidInput(
            errors=[FieldError("time_unit", "analytics.v.time_unit", {"value": str(time_unit)})]
        )
    _require(summary, frequency_col, recency_col, t_col, monetary_col)
    model = _model(purchase_fit)
    x, t_x, age, m = _arrays(summary, frequency_col, recency_col, t_col, monetary_col)
    step = _PERIODS_PER_MONTH[time_unit]
    months = int(months)
    horizons = [step * i for i in range(1, months + 1)]
    # Month i's purchases are E(i) - E(i-1), discounted by (1+d)^-i; summed over the months
    # that is E(i) weighted by (1+d)^-i - (1+d)^-(i+1) (the last month: (1+d)^-months).
    discount = (1.0 + rate) ** -np.arange(1, months + 1, dtype=float)
    weights = np.zeros((2, months))
    weights[0] = discount - np.append(discount[1:], 0.0)
    weights[1, -1] = 1.0  # and the undiscounted total over the horizon
    alive = model.p_alive(purchase_fit.values, x, t_x, age)
    discounted, total = model.cumulative_expected_purchases(
        purchase_fit.values, horizons, x, t_x, age, combine=weights, alive=alive
    )
    spend = gamma_gamma.conditional_expected_spend(spend_fit.values, x, m)
    columns: dict[str, object] = {}
    if member_col is not None:
        _require(summary, member_col)
        columns[member_col] = summary[member_col]
    columns["p_alive"] = alive
    columns["expected_purchases"] = total
    columns["expected_spend"] = spend
    columns["clv"] = margin * spend * discounted
    return pl.DataFrame(columns)


def holdout_comparison(
    fit: FitResult,
    summary: pl.DataFrame,
    *,
    max_frequency: int = 7,
    frequency_col: str = "frequency",
    recency_col: str = "recency",
    t_col: str = "T",
    holdout_col: str = "frequency_holdout",
    duration_col: str = "duration_holdout",
) -> pl.DataFrame:
    """Forecast against actual repeat purchases in the holdout period.

    One row per calibration frequency ``0, 1, ..., max_frequency-1`` and
    ``"{max_frequency}+"`` (FHL 2005, figure 4), then ``"all"``: the number of customers,
    the mean actual and forecast (conditional expectation over ``duration_holdout``)
    purchases, and their totals. Needs a summary made with ``observation_end``.
    """
    _require(summary, frequency_col, recency_col, t_col, holdout_col, duration_col)
    model = _model(fit)
    x, t_x, age = _arrays(summary, frequency_col, recency_col, t_col)
    duration = float(summary[duration_col].max() or 0.0)
    forecast = model.conditional_expected_purchases(fit.values, duration, x, t_x, age)
    frame = pl.DataFrame(
        {
            "bucket": np.minimum(x, max_frequency).astype(np.int64),
            "actual": summary[holdout_col].cast(pl.Float64),
            "forecast": forecast,
        }
    )
    aggregations = [
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("actual").mean().alias("actual_mean"),
        pl.col("forecast").mean().alias("forecast_mean"),
        pl.col("actual").sum().alias("actual_total"),
        pl.col("forecast").sum().alias("forecast_total"),
    ]
    by_frequency = (
        frame.group_by("bucket")
        .agg(aggregations)
        .sort("bucket")
        .with_columns(
            pl.when(pl.col("bucket") >= max_frequency)
            .then(pl.format("{}+", pl.col("bucket")))
            .otherwise(pl.col("bucket").cast(pl.String))
            .alias("frequency")
        )
        .drop("bucket")
    )
    overall = frame.select(aggregations).with_columns(pl.lit("all").alias("frequency"))
    columns = [
        "frequency",
        "customers",
        "actual_mean",
        "forecast_mean",
        "actual_total",
        "forecast_total",
    ]
    return pl.concat([by_frequency.select(columns), overall.select(columns)])
