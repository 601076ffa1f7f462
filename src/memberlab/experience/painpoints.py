"""Pain points: which complaint, at which touchpoint, costs the most.

The diagnosis a consultant shows the client is a short ranked list: "delivery is late"
at delivery, "the queue" in the store, each with how often it comes up, how negative it
is, what it does to NPS and to repeat business, and what members actually wrote.

For each (touchpoint, aspect) with at least one negative mention, over the answers of
the touchpoint (with a comment, by default: see ``aspect_drivers``):

- **volume**: ``mentions`` (answers naming the aspect, in any tone) and ``negative``
  (naming it negatively); ``share_negative = negative / mentions``;
- **impact on NPS**: ``nps_gap = mean NPS of the touchpoint's other answers - mean NPS
  of the answers complaining about it`` (0-10 scale), and the detractor share of the
  complainers;
- **impact on churn** (with transactions): ``churn_gap = churn_negative -
  churn_others``, where churn is the share of answers after which the member did not buy
  again within ``churn_days`` (answers too recent to tell are left out of both);
- **score** (the rank): what the complaints cost, summed over the complaining answers,
  in "answers lost"::

      score = negative * (max(nps_gap, 0) / 10 + churn_weight * max(churn_gap, 0))
            = mentions * share_negative * impact

  ``nps_gap / 10`` is the NPS shortfall of one complaint as a share of the scale and
  ``churn_gap`` the extra chance of losing the member; both are per answer on a 0-1
  scale, so the sum weighs a lost member like a full-scale drop of the recommendation
  (``churn_weight`` changes that). Volume times impact, so a rare disaster and a common
  irritation are compared on what they cost in total, not on how bad one case is.
  ``score_per_answer = score / answers`` is the touchpoint's own view: the loss per
  answer there, which for one problem is its rate at the touchpoint times its impact
  (how bad delivery is for a delivery customer, however few use delivery).
  Pairs with fewer than ``min_negative`` complaints are flagged ``too_small`` and ranked
  after the others (their gaps are mostly noise).

Quotes are the most negative comments of each pair (lowest sentiment first, ties by
response id so the choice is the same on every run), distinct and cut to
``MAX_QUOTE_CHARS``.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.experience.drivers import (
    answer_outcomes,
    aspect_names,
    commented,
    display_name,
    negative_mentions,
    require_columns,
)
from memberlab.experience.text.aspects import MAX_QUOTE_CHARS, Lexicon

__all__ = ["DEFAULT_CHURN_DAYS", "MIN_NEGATIVE", "pain_points"]

DEFAULT_CHURN_DAYS = 90
MIN_NEGATIVE = 10  # fewer complaints than this and a pair is flagged too small to judge

_COLUMNS = [
    "rank",
    "touchpoint",
    "touchpoint_zh",
    "touchpoint_en",
    "aspect",
    "aspect_zh",
    "aspect_en",
    "answers",
    "mentions",
    "negative",
    "share_negative",
    "mean_nps_negative",
    "mean_nps_others",
    "nps_gap",
    "detractor_rate_negative",
    "churn_negative",
    "churn_others",
    "churn_gap",
    "score",
    "score_per_answer",
    "too_small",
    "quotes",
]


def pain_points(
    responses: pl.DataFrame,
    aspects: pl.DataFrame,
    transactions: pl.DataFrame | None = None,
    *,
    churn_days: int = DEFAULT_CHURN_DAYS,
    as_of: datetime | date | None = None,
    commented_only: bool = True,
    churn_weight: float = 1.0,
    min_negative: int = MIN_NEGATIVE,
    quotes: int = 3,
    lexicon: Lexicon | None = None,
) -> pl.DataFrame:
    """Touchpoint x aspect pain points, ranked by ``score`` (see the module notes).

    ``responses``: response_id, touchpoint, nps (and comment; member_id and responded_at
    when ``transactions`` are given). ``aspects``: one row per (response, aspect) with
    label or sentiment, as ``comment_table`` makes; its comment (or clause) column gives
    the quotes. ``transactions`` (member_id, occurred_at, amount, kind) add churn.

    Columns: rank, touchpoint (+ _zh, _en), aspect (+ _zh, _en), answers (the
    touchpoint's), mentions, negative, share_negative, mean_nps_negative,
    mean_nps_others, nps_gap, detractor_rate_negative, churn_negative, churn_others,
    churn_gap, score, score_per_answer, too_small, quotes.
    """
    if churn_days < 1 or int(churn_days) != churn_days:
        raise InvalidInput(
            errors=[FieldError("churn_days", "experience.value.days", {"value": churn_days})]
        )
    if churn_weight < 0:
        raise InvalidInput(
            errors=[
                FieldError("churn_weight", "experience.painpoints.weight", {"value": churn_weight})
            ]
        )
    require_columns(responses, ["response_id", "touchpoint", "nps"], "responses")
    require_columns(aspects, ["response_id", "aspect"], "aspects")
    base = responses.filter(pl.col("nps").is_not_null() & pl.col("touchpoint").is_not_null())
    if commented_only:
        base = commented(base)
    base = base.with_columns(pl.col("response_id").cast(pl.String)).unique(
        "response_id", keep="first", maintain_order=True
    )
    if transactions is not None:
        outcomes = answer_outcomes(base, transactions, days=[churn_days], as_of=as_of)
        base = base.with_columns(
            (~outcomes.get_column(f"bought_{churn_days}")).cast(pl.Float64).alias("_churned")
        )
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Float64).alias("_churned"))
    base = base.select(
        "response_id",
        pl.col("touchpoint").cast(pl.String),
        pl.col("nps").cast(pl.Float64).alias("_nps"),
        "_churned",
    )

    text = next((c for c in ("comment", "clause") if c in aspects.columns), None)
    rows = aspects.select(
        pl.col("response_id").cast(pl.String),
        pl.col("aspect").cast(pl.String),
        negative_mentions(aspects).fill_null(False).alias("_negative"),
        (pl.col("sentiment") if "sentiment" in aspects.columns else pl.lit(None))
        .cast(pl.Float64)
        .alias("_sentiment"),
        (pl.col(text) if text else pl.lit(None)).cast(pl.String).alias("_text"),
    ).join(base, on="response_id", how="inner")

    touchpoints = base.group_by("touchpoint").agg(
        pl.len().cast(pl.Int64).alias("answers"),
        pl.col("_nps").sum().alias("_nps_sum"),
        pl.col("_churned").count().cast(pl.Int64).alias("_churn_n"),
        pl.col("_churned").sum().alias("_churn_sum"),
    )
    mentions = (
        rows.group_by("touchpoint", "aspect", "response_id")
        .agg(pl.col("_negative").any())
        .group_by("touchpoint", "aspect")
        .agg(pl.len().cast(pl.Int64).alias("mentions"))
    )
    complaints = (
        rows.filter(pl.col("_negative"))
        .group_by("touchpoint", "aspect", "response_id")
        .agg(pl.col("_nps").first(), pl.col("_churned").first())
        .group_by("touchpoint", "aspect")
        .agg(
            pl.len().cast(pl.Int64).alias("negative"),
            pl.col("_nps").sum().alias("_neg_nps_sum"),
            (pl.col("_nps") <= 6).mean().alias("detractor_rate_negative"),
            pl.col("_churned").count().cast(pl.Int64).alias("_neg_churn_n"),
            pl.col("_churned").sum().alias("_neg_churn_sum"),
        )
    )
    others = pl.col("answers") - pl.col("negative")
    others_churn = pl.col("_churn_n") - pl.col("_neg_churn_n")
    table = (
        complaints.join(mentions, on=["touchpoint", "aspect"], how="left")
        .join(touchpoints, on="touchpoint", how="left")
        .with_columns(
            (pl.col("negative") / pl.col("mentions")).alias("share_negative"),
            (pl.col("_neg_nps_sum") / pl.col("negative")).alias("mean_nps_negative"),
            pl.when(others > 0)
            .then((pl.col("_nps_sum") - pl.col("_neg_nps_sum")) / others)
            .alias("mean_nps_others"),
            pl.when(pl.col("_neg_churn_n") > 0)
            .then(pl.col("_neg_churn_sum") / pl.col("_neg_churn_n"))
            .alias("churn_negative"),
            pl.when(others_churn > 0)
            .then((pl.col("_churn_sum") - pl.col("_neg_churn_sum")) / others_churn)
            .alias("churn_others"),
        )
        .with_columns(
            (pl.col("mean_nps_others") - pl.col("mean_nps_negative")).alias("nps_gap"),
            (pl.col("churn_negative") - pl.col("churn_others")).alias("churn_gap"),
        )
        .with_columns(
            (
                pl.col("negative")
                * (
                    pl.col("nps_gap").clip(lower_bound=0).fill_null(0) / 10
                    + churn_weight * pl.col("churn_gap").clip(lower_bound=0).fill_null(0)
                )
            ).alias("score"),
            (pl.col("negative") < min_negative).alias("too_small"),
        )
        .with_columns((pl.col("score") / pl.col("answers")).alias("score_per_answer"))
        .sort(
            ["too_small", "score", "touchpoint", "aspect"],
            descending=[False, True, False, False],
        )
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"))
    )
    table = table.join(_quotes(rows, quotes), on=["touchpoint", "aspect"], how="left")
    codes = table.get_column("touchpoint").to_list()
    names = aspect_names(table.get_column("aspect").to_list(), lexicon)
    table = table.with_columns(
        pl.Series("touchpoint_zh", [display_name("touchpoint", c, "zh") for c in codes]),
        pl.Series("touchpoint_en", [display_name("touchpoint", c, "en") for c in codes]),
        pl.Series("aspect_zh", [zh for zh, _ in names], dtype=pl.String),
        pl.Series("aspect_en", [en for _, en in names], dtype=pl.String),
        pl.col("quotes").fill_null([]),
    )
    return table.select(_COLUMNS).sort("rank")


def _quotes(rows: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The ``limit`` most negative distinct comments of each (touchpoint, aspect)."""
    cut = MAX_QUOTE_CHARS - 1
    text = pl.col("_text").str.replace_all(r"\s+", " ").str.strip_chars()
    quoted = (
        rows.filter(pl.col("_negative") & pl.col("_text").is_not_null())
        .with_columns(
            pl.when(text.str.len_chars() > MAX_QUOTE_CHARS)
            .then(text.str.slice(0, cut) + "…")
            .otherwise(text)
            .alias("_quote")
        )
        .filter(pl.col("_quote").str.len_chars() > 0)
        .sort(["_sentiment", "response_id"], nulls_last=True)
        .unique(["touchpoint", "aspect", "_quote"], keep="first", maintain_order=True)
    )
    return quoted.group_by("touchpoint", "aspect", maintain_order=True).agg(
        pl.col("_quote").head(max(limit, 0)).alias("quotes")
    )
