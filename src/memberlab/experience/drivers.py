"""What drives NPS, which complaints make detractors, and what a point of NPS is worth.

**Relative weights** (Johnson 2000, *Multivariate Behavioral Research* 35(1)). Ratings of a
visit's attributes (speed, staff, ...) are correlated, so regression coefficients split
their shared effect arbitrarily and can even take the wrong sign. Johnson replaces the
standardised predictors ``X`` by their closest orthogonal counterpart ``Z`` (from the
singular value decomposition ``X = P D Q'``, ``Z = P Q'``), regresses ``y`` on ``Z`` and
hands each ``Z`` column's share back to the ``X`` columns in proportion to how much they
make it up. With correlation matrices only::

    Lambda = R_xx^(1/2)              (X on Z: symmetric, columns of unit length)
    beta   = R_xx^(-1/2) r_xy        (y on Z)
    eps_j  = sum_k Lambda_jk^2 beta_k^2

The raw weights ``eps_j`` are non-negative and sum to the R^2 of the linear regression of
``y`` on all the ratings; ``eps_j / R^2`` is attribute ``j``'s share of what the ratings
explain. With uncorrelated ratings ``eps_j`` is the squared correlation ``r_jy^2``.

*Missing ratings.* Survey tools ask each attribute only where it makes sense (no
cleanliness question after a delivery), so the missing pattern is by design, not at
random. The analysis runs per group (``by``, the touchpoint by default): within a group
the attributes asked in at least ``min_asked`` of the answers are used and the answers
that rate all of them (complete cases) are analysed. Pooling touchpoints would either
keep only the few attributes asked everywhere or impute answers to questions never put.

*Intervals.* Percentile intervals from the nonparametric bootstrap (Efron and Tibshirani
1993; for relative weights, Tonidandel, LeBreton and Johnson 2009). Ratings and NPS are
small integers, so a million answers hold at most tens of thousands of distinct patterns:
the data are reduced to the patterns and their counts, and a bootstrap resample of the
answers is a
multinomial draw of counts over the patterns (exactly the distribution of resampling
answers with replacement). Each resample's correlation matrix comes from weighted sums
(one matrix product per batch of resamples) and the weights of all resamples from one
batched eigendecomposition: no Python loop over answers or resamples. With tens of
thousands of answers and patterns the multinomial draws themselves dominate; there the
resampled moments are drawn from their normal limit instead (``_bootstrap``).

**Aspects behind detractors** (``aspect_drivers``): among the answers with a comment, the
share of detractors (NPS 0-6) when an aspect is mentioned negatively against when it is
not, their ratio (lift), the *excess detractors* ``n_mentioned * (rate_mentioned -
rate_others)`` (detractors more than the rest's rate would give: volume and strength in
one figure, used to rank), a two-sided test of equal rates (pooled two-proportion z test;
Fisher's exact test when an expected cell count is below 5, Cochran's rule) and
Benjamini-Hochberg q-values, since many aspects are tested at once.

**What experience is worth** (``experience_value``): promoters, passives and detractors
compared on what they did *after* answering: the share buying again within
``window_days``, net spend in that window (purchases minus returns) and the share not
buying within ``churn_days``. One point of NPS is 1 % of members moving one category up;
from detractor to passive it is worth ``spend_passive - spend_detractor`` each, from
passive to promoter ``spend_promoter - spend_passive``; taking the two ways equally,
one point is worth::

    value_per_point = members * (spend_promoter - spend_detractor) / 200

per ``window_days`` (equivalently: 0.5 % of members turned from detractors into
promoters, which moves NPS by one point). Its interval uses the Welch standard error of
the difference of the two means. Associational, not causal: promoters may spend more for
reasons that also make them promoters, and frequent buyers, who meet more incidents, may
be detractors who spend more.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import t

if TYPE_CHECKING:
    from memberlab.experience.text.aspects import Lexicon

__all__ = [
    "DEFAULT_RESAMPLES",
    "MIN_ANSWERS",
    "RATING_PREFIX",
    "SEGMENTS",
    "DriverWeights",
    "ExperienceValue",
    "RelativeWeights",
    "answer_outcomes",
    "aspect_drivers",
    "aspect_names",
    "commented",
    "display_name",
    "driver_weights",
    "experience_value",
    "negative_mentions",
    "nps_segment",
    "relative_weights",
    "require_columns",
]

RATING_PREFIX = "rating_"
MIN_ANSWERS = 30  # fewer complete answers than this and the weights are noise
DEFAULT_RESAMPLES = 1000
SEGMENTS = ("promoter", "passive", "detractor")
# Bootstrap counts held in memory at once (resamples x distinct patterns), about 32 MB.
_BATCH_CELLS = 4_000_000
# Past this many resampled counts (resamples x patterns) and this many answers, the resampled
# moments are drawn from their normal limit instead (see ``_bootstrap``).
_EXACT_CELLS = 4_000_000
_NORMAL_MIN_ANSWERS = 20_000
# Smallest eigenvalue of the ratings' correlation matrix, relative to the largest, below
# which two ratings are taken as one (their weights cannot be told apart).
_COLLINEAR = 1e-10


def _invalid(loc: str, key: str, **params: Any) -> InvalidInput:
    return InvalidInput(errors=[FieldError(loc, key, params)])


def require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            errors=[
                FieldError(
                    f"{what}.{c}",
                    "experience.text.missing_column",
                    {"column": c, "columns": ", ".join(frame.columns)},
                )
                for c in missing
            ]
        )


def _check_options(resamples: int, confidence: float) -> None:
    if resamples < 0:
        raise _invalid("resamples", "experience.drivers.resamples", value=resamples)
    if not 0 < confidence < 1:
        raise _invalid("confidence", "experience.drivers.confidence", value=confidence)


def display_name(kind: str, code: str, language: str) -> str:
    """The name of a touchpoint, attribute or segment from the catalogs (the code when the
    catalogs do not know it)."""
    key = f"experience.{kind}.{code}"
    text = t(key, "en" if language.startswith("en") else "zh-CN")
    return code if text == key else text


# --- relative weights: the numpy core ----------------------------------------------------


@dataclass(frozen=True)
class RelativeWeights:
    """Johnson's relative weights of ``names`` on one outcome, with bootstrap intervals.

    ``weights`` sum to ``r2``; ``shares`` (``weights / r2``) sum to 1. Intervals are
    percentile intervals at ``confidence`` over ``resamples`` resamples (NaN without any;
    a resample where a rating happens to be constant is dropped from the count).
    """

    names: tuple[str, ...]
    n: int
    r2: float
    r2_low: float
    r2_high: float
    weights: np.ndarray
    weights_low: np.ndarray
    weights_high: np.ndarray
    shares: np.ndarray
    shares_low: np.ndarray
    shares_high: np.ndarray
    resamples: int
    method: str  # of the bootstrap: "multinomial", "normal" or "none"
    confidence: float

    def table(self) -> pl.DataFrame:
        """One row per rating, largest share first, with its rank (1 = largest)."""
        order = np.argsort(-self.shares, kind="stable")
        ranks = np.empty(len(order), dtype=np.int64)
        ranks[order] = np.arange(1, len(order) + 1)
        return pl.DataFrame(
            {
                "name": list(self.names),
                "n": [self.n] * len(self.names),
                "r2": [self.r2] * len(self.names),
                "r2_low": [self.r2_low] * len(self.names),
                "r2_high": [self.r2_high] * len(self.names),
                "weight": self.weights,
                "weight_low": self.weights_low,
                "weight_high": self.weights_high,
                "share": self.shares,
                "share_low": self.shares_low,
                "share_high": self.shares_high,
                "rank": ranks,
            }
        ).sort("rank")


def _johnson(correlations: np.ndarray) -> np.ndarray:
    """Raw relative weights for a stack of correlation matrices ``(b, p + 1, p + 1)``
    whose last variable is the outcome; rows whose ratings' matrix is singular are NaN."""
    rxx = correlations[:, :-1, :-1]
    rxy = correlations[:, :-1, -1]
    values, vectors = np.linalg.eigh(rxx)
    singular = ~(values[:, 0] > _COLLINEAR * values[:, -1])
    root = np.sqrt(np.clip(values, 0.0, None))
    half = (vectors * root[:, None, :]) @ vectors.transpose(0, 2, 1)  # R_xx^(1/2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rotated = np.einsum("bji,bj->bi", vectors, rxy) / root
    beta = np.einsum("bij,bj->bi", vectors, rotated)  # R_xx^(-1/2) r_xy
    weights = np.einsum("bij,bj->bi", half**2, beta**2)
    weights[singular] = np.nan
    return weights


