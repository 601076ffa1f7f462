"""Experience scores with honest uncertainty: NPS, CSAT and CES, by any grouping.

- **NPS** (0-10; promoters 9-10, detractors 0-6): the score is ``%promoters - %detractors``
  (-100..100); its interval is the adjusted-Wald of Rocks (2016, *The American
  Statistician*), which MeasuringU found the best of the usual methods on real data: add
  3 to ``n`` and 3/4 to the promoters and to the detractors, then the Wald interval of a
  difference of two proportions from one multinomial sample.
- **CSAT** (1-5): top-2-box share (4 or 5), with the Wilson score interval.
- **CES** (1-7, "made it easy for me"): the mean, with a t interval.

A group with fewer than ``MIN_RESPONSES`` answers is flagged ``too_small``: its interval is
shown but it should not be judged. Changes between two periods come with a test: for NPS a
z test on the difference of the two adjusted estimates (independent samples), for CSAT the
two-proportion z test, for CES Welch's t test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

Metric = Literal["nps", "csat", "ces"]
METRICS: tuple[Metric, ...] = ("nps", "csat", "ces")
MIN_RESPONSES = 30  # below this a group is reported but flagged as too small to judge
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


# --- per group, vectorised ---------------------------------------------------------------------


def _counts(metric: Metric) -> list[pl.Expr]:
    value = pl.col(metric)
    if metric == "nps":
        return [
            value.count().alias("n"),
            (value >= 9).sum().cast(pl.Int64).alias("promoters"),
            (value <= 6).sum().cast(pl.Int64).alias("detractors"),
        ]
    if metric == "csat":
        return [value.count().alias("n"), (value >= 4).sum().cast(pl.Int64).alias("top2")]
    return [value.count().alias("n"), value.mean().alias("mean"), value.std().alias("sd")]


def _estimates(metric: Metric, z: float) -> list[pl.Expr]:
    n = pl.col("n").cast(pl.Float64)
    if metric == "nps":
        adjusted_n = n + 3
        p = (pl.col("promoters") + 0.75) / adjusted_n
        d = (pl.col("detractors") + 0.75) / adjusted_n
        half = z * ((p + d - (p - d) ** 2) / adjusted_n).sqrt()
        centre = p - d
        return [
            (100 * (pl.col("promoters") - pl.col("detractors")) / n).alias("value"),
            (100 * (centre - half)).clip(-100, 100).alias("low"),
            (100 * (centre + half)).clip(-100, 100).alias("high"),
            (100 * centre).alias("adjusted"),
            (100 * 100 * (p + d - (p - d) ** 2) / adjusted_n).alias("variance"),
        ]
    if metric == "csat":
        share = pl.col("top2") / n
        denominator = 1 + z**2 / n
        centre = (share + z**2 / (2 * n)) / denominator
        half = z * ((share * (1 - share) / n + z**2 / (4 * n**2)).sqrt()) / denominator
        return [
            (100 * share).alias("value"),
            (100 * (centre - half)).alias("low"),
            (100 * (centre + half)).alias("high"),
        ]
    # CES: mean with a t interval (the normal quantile is close enough above 30 answers; the
    # exact t quantile is applied per row below)
    return [pl.col("mean").alias("value")]


def score_table(
    responses: pl.DataFrame,
    metric: Metric,
    *,
    by: Sequence[str] = (),
    period: Literal["month", "quarter", "year"] | None = None,
    time_col: str = "responded_at",
    confidence: float = 0.95,
) -> pl.DataFrame:
    """One row per group (``by`` columns and, with ``period``, the period of ``time_col``):
    ``n``, ``value``, ``low``, ``high`` (the interval) and ``too_small``.

    Responses without an answer to ``metric`` are left out; NPS and CSAT are in points
    (-100..100 and 0..100), CES on its 1-7 scale.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}")
    keys = list(by)
    frame = responses.filter(pl.col(metric).is_not_null())
    if period is not None:
        every = {"month": "1mo", "quarter": "1q", "year": "1y"}[period]
        frame = frame.with_columns(pl.col(time_col).dt.truncate(every).dt.date().alias("period"))
        keys = ["period", *keys]
    grouped = frame.group_by(keys).agg(_counts(metric)) if keys else frame.select(_counts(metric))
    z = _z(confidence)
    table = grouped.with_columns(_estimates(metric, z))
    if metric == "ces":
        # one vectorised call: a Python call per group costs seconds on 60,000 groups
        freedom = np.maximum(table["n"].to_numpy().astype(float) - 1, 1)
        t = stats.t.ppf(0.5 + confidence / 2, freedom)
        half = (
            pl.Series("half", t)
            * table["sd"].fill_null(np.nan)
            / table["n"].cast(pl.Float64).sqrt()
        )
        table = table.with_columns(
            (pl.col("value") - half).alias("low"), (pl.col("value") + half).alias("high")
        )
    table = table.with_columns((pl.col("n") < MIN_RESPONSES).alias("too_small"))
    return table.sort(keys) if keys else table


# --- one sample, and two compared -------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    metric: Metric
    n: int
    value: float
    low: float
    high: float
    too_small: bool


def estimate(
    values: Sequence[float] | pl.Series, metric: Metric, confidence: float = 0.95
) -> Estimate:
    """The score of one sample of answers, with its interval."""
    frame = pl.DataFrame({metric: pl.Series(values, dtype=pl.Float64)})
    row = score_table(frame, metric, confidence=confidence).row(0, named=True)
    return Estimate(metric, int(row["n"]), row["value"], row["low"], row["high"], row["too_small"])


@dataclass(frozen=True)
class Change:
    """The change of a score from period A to period B and whether it is more than noise."""

    metric: Metric
    before: Estimate
    after: Estimate
    difference: float
    low: float
    high: float
    p_value: float
    significant: bool


def compare(
    before: Sequence[float] | pl.Series,
    after: Sequence[float] | pl.Series,
    metric: Metric,
    *,
    confidence: float = 0.95,
) -> Change:
    """Is the change from ``before`` to ``after`` (independent samples) significant?"""
    a = np.asarray(pl.Series(before, dtype=pl.Float64).drop_nulls().to_numpy())
    b = np.asarray(pl.Series(after, dtype=pl.Float64).drop_nulls().to_numpy())
    z = _z(confidence)
    if metric == "nps":
        variances, centres = [], []
        for sample in (a, b):
            n = len(sample) + 3
            p = ((sample >= 9).sum() + 0.75) / n
            d = ((sample <= 6).sum() + 0.75) / n
            centres.append(p - d)
            variances.append((p + d - (p - d) ** 2) / n)
        difference = 100 * (centres[1] - centres[0])
        se = 100 * float(np.sqrt(sum(variances)))
        p_value = float(2 * stats.norm.sf(abs(difference) / se)) if se > 0 else 1.0
    elif metric == "csat":
        ka, kb = (a >= 4).sum(), (b >= 4).sum()
        pa, pb = ka / len(a), kb / len(b)
        pooled = (ka + kb) / (len(a) + len(b))
        se_test = np.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
        difference = 100 * (pb - pa)
        se = 100 * float(np.sqrt(pa * (1 - pa) / len(a) + pb * (1 - pb) / len(b)))
        p_value = float(2 * stats.norm.sf(abs(pb - pa) / se_test)) if se_test > 0 else 1.0
    else:
        difference = float(b.mean() - a.mean())
        se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
        p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    return Change(
        metric,
        estimate(a, metric, confidence),
        estimate(b, metric, confidence),
        float(difference),
        float(difference - z * se),
        float(difference + z * se),
        p_value,
        p_value < 1 - confidence,
    )