def _correlations(moments: np.ndarray, q: int) -> np.ndarray:
    """Correlation matrices from rows of moments: ``q`` means, then the ``q * q`` mean
    cross products (of data centred on the full sample's mean, for accuracy). Zero
    variance gives NaN entries."""
    means = moments[:, :q]
    second = moments[:, q:].reshape(-1, q, q)
    cov = second - means[:, :, None] * means[:, None, :]
    sd = np.sqrt(np.clip(np.einsum("bii->bi", cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / (sd[:, :, None] * sd[:, None, :])


def _bootstrap(
    features: np.ndarray, counts: np.ndarray, q: int, resamples: int, seed: int
) -> tuple[np.ndarray, str]:
    """Raw weights of ``resamples`` bootstrap resamples, and the method used.

    Exact ("multinomial"): a resample of the ``n`` answers is a multinomial draw of counts
    over the patterns; its moments are one matrix product. When that would take more than
    ``_EXACT_CELLS`` counts and there are at least ``_NORMAL_MIN_ANSWERS`` answers
    ("normal"), the resampled mean moments are drawn from their normal limit, the
    multinomial's mean and covariance over ``n`` (central limit theorem; a Monte Carlo
    delta method, first-order equivalent to the percentile bootstrap): answers are bounded
    ratings and ``n`` is in the tens of thousands, so the two give the same intervals at a
    fraction of the cost.
    """
    rng = np.random.default_rng(seed)
    n = int(counts.sum())
    pvals = counts / n
    if resamples * len(counts) > _EXACT_CELLS and n >= _NORMAL_MIN_ANSWERS:
        mean = pvals @ features
        cov = (features * pvals[:, None]).T @ features - np.outer(mean, mean)
        values, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
        moments = mean + rng.standard_normal((resamples, len(mean))) @ root.T / np.sqrt(n)
        return _johnson(_correlations(moments, q)), "normal"
    batch = max(1, _BATCH_CELLS // len(counts))
    draws: list[np.ndarray] = []
    for start in range(0, resamples, batch):
        drawn = rng.multinomial(n, pvals, size=min(batch, resamples - start))
        moments = (drawn @ features) / n
        draws.append(_johnson(_correlations(moments, q)))
    return np.concatenate(draws), "multinomial"


def relative_weights(
    x: np.ndarray,
    y: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    counts: np.ndarray | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
    min_answers: int = MIN_ANSWERS,
    target: str = "nps",
) -> RelativeWeights:
    """Johnson's relative weights of the columns of ``x`` on ``y``, with bootstrap intervals.

    ``x`` is ``(n, p)`` and ``y`` ``(n,)``, without missing values. ``counts``, if given,
    says how many answers each row stands for (rows are then distinct patterns); without it
    equal rows are merged first. ``resamples=0`` skips the bootstrap. Raises
    ``InvalidInput`` for fewer than ``min_answers`` answers, a constant rating or outcome,
    and ratings that are exact linear combinations of each other; ``target`` names the
    outcome in those messages.
    """
    _check_options(resamples, confidence)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    names = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(x.shape[1]))
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise _invalid("x", "experience.drivers.shape", rows=x.shape[0], outcomes=y.shape[0])
    if len(names) != x.shape[1]:
        raise _invalid("names", "experience.drivers.names", names=len(names), columns=x.shape[1])
    if x.shape[1] == 0:
        raise _invalid("x", "experience.drivers.no_ratings", prefix=RATING_PREFIX)
    data = np.column_stack([x, y])
    if not np.isfinite(data).all():
        raise _invalid("x", "experience.drivers.not_finite")
    if counts is None:
        data, counts = np.unique(data, axis=0, return_counts=True)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (data.shape[0],) or (counts < 0).any():
        raise _invalid(
            "counts", "experience.drivers.counts", rows=data.shape[0], counts=counts.size
        )
    keep = counts > 0
    data, counts = data[keep], counts[keep]
    n = int(counts.sum())
    p = x.shape[1]
    if n < max(min_answers, p + 2):
        raise _invalid(target, "experience.drivers.too_few", n=n, minimum=max(min_answers, p + 2))

    q = data.shape[1]
    centred = data - np.average(data, axis=0, weights=counts)
    products = (centred[:, :, None] * centred[:, None, :]).reshape(len(counts), q * q)
    features = np.hstack([centred, products])
    full = _correlations((counts @ features)[None, :] / n, q)
    variances = np.average(centred**2, axis=0, weights=counts)
    scale = np.maximum(np.abs(data).max(axis=0), 1.0) ** 2
    flat = variances <= 1e-12 * scale
    if flat.any():
        columns = [*names, target]
        raise InvalidInput(
            errors=[
                FieldError(columns[j], "experience.drivers.constant", {"column": columns[j]})
                for j in np.flatnonzero(flat)
            ]
        )
    weights = _johnson(full)[0]
    if not np.isfinite(weights).all():
        raise _invalid("x", "experience.drivers.collinear", columns=", ".join(names))
    r2 = float(weights.sum())

    low = high = np.full(p, np.nan)
    share_low = share_high = np.full(p, np.nan)
    r2_low = r2_high = float("nan")
    used = 0
    method = "none"
    if resamples:
        boot, method = _bootstrap(features, counts, q, resamples, seed)
        boot = boot[np.isfinite(boot).all(axis=1)]  # a rating constant in a resample
        used = boot.shape[0]
        if used:
            alpha = (1 - confidence) / 2
            quantiles = (alpha, 1 - alpha)
            low, high = np.quantile(boot, quantiles, axis=0)
            totals = boot.sum(axis=1)
            share_low, share_high = np.quantile(boot / totals[:, None], quantiles, axis=0)
            r2_low, r2_high = (float(v) for v in np.quantile(totals, quantiles))
    return RelativeWeights(
        names=names,
        n=n,
        r2=r2,
        r2_low=r2_low,
        r2_high=r2_high,
        weights=weights,
        weights_low=low,
        weights_high=high,
        shares=weights / r2 if r2 > 0 else np.full(p, np.nan),
        shares_low=share_low,
        shares_high=share_high,
        resamples=used,
        method=method,
        confidence=confidence,
    )


# --- relative weights on survey answers ---------------------------------------------------


@dataclass(frozen=True)
class DriverWeights:
    """Relative weights per group; ``skipped`` says which groups could not be analysed
    and why (each a ``FieldError`` whose ``loc`` names the group)."""

    table: pl.DataFrame
    skipped: tuple[FieldError, ...]


def driver_weights(
    responses: pl.DataFrame,
    *,
    target: str = "nps",
    ratings: Sequence[str] | None = None,
    by: str | None = "touchpoint",
    min_asked: float = 0.5,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
    min_answers: int = MIN_ANSWERS,
) -> DriverWeights:
    """Relative weights of the attribute ratings on ``target`` per ``by`` group.

    ``ratings`` defaults to the columns starting with ``rating_``. In each group the
    ratings answered in at least ``min_asked`` of the group's answers are used, on the
    answers that rate all of them (see the module notes). A group that cannot be analysed
    (too few answers, a constant rating, ...) is left out and listed in ``skipped``; with
    ``by=None``, or when no group can be analysed, the problem is raised instead.

    Table columns: the ``by`` column, attribute (the rating without its prefix), name_zh,
    name_en, n, r2 (with r2_low, r2_high), weight (raw, with weight_low, weight_high),
    share (of R^2, with share_low, share_high) and rank within the group (1 = largest).
    """
    _check_options(resamples, confidence)
    columns = list(ratings) if ratings is not None else _rating_columns(responses)
    require_columns(responses, [target, *([by] if by else []), *columns], "responses")
    if not columns:
        raise _invalid("ratings", "experience.drivers.no_ratings", prefix=RATING_PREFIX)
    answered = responses.filter(pl.col(target).is_not_null())
    if by is None:
        groups: list[tuple[Any, pl.DataFrame]] = [(None, answered)]
    else:
        answered = answered.filter(pl.col(by).is_not_null())
        groups = sorted(
            ((key[0], frame) for key, frame in answered.group_by(by)), key=lambda g: str(g[0])
        )
    tables: list[pl.DataFrame] = []
    skipped: list[FieldError] = []
    for key, frame in groups:
        try:
            result = _group_weights(
                frame, key, columns, target, min_asked, resamples, confidence, seed, min_answers
            )
        except InvalidInput as exc:
            if by is None:
                raise
            skipped.extend(FieldError(f"{by}={key}: {e.loc}", e.key, e.params) for e in exc.errors)
            continue
        table = result.table().rename({"name": "attribute"})
        attributes = table.get_column("attribute").to_list()
        table = table.with_columns(
            pl.Series("name_zh", [display_name("attribute", a, "zh") for a in attributes]),
            pl.Series("name_en", [display_name("attribute", a, "en") for a in attributes]),
        )
        if by is not None:
            table = table.with_columns(pl.lit(key, dtype=answered.schema[by]).alias(by))
        tables.append(table)
    if not tables:
        if not skipped:
            skipped.append(
                FieldError(target, "experience.drivers.too_few", {"n": 0, "minimum": min_answers})
            )
        raise InvalidInput(errors=skipped)
    order = [
        *([by] if by else []),
        "attribute",
        "name_zh",
        "name_en",
        "n",
        "r2",
        "r2_low",
        "r2_high",
        "weight",
        "weight_low",
        "weight_high",
        "share",
        "share_low",
        "share_high",
        "rank",
    ]
    return DriverWeights(pl.concat(tables).select(order), tuple(skipped))


def _rating_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(RATING_PREFIX)]


def _group_weights(
    frame: pl.DataFrame,
    key: Any,
    columns: list[str],
    target: str,
    min_asked: float,
    resamples: int,
    confidence: float,
    seed: int,
    min_answers: int,
) -> RelativeWeights:
    if frame.height == 0:
        raise _invalid(target, "experience.drivers.too_few", n=0, minimum=min_answers)
    asked_share = frame.select(pl.col(columns).is_not_null().mean()).row(0)
    asked = [c for c, share in zip(columns, asked_share, strict=True) if share >= min_asked]
    if not asked:
        raise _invalid("ratings", "experience.drivers.none_asked", share=f"{min_asked:.0%}")
    # distinct (ratings, outcome) patterns and how many answers each stands for
    patterns = (
        frame.select([*asked, target])
        .drop_nulls()
        .group_by([*asked, target])
        .len()
        .sort([*asked, target])
    )
    data = patterns.select(pl.col([*asked, target]).cast(pl.Float64)).to_numpy()
    group_seed = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(str(key).encode()),))
    return relative_weights(
        data[:, :-1],
        data[:, -1],
        names=[c.removeprefix(RATING_PREFIX) for c in asked],
        counts=patterns.get_column("len").to_numpy(),
        resamples=resamples,
        confidence=confidence,
        seed=int(group_seed.generate_state(1)[0]),
        min_answers=min_answers,
        target=target,
    )


# --- aspects of comments behind detractors -------------------------------------------------


def nps_segment(nps: pl.Expr) -> pl.Expr:
    """promoter (9-10), passive (7-8) or detractor (0-6); null when not answered."""
    return (
        pl.when(nps >= 9)
        .then(pl.lit("promoter"))
        .when(nps >= 7)
        .then(pl.lit("passive"))
        .when(nps.is_not_null())
        .then(pl.lit("detractor"))
    )


def negative_mentions(aspects: pl.DataFrame) -> pl.Expr:
    """Whether a row of an aspect table (``comment_table``) is a complaint: its ``label``
    is negative, or without labels its ``sentiment`` is below ``NEGATIVE_BELOW``."""
    if "label" in aspects.columns:
        return pl.col("label") == "negative"
    if "sentiment" in aspects.columns:
        from memberlab.experience.text.sentiment import NEGATIVE_BELOW

        return pl.col("sentiment") < NEGATIVE_BELOW
    raise InvalidInput(
        errors=[
            FieldError(
                "aspects.label",
                "experience.text.missing_column",
                {"column": "label", "columns": ", ".join(aspects.columns)},
            )
        ]
    )


def commented(responses: pl.DataFrame) -> pl.DataFrame:
    """The answers with a non-empty comment (all of them when there is no comment column)."""
    if "comment" not in responses.columns:
        return responses
    return responses.filter(pl.col("comment").str.strip_chars().str.len_chars() > 0)


def _two_proportion_p(a: int, n1: int, c: int, n0: int) -> float:
    """Two-sided p-value of equal rates a/n1 and c/n0: pooled z test, or Fisher's exact
    test when an expected count is below 5."""
    if n1 == 0 or n0 == 0:
        return float("nan")
    total, hits = n1 + n0, a + c
    expected = np.array([n1 * hits, n1 * (total - hits), n0 * hits, n0 * (total - hits)]) / total
    if expected.min() < 5:
        return float(stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue)
    pooled = hits / total
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return float(2 * stats.norm.sf(abs(a / n1 - c / n0) / se)) if se > 0 else 1.0


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (q-values); NaN stays NaN."""
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return q
    order = ok[np.argsort(p[ok])]
    ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def aspect_drivers(
    responses: pl.DataFrame,
    aspects: pl.DataFrame,
    *,
    negative_only: bool = True,
    commented_only: bool = True,
    confidence: float = 0.95,
    lexicon: Lexicon | None = None,
) -> pl.DataFrame:
    """Which aspects of comments go with detractors, ranked by excess detractors.

    ``responses`` needs response_id and nps (and comment for ``commented_only``: answers
    without a comment say nothing about what they would have mentioned, so by default they
    are not counted as "not mentioned"). ``aspects`` has one row per (response, aspect),
    as ``comment_table`` makes, with label or sentiment. A mention counts when negative
    (any mention with ``negative_only=False``).

    Columns: aspect, name_zh, name_en, mentioned (answers), detractors_mentioned,
    rate_mentioned, rate_others, lift (rate ratio), difference (percentage points),
    excess_detractors, p_value, q_value (Benjamini-Hochberg), significant (q below
    1 - ``confidence``) and rank.
    """
    _check_options(0, confidence)
    require_columns(responses, ["response_id", "nps"], "responses")
    require_columns(aspects, ["response_id", "aspect"], "aspects")
    base = responses.filter(pl.col("nps").is_not_null())
    if commented_only:
        base = commented(base)
    base = base.select(
        pl.col("response_id").cast(pl.String),
        (pl.col("nps") <= 6).alias("detractor"),
    ).unique("response_id", keep="first")
    total, detractors = base.height, int(base.get_column("detractor").sum())
    if total == 0:
        raise _invalid("responses", "experience.drivers.too_few", n=0, minimum=1)
    mentions = aspects.with_columns(pl.col("response_id").cast(pl.String))
    if negative_only:
        mentions = mentions.filter(negative_mentions(aspects))
    counts = (
        mentions.select("response_id", "aspect")
        .unique()
        .join(base, on="response_id", how="inner")
        .group_by("aspect")
        .agg(
            pl.len().cast(pl.Int64).alias("mentioned"),
            pl.col("detractor").sum().cast(pl.Int64).alias("detractors_mentioned"),
        )
        .sort("aspect")
    )
    n1 = counts.get_column("mentioned").to_numpy()
    a = counts.get_column("detractors_mentioned").to_numpy()
    n0, c = total - n1, detractors - a
    with np.errstate(divide="ignore", invalid="ignore"):
        rate1 = a / n1
        rate0 = np.where(n0 > 0, c / np.maximum(n0, 1), np.nan)
        lift = np.where(rate0 > 0, rate1 / rate0, np.nan)
    p_values = np.array(
        [
            _two_proportion_p(int(hits), int(size), int(rest_hits), int(rest))
            for hits, size, rest_hits, rest in zip(a, n1, c, n0, strict=True)
        ],
        dtype=np.float64,
    )
    q_values = _benjamini_hochberg(p_values)
    names = aspect_names(counts.get_column("aspect").to_list(), lexicon)
    table = counts.with_columns(
        pl.Series("name_zh", [z for z, _ in names], dtype=pl.String),
        pl.Series("name_en", [e for _, e in names], dtype=pl.String),
        pl.Series("rate_mentioned", rate1, dtype=pl.Float64),
        pl.Series("rate_others", rate0, dtype=pl.Float64),
        pl.Series("lift", lift, dtype=pl.Float64),
        pl.Series("difference", 100 * (rate1 - rate0), dtype=pl.Float64),
        pl.Series("excess_detractors", n1 * (rate1 - rate0), dtype=pl.Float64),
        pl.Series("p_value", p_values, dtype=pl.Float64),
        pl.Series("q_value", q_values, dtype=pl.Float64),
    ).with_columns(
        pl.col(
            ["rate_others", "lift", "difference", "excess_detractors", "p_value", "q_value"]
        ).fill_nan(None),
    )
    table = table.with_columns(
        (pl.col("q_value") < 1 - confidence).fill_null(False).alias("significant")
    ).sort(["excess_detractors", "aspect"], descending=[True, False], nulls_last=True)
    return table.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank")).select(
        "aspect",
        "name_zh",
        "name_en",
        "mentioned",
        "detractors_mentioned",
        "rate_mentioned",
        "rate_others",
        "lift",
        "difference",
        "excess_detractors",
        "p_value",
        "q_value",
        "significant",
        "rank",
    )


def aspect_names(codes: list[str], lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """(zh, en) names of aspects from the lexicon; an unknown code stands for itself."""
    from memberlab.experience.text.aspects import default_lexicon

    known = (lexicon or default_lexicon()).aspects
    return [(known[c].name_zh, known[c].name_en) if c in known else (c, c) for c in codes]


# --- what happened after an answer -------------------------------------------------------


def _zone(dtype: pl.DataType) -> str | None:
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _instant(column: str, dtype: pl.DataType, zone: str | None) -> pl.Expr:
    """Microseconds since the epoch. A date is its midnight; a time without a zone is
    read in ``zone`` (the other frame's), so the two frames line up."""
    if not isinstance(dtype, pl.Datetime | pl.Date):
        raise _invalid(column, "experience.value.not_a_time", column=column, dtype=str(dtype))
    expr = pl.col(column).cast(pl.Datetime("us"))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = pl.col(column).dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
    elif zone is not None:
        expr = expr.dt.replace_time_zone(zone).dt.convert_time_zone("UTC")
    return expr.dt.epoch("us")


def _as_of_us(as_of: datetime | date | None, zone: str | None) -> int | None:
    if as_of is None:
        return None
    frame = pl.DataFrame({"as_of": [as_of]})
    return int(frame.select(_instant("as_of", frame.schema["as_of"], zone)).item())


def answer_outcomes(
    responses: pl.DataFrame,
    transactions: pl.DataFrame,
    *,
    days: Sequence[int],
    as_of: datetime | date | None = None,
    time_col: str = "responded_at",
) -> pl.DataFrame:
    """For each answer, what its member did in the ``d`` days after it, for each ``d``.

    Adds ``bought_<d>`` (a purchase after the answer and at most ``d`` days later),
    ``spend_<d>`` (purchases minus returns in that window; rows with ``kind`` "return" count
    negative, when there is a ``kind`` column) and ``complete`` (the longest window ends
    by ``as_of``, default the last transaction: later answers cannot be judged yet and
    their outcomes are null). Times are compared to the second.

    How: every transaction gets the key ``member code * span + seconds since the first
    moment`` (``span`` longer than the whole history), so one sort orders them by member,
    then time, and cumulative sums of money and purchases along it give, by a binary
    search, what a member had spent and bought up to any moment; a window is the
    difference of two such reads. The key of a window's end stays within the member's
    range, so no per-member loop or join is needed.
    """
    for d in days:
        if int(d) != d or d < 1:
            raise _invalid("days", "experience.value.days", value=d)
    require_columns(responses, ["member_id", time_col], "responses")
    require_columns(transactions, ["member_id", "occurred_at", "amount"], "transactions")
    r_type, t_type = responses.schema[time_col], transactions.schema["occurred_at"]
    r_zone, t_zone = _zone(r_type), _zone(t_type)
    kind = pl.col("kind") if "kind" in transactions.columns else pl.lit("purchase")
    moves = transactions.select(
        (_instant("occurred_at", t_type, r_zone) // 1_000_000).alias("t"),
        pl.when(kind == "return")
        .then(-pl.col("amount").cast(pl.Float64))
        .otherwise(pl.col("amount").cast(pl.Float64))
        .fill_null(0.0)
        .alias("amount"),
        (kind != "return").fill_null(True).cast(pl.Int64).alias("purchase"),
    )
    answered = responses.select((_instant(time_col, r_type, t_zone) // 1_000_000).alias("t"))
    # one code per member across both frames (one categorical cast of their ids together)
    ids = pl.concat(
        [
            transactions.get_column("member_id").cast(pl.String),
            responses.get_column("member_id").cast(pl.String),
        ]
    )
    codes = ids.cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()
    n_moves = transactions.height
    move_code, answer_code = codes[:n_moves], codes[n_moves:]
    move_t = moves.get_column("t").fill_null(0).to_numpy()
    answer_t = answered.get_column("t").fill_null(0).to_numpy()
    known = (move_code >= 0) & moves.get_column("t").is_not_null().to_numpy()
    answer_known = (answer_code >= 0) & answered.get_column("t").is_not_null().to_numpy()

    longest = max(int(d) for d in days) * 86_400
    if as_of is not None:
        last = _as_of_us(as_of, t_zone or r_zone) // 1_000_000
    else:
        last = int(move_t[known].max()) if known.any() else None
    complete = answer_known & (answer_t + longest <= last if last is not None else False)
    out: dict[str, Any] = {"complete": complete}
    if known.any() and answer_known.any():
        first = int(min(move_t[known].min(), answer_t[answer_known].min()))
        span = int(max(move_t[known].max(), answer_t[answer_known].max() + longest)) - first + 1
        if (int(codes.max()) + 1) * span >= 2**62:  # codes from a huge category cache
            codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
            move_code, answer_code = codes[:n_moves], codes[n_moves:]
        move_key = move_code[known] * span + (move_t[known] - first)
        order = np.argsort(move_key, kind="stable")
        move_key = move_key[order]
        spent = np.cumsum(moves.get_column("amount").to_numpy()[known][order])
        bought = np.cumsum(moves.get_column("purchase").to_numpy()[known][order])
        base = answer_code * span + (answer_t - first)

        def read(offset: int) -> tuple[np.ndarray, np.ndarray]:
            """Cumulative spend and purchases up to ``offset`` seconds after each answer."""
            at = np.searchsorted(move_key, base + offset, side="right") - 1
            inside = at >= 0
            safe = np.maximum(at, 0)
            return np.where(inside, spent[safe], 0.0), np.where(inside, bought[safe], 0)

        spent_0, bought_0 = read(0)
        for d in days:
            spent_d, bought_d = read(int(d) * 86_400)
            out[f"bought_{d}"] = np.where(complete, bought_d > bought_0, False)
            out[f"spend_{d}"] = spent_d - spent_0
    else:
        for d in days:
            out[f"bought_{d}"] = np.zeros(len(answer_t), dtype=bool)
            out[f"spend_{d}"] = np.zeros(len(answer_t))
    columns = [pl.Series("complete", complete, dtype=pl.Boolean)]
    for d in days:
        columns += [
            pl.Series(f"bought_{d}", out[f"bought_{d}"], dtype=pl.Boolean),
            pl.Series(f"spend_{d}", out[f"spend_{d}"], dtype=pl.Float64),
        ]
    frame = pl.DataFrame(columns)
    nulls = [
        pl.when(pl.col("complete")).then(pl.col(c)).alias(c)
        for c in frame.columns
        if c != "complete"
    ]
    return responses.with_columns(frame.with_columns(nulls).get_columns())


# --- what experience is worth ------------------------------------------------------------


@dataclass(frozen=True)
class ExperienceValue:
    """Promoters, passives and detractors after their answer, and the worth of a point.

    ``table``: segment, name_zh, name_en, members, repeat_rate, spend (mean per member in
    the window), spend_sd, churn_rate. ``value_per_point`` (with ``low`` and ``high`` at
    ``confidence``) is money per ``window_days`` for ``members`` members; None when there
    are no promoters or no detractors to compare.
    """

    table: pl.DataFrame
    members: int
    window_days: int
    churn_days: int
    answers: int
    spend_gap: float | None
    value_per_point: float | None
    low: float | None
    high: float | None
    confidence: float


def experience_value(
    responses: pl.DataFrame,
    transactions: pl.DataFrame,
    *,
    window_days: int = 90,
    churn_days: int = 180,
    as_of: datetime | date | None = None,
    members: int | None = None,
    confidence: float = 0.95,
) -> ExperienceValue:
    """What promoters, passives and detractors did after answering, and what one NPS
    point is worth (see the module notes for the formula).

    Each member counts once, with their latest answer whose windows have ended by
    ``as_of`` (answers of one member are not independent). ``members`` is the base a point
    of NPS is spread over: default, the members with a purchase in ``transactions``.
    """
    _check_options(0, confidence)
    for name, value in (("window_days", window_days), ("churn_days", churn_days)):
        if int(value) != value or value < 1:
            raise _invalid(name, "experience.value.days", value=value)
    require_columns(responses, ["member_id", "responded_at", "nps"], "responses")
    outcomes = answer_outcomes(
        responses.filter(pl.col("nps").is_not_null() & pl.col("member_id").is_not_null()),
        transactions,
        days=sorted({window_days, churn_days}),
        as_of=as_of,
    )
    latest = (
        outcomes.filter(pl.col("complete"))
        .sort("responded_at")
        .group_by("member_id")
        .last()
        .with_columns(nps_segment(pl.col("nps")).alias("segment"))
    )
    if latest.height == 0:
        raise _invalid(
            "responses", "experience.value.no_answers", days=max(window_days, churn_days)
        )
    stats_ = latest.group_by("segment").agg(
        pl.len().cast(pl.Int64).alias("members"),
        pl.col(f"bought_{window_days}").mean().alias("repeat_rate"),
        pl.col(f"spend_{window_days}").mean().alias("spend"),
        pl.col(f"spend_{window_days}").std().alias("spend_sd"),
        (~pl.col(f"bought_{churn_days}")).mean().alias("churn_rate"),
    )
    table = (
        pl.DataFrame({"segment": list(SEGMENTS)})
        .join(stats_, on="segment", how="left")
        .with_columns(
            pl.col("members").fill_null(0),
            pl.Series("name_zh", [display_name("segment", s, "zh") for s in SEGMENTS]),
            pl.Series("name_en", [display_name("segment", s, "en") for s in SEGMENTS]),
        )
        .select(
            "segment",
            "name_zh",
            "name_en",
            "members",
            "repeat_rate",
            "spend",
            "spend_sd",
            "churn_rate",
        )
    )
    if members is None:
        buyers = transactions
        if "kind" in transactions.columns:
            buyers = buyers.filter(pl.col("kind") != "return")
        members = int(buyers.get_column("member_id").n_unique())
    rows = {row["segment"]: row for row in table.iter_rows(named=True)}
    promoters, detractors = rows["promoter"], rows["detractor"]
    gap = value = low = high = None
    if promoters["members"] and detractors["members"]:
        gap = float(promoters["spend"] - detractors["spend"])
        value = members * gap / 200
        variance = sum(
            (row["spend_sd"] or 0.0) ** 2 / row["members"] for row in (promoters, detractors)
        )
        half = (
            float(stats.norm.ppf(0.5 + confidence / 2)) * members * float(np.sqrt(variance)) / 200
        )
        low, high = value - half, value + half
    return ExperienceValue(
        table=table,
        members=members,
        window_days=window_days,
        churn_days=churn_days,
        answers=latest.height,
        spend_gap=gap,
        value_per_point=value,
        low=low,
        high=high,
        confidence=confidence,
    )
