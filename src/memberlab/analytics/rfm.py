"""RFM: recency, frequency and monetary value per member as of a day, scored and segmented.

Input: the ``transactions`` frame
---------------------------------
One row per order (or per order line; several rows of one order are fine):

- ``member_id`` (String), ``occurred_at`` (Datetime, any zone; or Date), ``amount``
  (Float64, yuan, positive for purchases *and* for returns: the amount returned);
- ``kind`` (String, ``"purchase"`` or ``"return"``; optional: without it a negative amount
  is a return and anything else a purchase);
- ``order_id`` (String, optional: counts orders); ``channel``, ``store``, ``category``
  (optional, used elsewhere).

Every analysis of the transactions (here and in cohorts, tiers, points and churn) takes a
``columnar.Prepared`` of them as well: several analyses of the same transactions then
work out the local days and member codes once rather than once each, with the same
results.

Days and months are calendar days and months of the timestamps in their own zone (UTC for
the store's UTC timestamps), or in ``time_zone`` when one is given (e.g. the program's
``Asia/Shanghai``, so that a member's day is the local day). ``as_of`` is a day and is
inclusive: everything on or before that day counts, nothing after it.

Definitions
-----------
- ``recency``: days from the last purchase day to ``as_of`` (0 = bought on ``as_of``).
- ``frequency``: purchase *days* (all the orders of one member on one day count once, the
  convention of the lifetime-value models); ``orders`` counts the distinct orders too.
- ``spend``: net spend, purchases minus returns, to the fen (a return counts on the day it
  happens; the day of a purchase later returned still counts as a purchase day).
- ``monetary``: ``spend`` (``monetary="total"``, the default, as in the Chinese RFM practice
  where M is the amount spent) or ``spend / frequency`` (``monetary="mean"``).
- With ``window_days``, frequency, orders and spend only count the last ``window_days``
  days (e.g. 365); recency still looks at the whole history.

Scores (1 to 5, 5 best)
-----------------------
- By quantiles (default): a member's score is ``1 + floor(5 x s)`` where ``s`` is the share
  of members whose value is strictly *worse* (older for recency, lower for frequency and
  monetary). Equal values always get equal scores, and without ties each score holds a
  fifth of the members; with heavy ties (many members with frequency 1) a tied group takes
  the score of its worst member, so a score can be empty. Nothing is broken at random.
- By thresholds (``RfmThresholds``): four ascending cut points per measure. Recency scores
  5 up to the first cut (inclusive), 4 up to the second, ..., 1 above the fourth;
  frequency and monetary score 1 below the first cut, 2 from the first cut (inclusive),
  ..., 5 from the fourth.

Segments
--------
``scheme="cn8"`` (default) is the standard Chinese eight-segment RFM: each of R, F, M is
*high* when the member's score is strictly above the mean (or median, ``reference=``) score
of all members in the table (with ``basis="value"``: the raw values against their mean or
median, recency lower being better), giving 重要价值客户 (Champions, high R F M) to
一般挽留客户 (Lost, low R F M). ``scheme="rf_grid"`` is the common Western ten-segment map
on the R and F scores (Champions, Loyal customers, ..., Hibernating). ``segments(scheme)``
lists the codes with their zh-CN and en names.

Shared helpers for the other analytics modules (cohorts, tiers, points, churn) are at the
end of this module: converting days, checking columns, preparing purchases.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from memberlab.analytics.columnar import (
    MemberCodes,
    Prepared,
    bits_for,
    frame_of,
    group_max,
    group_min,
    local_days,
    masked,
)
from memberlab.core.errors import FieldError, InvalidInput

__all__ = [
    "SCHEMES",
    "RfmThresholds",
    "SegmentMovement",
    "rfm_table",
    "segment_movement",
    "segment_summary",
    "segments",
]

Scheme = Literal["cn8", "rf_grid"]
Monetary = Literal["total", "mean"]
Reference = Literal["mean", "median"]
Basis = Literal["score", "value"]
DayLike = date | datetime | str
Frame = pl.DataFrame | pl.LazyFrame
T = TypeVar("T")
Transactions = Frame | Prepared  # prepared: shared by several analyses (``columnar.Prepared``)

EPOCH = date(1970, 1, 1)
NO_SEGMENT = "none"  # the "from" side of a movement for members without a purchase yet

# code, zh-CN name, en name, (R high, F high, M high)
_CN8: tuple[tuple[str, str, str, tuple[bool, bool, bool]], ...] = (
    ("important_value", "重要价值客户", "Champions", (True, True, True)),
    ("important_retain", "重要保持客户", "Loyal big spenders slipping away", (False, True, True)),
    ("important_develop", "重要发展客户", "Recent big spenders to develop", (True, False, True)),
    ("important_winback", "重要挽留客户", "Big spenders to win back", (False, False, True)),
    ("general_value", "一般价值客户", "Loyal small spenders", (True, True, False)),
    (
        "general_retain",
        "一般保持客户",
        "Frequent small spenders fading",
        (False, True, False),
    ),
    ("general_develop", "一般发展客户", "New or occasional small spenders", (True, False, False)),
    ("general_winback", "一般挽留客户", "Lost", (False, False, False)),
)
# code, zh-CN name, en name, R scores, F scores
_RF_GRID: tuple[tuple[str, str, str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("champions", "冠军客户", "Champions", (5,), (4, 5)),
    ("loyal", "忠诚客户", "Loyal customers", (3, 4), (4, 5)),
    ("potential_loyalists", "潜在忠诚客户", "Potential loyalists", (4, 5), (2, 3)),
    ("new_customers", "新客户", "New customers", (5,), (1,)),
    ("promising", "有潜力客户", "Promising", (4,), (1,)),
    ("need_attention", "需要关注客户", "Need attention", (3,), (3,)),
    ("about_to_sleep", "即将沉睡客户", "About to sleep", (3,), (1, 2)),
    ("at_risk", "有流失风险客户", "At risk", (1, 2), (3, 4)),
    ("cant_lose", "不能失去的客户", "Can't lose them", (1, 2), (5,)),
    ("hibernating", "沉睡客户", "Hibernating", (1, 2), (1, 2)),
)
SCHEMES: dict[str, tuple[str, ...]] = {
    "cn8": tuple(row[0] for row in _CN8),
    "rf_grid": tuple(row[0] for row in _RF_GRID),
}
_NAMES: dict[str, tuple[str, str]] = {row[0]: (row[1], row[2]) for row in (*_CN8, *_RF_GRID)}


@dataclass(frozen=True)
class RfmThresholds:
    """Cut points set by the consultant: four ascending values per measure.

    ``recency`` in days (score 5 up to ``recency[0]`` days inclusive, ..., 1 beyond
    ``recency[3]``); ``frequency`` in purchase days and ``monetary`` in yuan (score 1 below
    the first value, ..., 5 from the fourth value inclusive).
    """

    recency: tuple[float, float, float, float]
    frequency: tuple[float, float, float, float]
    monetary: tuple[float, float, float, float]

    def check(self) -> None:
        errors = []
        for name in ("recency", "frequency", "monetary"):
            cuts = tuple(getattr(self, name))
            if len(cuts) != 4 or any(b <= a for a, b in itertools.pairwise(cuts)):
                errors.append(
                    FieldError(
                        f"thresholds.{name}",
                        "analytics.v.rfm_thresholds",
                        {"value": ", ".join(str(c) for c in cuts)},
                    )
                )
        if errors:
            raise InvalidInput(errors=errors)


@dataclass(frozen=True)
class SegmentMovement:
    """Where the members of each segment on ``date_a`` are on ``date_b``.

    ``long``: ``from_segment, to_segment, members, share`` (share of the ``from`` segment);
    ``wide``: one row per ``from_segment`` with its ``members`` and one column of counts per
    ``to`` segment. ``from_segment`` is ``"none"`` for members without a purchase by
    ``date_a``.
    """

    date_a: date
    date_b: date
    long: pl.DataFrame
    wide: pl.DataFrame


def segments(scheme: Scheme = "cn8") -> pl.DataFrame:
    """The segments of a scheme, in display order: ``segment, name_zh, name_en``."""
    codes = _scheme_codes(scheme)
    return pl.DataFrame(
        {
            "segment": list(codes),
            "name_zh": [_NAMES[c][0] for c in codes],
            "name_en": [_NAMES[c][1] for c in codes],
        }
    )


def rfm_table(
    transactions: Transactions,
    *,
    as_of: DayLike,
    window_days: int | None = None,
    monetary: Monetary = "total",
    thresholds: RfmThresholds | None = None,
    scheme: Scheme = "cn8",
    reference: Reference = "mean",
    basis: Basis = "score",
    time_zone: str | None = None,
) -> pl.DataFrame:
    """One row per member with a purchase on or before ``as_of`` (see the module notes).

    Returns
    -------
    polars.DataFrame
        ``member_id, first_purchase (Date), last_purchase (Date), recency (Int32, days),
        frequency (Int32, purchase days), orders (Int32; purchase days when there is no
        order_id), spend (Float64, net yuan), monetary (Float64), r_score, f_score,
        m_score (Int8, 1-5), rfm (String, e.g. "545"), segment (Enum of the scheme's
        codes)``, sorted by ``member_id``.
    """
    _check_options(window_days, monetary, thresholds, scheme, reference, basis)
    day = as_day(as_of, "as_of")
    rows = purchase_rows(transactions, until=day, time_zone=time_zone)
    return _rfm(rows, day, window_days, monetary, thresholds, scheme, reference, basis)


def _check_options(
    window_days: int | None,
    monetary: str,
    thresholds: RfmThresholds | None,
    scheme: str,
    reference: str,
    basis: str,
) -> None:
    if monetary not in ("total", "mean"):
        raise InvalidInput(
            errors=[
                FieldError(
                    "monetary",
                    "analytics.v.choice",
                    {"value": str(monetary), "choices": "total, mean"},
                )
            ]
        )
    if reference not in ("mean", "median"):
        raise InvalidInput(
            errors=[
                FieldError(
                    "reference",
                    "analytics.v.choice",
                    {"value": str(reference), "choices": "mean, median"},
                )
            ]
        )
    if basis not in ("score", "value"):
        raise InvalidInput(
            errors=[
                FieldError(
                    "basis", "analytics.v.choice", {"value": str(basis), "choices": "score, value"}
                )
            ]
        )
    _scheme_codes(scheme)
    if thresholds is not None:
        thresholds.check()
    if window_days is not None and window_days < 1:
        raise InvalidInput(
            errors=[FieldError("window_days", "analytics.v.positive", {"value": window_days})]
        )


def _rfm(
    rows: PurchaseRows,
    day: date,
    window_days: int | None,
    monetary: str,
    thresholds: RfmThresholds | None,
    scheme: str,
    reference: str,
    basis: str,
) -> pl.DataFrame:
    """``rfm_table`` on prepared purchases (see ``purchase_rows``), after the checks."""
    return _rfm_codes(rows, day, window_days, monetary, thresholds, scheme, reference, basis)[0]


def _rfm_codes(
    rows: PurchaseRows,
    day: date,
    window_days: int | None,
    monetary: str,
    thresholds: RfmThresholds | None,
    scheme: str,
    reference: str,
    basis: str,
    *,
    segments_only: bool = False,
) -> tuple[pl.DataFrame, np.ndarray]:
    """``_rfm`` and the member code of each of its rows (with ``segments_only``, only the
    ``segment`` column)."""
    codes = SCHEMES[scheme]
    cut = day_number(day)
    n = rows.members.n
    window_start = cut - window_days + 1 if window_days else None
    # Purchase days are distinct (member, day) pairs; first and last over the whole history.
    pair_member, pair_day = rows.purchase_days
    upto = pair_day <= cut
    first_day, _ = group_min(pair_member[upto], pair_day[upto], n)
    last_day, present = group_max(pair_member[upto], pair_day[upto], n)
    counted = upto if window_start is None else upto & (pair_day >= window_start)
    frequency = np.bincount(pair_member[counted], minlength=n)
    in_window = rows.day <= cut
    if window_start is not None:
        in_window &= rows.day >= window_start
    orders = (
        rows.distinct_orders(in_window & rows.is_purchase) if rows.order is not None else frequency
    )
    spend = np.bincount(*masked(in_window, rows.codes, rows.net), minlength=n)
    # one row per member with a purchase on or before the day, in member_id order
    chosen = rows.members.by_id
    chosen = chosen[present[chosen]]
    table = pl.DataFrame(
        {
            "member_id": rows.members.ids_of(chosen),
            "first_purchase": first_day[chosen].astype(np.int32),
            "last_purchase": last_day[chosen].astype(np.int32),
            "recency": (cut - last_day[chosen]).astype(np.int32),
            "frequency": frequency[chosen].astype(np.int32),
            "orders": orders[chosen].astype(np.int32),
            "spend": spend[chosen],
        }
    ).with_columns(
        pl.col("first_purchase", "last_purchase").cast(pl.Date),
        pl.col("spend").round(2),  # to the fen: deterministic
    )
    table = table.with_columns(
        (
            pl.col("spend")
            if monetary == "total"
            else pl.when(pl.col("frequency") > 0)
            .then(pl.col("spend") / pl.col("frequency"))
            .otherwise(0.0)
        ).alias("monetary"),
    )
    table = _scores_of(table, thresholds)
    segment = _segment_expr(table, scheme, reference, basis)
    if segments_only:
        return table.select(segment.cast(pl.Enum(list(codes))).alias("segment")), chosen
    table = table.with_columns(
        pl.format("{}{}{}", "r_score", "f_score", "m_score").alias("rfm"),
        segment.cast(pl.Enum(list(codes))).alias("segment"),
    ).select(
        "member_id",
        "first_purchase",
        "last_purchase",
        "recency",
        "frequency",
        "orders",
        "spend",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "rfm",
        "segment",
    )
    return table, chosen


def segment_summary(rfm: pl.DataFrame) -> pl.DataFrame:
    """Size and value of each segment of an ``rfm_table`` (every segment of its scheme, empty
    ones with zeros), in the scheme's order.

    Columns: ``segment, name_zh, name_en, members, member_share, spend, value_share,
    recency_mean, frequency_mean, monetary_mean``. ``value_share`` is the segment's share
    of the total net spend; member shares sum to 1 (value shares too, unless the total is 0).
    """
    require_columns(rfm, ("segment", "spend", "recency", "frequency", "monetary"), "rfm")
    dtype = rfm.schema["segment"]
    codes = tuple(dtype.categories.to_list()) if isinstance(dtype, pl.Enum) else None
    if codes is None:
        codes = tuple(sorted(rfm["segment"].unique().drop_nulls().to_list()))
    total_members = rfm.height
    total_spend = float(rfm["spend"].sum()) if rfm.height else 0.0
    stats = rfm.group_by(pl.col("segment").cast(pl.String)).agg(
        pl.len().cast(pl.Int64).alias("members"),
        pl.col("spend").sum().alias("spend"),
        pl.col("recency").mean().alias("recency_mean"),
        pl.col("frequency").mean().alias("frequency_mean"),
        pl.col("monetary").mean().alias("monetary_mean"),
    )
    frame = pl.DataFrame(
        {
            "segment": list(codes),
            "name_zh": [_NAMES.get(c, (c, c))[0] for c in codes],
            "name_en": [_NAMES.get(c, (c, c))[1] for c in codes],
        }
    )
    return (
        frame.join(stats, on="segment", how="left", maintain_order="left")
        .with_columns(
            pl.col("members").fill_null(0),
            pl.col("spend").fill_null(0.0),
        )
        .with_columns(
            (pl.col("members") / max(total_members, 1)).alias("member_share"),
            (pl.col("spend") / total_spend if total_spend else pl.lit(0.0, dtype=pl.Float64)).alias(
                "value_share"
            ),
        )
        .select(
            "segment",
            "name_zh",
            "name_en",
            "members",
            "member_share",
            "spend",
            "value_share",
            "recency_mean",
            "frequency_mean",
            "monetary_mean",
        )
    )


def segment_movement(
    transactions: Transactions,
    *,
    date_a: DayLike,
    date_b: DayLike,
    window_days: int | None = None,
    monetary: Monetary = "total",
    thresholds: RfmThresholds | None = None,
    scheme: Scheme = "cn8",
    reference: Reference = "mean",
    basis: Basis = "score",
    time_zone: str | None = None,
) -> SegmentMovement:
    """The migration matrix of segments between two days.

    Each day is scored on its own: with quantile scores (the default) a member's scores are
    relative to the members of that day, so a segment can change because others changed;
    give ``thresholds`` to compare on a fixed scale. Members with no purchase by ``date_a``
    start in ``"none"``; every member of ``date_a`` is still in the table on ``date_b``.
    """
    a = as_day(date_a, "date_a")
    b = as_day(date_b, "date_b")
    if b <= a:
        raise InvalidInput(
            errors=[
                FieldError(
                    "date_b",
                    "analytics.v.not_after",
                    {"value": b.isoformat(), "other": a.isoformat()},
                )
            ]
        )
    _check_options(window_days, monetary, thresholds, scheme, reference, basis)
    # Prepare the purchases once; each day is then a filter of the same rows.
    rows = purchase_rows(transactions, until=b, time_zone=time_zone)
    options = (window_days, monetary, thresholds, scheme, reference, basis)
    at_a, members_a = _rfm_codes(rows, a, *options, segments_only=True)
    at_b, members_b = _rfm_codes(rows, b, *options, segments_only=True)
    codes = _scheme_codes(scheme)
    # every member of date_b, from their segment on date_a ("none": not a member yet)
    before = np.zeros(rows.members.n, dtype=np.int64)  # 0: none, else 1 + segment
    before[members_a] = at_a["segment"].to_physical().to_numpy().astype(np.int64) + 1
    after = at_b["segment"].to_physical().to_numpy().astype(np.int64)
    width = len(codes)
    sizes = np.bincount(before[members_b] * width + after, minlength=(width + 1) * width)
    present = np.flatnonzero(sizes)
    names = pl.Series([NO_SEGMENT, *codes], dtype=pl.String)
    counts = pl.DataFrame(
        {
            "from_segment": names.gather(present // width),
            "to_segment": names.gather(present % width + 1),
            "members": sizes[present].astype(np.int64),
        }
    )
    order_from = [NO_SEGMENT, *codes]
    grid = pl.DataFrame({"from_segment": order_from}).join(
        pl.DataFrame({"to_segment": list(codes)}), how="cross"
    )
    long = (
        grid.join(counts, on=["from_segment", "to_segment"], how="left", maintain_order="left")
        .with_columns(pl.col("members").fill_null(0))
        .with_columns(
            (pl.col("members") / pl.col("members").sum().over("from_segment"))
            .fill_nan(0.0)
            .fill_null(0.0)
            .alias("share")
        )
    )
    wide = long.pivot(
        "to_segment",
        on_columns=list(codes),
        index="from_segment",
        values="members",
        aggregate_function="sum",
    )
    wide = wide.with_columns(pl.sum_horizontal(list(codes)).alias("members")).select(
        "from_segment", "members", *codes
    )
    return SegmentMovement(date_a=a, date_b=b, long=long, wide=wide)


# --- scoring -----------------------------------------------------------------------------


def _scores(thresholds: RfmThresholds | None) -> list[pl.Expr]:
    recency, frequency, value = pl.col("recency"), pl.col("frequency"), pl.col("monetary")
    if thresholds is None:
        return [
            _quantile_score(recency, descending=True).alias("r_score"),
            _quantile_score(frequency, descending=False).alias("f_score"),
            _quantile_score(value, descending=False).alias("m_score"),
        ]
    return [
        (5 - pl.sum_horizontal([(recency > c).cast(pl.Int8) for c in thresholds.recency]))
        .cast(pl.Int8)
        .alias("r_score"),
        (1 + pl.sum_horizontal([(frequency >= c).cast(pl.Int8) for c in thresholds.frequency]))
        .cast(pl.Int8)
        .alias("f_score"),
        (1 + pl.sum_horizontal([(value >= c).cast(pl.Int8) for c in thresholds.monetary]))
        .cast(pl.Int8)
        .alias("m_score"),
    ]


def _scores_of(table: pl.DataFrame, thresholds: RfmThresholds | None) -> pl.DataFrame:
    """``table`` with ``r_score, f_score, m_score`` (see ``_scores``); recency and frequency
    (whole numbers in a short range) ranked by counting rather than sorting."""
    if thresholds is not None or table.height == 0:
        return table.with_columns(_scores(thresholds))
    return table.with_columns(
        _counted_score(table["recency"].to_numpy(), descending=True).alias("r_score"),
        _counted_score(table["frequency"].to_numpy(), descending=False).alias("f_score"),
        _quantile_score(pl.col("monetary"), descending=False).alias("m_score"),
    )


def _counted_score(values: np.ndarray, *, descending: bool) -> pl.Series:
    """``_quantile_score`` of whole numbers: the members strictly worse, counted."""
    low = int(values.min())
    if int(values.max()) - low > 10 * values.size:  # a spread out range: rank them
        frame = pl.DataFrame({"v": values})
        return frame.select(_quantile_score(pl.col("v"), descending=descending)).to_series()
    counts = np.bincount(values.astype(np.int64) - low)
    below = np.cumsum(counts) - counts  # strictly lower
    above = values.size - np.cumsum(counts)  # strictly higher
    worse = (above if descending else below)[values.astype(np.int64) - low]
    score = np.clip(1 + np.floor(5 * worse / values.size), 1, 5)
    return pl.Series(score.astype(np.int8))


def _quantile_score(value: pl.Expr, *, descending: bool) -> pl.Expr:
    """1 + floor(5 x share of members strictly worse); a tie takes its worst member's score.

    ``rank("min")`` in the "better is later" order is 1 + the number strictly worse."""
    worse = value.rank("min", descending=descending) - 1
    return (1 + (5 * worse / pl.len()).floor()).clip(1, 5).cast(pl.Int8)


def _segment_expr(table: pl.DataFrame, scheme: str, reference: str, basis: str) -> pl.Expr:
    if scheme == "rf_grid":
        mapping = {r * 10 + f: code for code, _, _, rs, fs in _RF_GRID for r in rs for f in fs}
        key = pl.col("r_score").cast(pl.Int32) * 10 + pl.col("f_score").cast(pl.Int32)
        return key.replace_strict(mapping, return_dtype=pl.String)
    if basis == "score":
        columns, better = ("r_score", "f_score", "m_score"), (1, 1, 1)
    else:
        columns, better = ("recency", "frequency", "monetary"), (-1, 1, 1)
    flags = []
    for column, sign in zip(columns, better, strict=True):
        series = table[column].cast(pl.Float64)
        ref = series.mean() if reference == "mean" else series.median()
        ref = 0.0 if ref is None else float(ref)
        flags.append(pl.col(column) > ref if sign > 0 else pl.col(column) < ref)
    key = (flags[0].cast(pl.Int8) * 4 + flags[1].cast(pl.Int8) * 2 + flags[2].cast(pl.Int8)).cast(
        pl.Int32
    )
    mapping = {int(r) * 4 + int(f) * 2 + int(m): code for code, _, _, (r, f, m) in _CN8}
    return key.replace_strict(mapping, return_dtype=pl.String)


def _scheme_codes(scheme: str) -> tuple[str, ...]:
    if scheme not in SCHEMES:
        raise InvalidInput(
            errors=[
                FieldError(
                    "scheme",
                    "analytics.v.choice",
                    {"value": str(scheme), "choices": ", ".join(SCHEMES)},
                )
            ]
        )
    return SCHEMES[scheme]


# --- shared helpers (used by cohorts, tiers, points and churn) ---------------------------


def as_day(value: DayLike, name: str) -> date:
    """A day from a date, a datetime (its own calendar day) or an ISO text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInput(
            errors=[FieldError(name, "analytics.v.bad_date", {"value": str(value)})]
        ) from None


def distinct_count(expr: pl.Expr) -> pl.Expr:
    """Distinct non-null values (Int32); in a group-by, per group."""
    return (expr.n_unique() - (expr.null_count() > 0).cast(pl.UInt32)).cast(pl.Int32)


def day_number(day: date) -> int:
    """Days since 1970-01-01 (how Polars stores a Date)."""
    return (day - EPOCH).days


def month_number(day: date) -> int:
    """A month as ``year * 12 + month - 1`` (consecutive months are consecutive numbers)."""
    return day.year * 12 + day.month - 1


def month_label(number: pl.Expr) -> pl.Expr:
    """``YYYY-MM`` text of a month number."""
    return pl.format(
        "{}-{}",
        (number // 12).cast(pl.String),
        (number % 12 + 1).cast(pl.String).str.pad_start(2, "0"),
    )


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clipped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def require_columns(frame: Frame, columns: Sequence[str], name: str) -> pl.Schema:
    """The frame's schema, after checking it has ``columns`` (a clear error if not)."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    missing = [c for c in columns if c not in schema]
    if missing:
        raise InvalidInput(
            errors=[
                FieldError(c, "analytics.v.frame_column", {"frame": name, "column": c})
                for c in missing
            ]
        )
    return schema


def local_date(schema: pl.Schema, column: str, time_zone: str | None) -> pl.Expr:
    """The calendar day (Date) of a timestamp column: in its own zone, or converted to
    ``time_zone`` (naive timestamps are taken as UTC). ISO texts are parsed and their own
    day is used."""
    dtype = schema[column]
    col = pl.col(column)
    if dtype == pl.Date:
        return col
    if dtype == pl.String:
        return col.str.to_datetime(strict=True).dt.date()
    if isinstance(dtype, pl.Datetime):
        if time_zone is not None:
            zoned = col if dtype.time_zone else col.dt.replace_time_zone("UTC")
            col = zoned.dt.convert_time_zone(time_zone)
        return col.dt.date()
    raise InvalidInput(errors=[FieldError(column, "analytics.v.not_a_date", {"dtype": str(dtype)})])


def day_of(schema: pl.Schema, column: str, time_zone: str | None) -> pl.Expr:
    """Days since 1970-01-01 (Int32) of a timestamp or date column (see ``local_date``)."""
    return local_date(schema, column, time_zone).cast(pl.Int32)


def month_of_day(day: pl.Expr) -> pl.Expr:
    """The month number (``year * 12 + month - 1``, Int32) of a day number."""
    as_date = day.cast(pl.Date)
    return (as_date.dt.year().cast(pl.Int32) * 12 + as_date.dt.month().cast(pl.Int32) - 1).cast(
        pl.Int32
    )


def purchases(
    transactions: Transactions,
    *,
    until: date | None,
    time_zone: str | None,
    keep: Sequence[str] = (),
) -> pl.LazyFrame:
    """The transactions as ``member_id, day (Int32), is_purchase, net (signed yuan)`` plus
    ``order_id`` when present and the ``keep`` columns that exist; rows after ``until``
    (a day, inclusive) and rows without a member or time are dropped."""
    lazy = frame_of(transactions).lazy()
    schema = require_columns(lazy, ("member_id", "occurred_at", "amount"), "transactions")
    amount = pl.col("amount").cast(pl.Float64)
    if "kind" in schema:
        is_return = pl.col("kind") == "return"
        net = pl.when(is_return).then(-amount.abs()).otherwise(amount)
        is_purchase = ~is_return
    else:
        net = amount
        is_purchase = amount >= 0
    columns = [
        pl.col("member_id").cast(pl.String),
        day_of(schema, "occurred_at", time_zone).alias("day"),
        is_purchase.fill_null(True).alias("is_purchase"),
        net.fill_null(0.0).alias("net"),
    ]
    extra = [c for c in ("order_id", *keep) if c in schema and c not in ("member_id",)]
    columns.extend(pl.col(c) for c in dict.fromkeys(extra))
    rows = lazy.select(columns).drop_nulls(["member_id", "day"])
    if until is not None:
        rows = rows.filter(pl.col("day") <= day_number(until))
    return rows


@dataclass
class PurchaseRows:
    """The transactions as arrays, one entry per row (see ``purchase_rows``)."""

    members: MemberCodes
    day: np.ndarray  # int32, days since 1970-01-01
    is_purchase: np.ndarray  # bool
    net: np.ndarray  # float64, signed yuan
    order: np.ndarray | None  # uint64 hash of order_id, when there is one
    frame: pl.DataFrame  # the kept columns (see ``keep``), same rows
    # what is worked out on demand (purchase days, ...), shared by the views of ``restricted``
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def codes(self) -> np.ndarray:
        return self.members.codes

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, worked out once for these rows (and the views of ``restricted``
        that keep all of them). What it returns is shared: not to be changed in place."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    @property
    def purchase_days(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (member code, day) pairs of the purchases, by member then day."""
        return self.cached(
            "purchase_days",
            lambda: distinct_pairs(self.codes[self.is_purchase], self.day[self.is_purchase]),
        )

    def distinct_orders(self, mask: np.ndarray) -> np.ndarray:
        """Per member code, the distinct order ids (by hash) among the purchases of ``mask``."""
        order = self.order
        assert order is not None
        n = self.members.n
        if self.cached("unique_orders", lambda: _all_distinct(order[self.is_purchase])):
            # (``mask`` keeps purchases only: a row is an order)
            return np.bincount(*masked(mask, self.codes), minlength=n)
        pairs = pl.DataFrame({"m": self.codes[mask], "o": order[mask]}).unique()
        return np.bincount(pairs["m"].to_numpy(), minlength=n)

    def restricted(self, until: date | None, keep: Sequence[str], orders: bool) -> PurchaseRows:
        """These rows on or before ``until`` with the ``keep`` columns (and the order ids
        with ``orders``), as ``purchase_rows`` gives them; the arrays themselves (and what
        is worked out from them) when every row is kept."""
        frame = self.frame.select(c for c in dict.fromkeys(keep) if c in self.frame.columns)
        order = self.order if orders else None
        inside = None if until is None else self.day <= day_number(until)
        if inside is None or inside.all():
            return replace(self, frame=frame, order=order)
        return PurchaseRows(
            members=self.members.subset(inside),
            day=self.day[inside],
            is_purchase=self.is_purchase[inside],
            net=self.net[inside],
            order=None if order is None else order[inside],
            frame=frame.filter(pl.Series(inside)) if frame.width else frame,
        )


def _all_distinct(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return not bool(np.any(ordered[1:] == ordered[:-1]))


def distinct_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs of two integer columns (``first`` non-negative),
    sorted by first then second."""
    if first.size == 0:
        return first.astype(np.int64), second.astype(np.int64)
    low = int(second.min())
    bits = bits_for(second.astype(np.int64) - low)
    if bits + bits_for(first) > 63:
        pairs = pl.DataFrame({"a": first, "b": second}).unique().sort("a", "b")
        return pairs["a"].to_numpy(), pairs["b"].to_numpy()
    key = (first.astype(np.int64) << bits) | (second.astype(np.int64) - low)
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]]
    return key >> bits, (key & ((1 << bits) - 1)) + low


def purchase_rows(
    transactions: Transactions,
    *,
    until: date | None,
    time_zone: str | None,
    keep: Sequence[str] = (),
    orders: bool = True,
) -> PurchaseRows:
    """``purchases`` as arrays: member codes, local day numbers, purchase flags and net
    amounts, order id hashes (with ``orders``), and the ``keep`` columns that exist (in
    ``frame``), for the rows with a member and a time, on or before ``until``.

    Of ``Prepared`` transactions, every row is worked out once (for each time zone) and
    each call takes the rows it needs from them."""
    if not isinstance(transactions, Prepared):
        return _purchase_rows(
            transactions, until=until, time_zone=time_zone, keep=keep, orders=orders
        )
    frame = transactions.frame
    every = transactions.remember(
        ("purchase_rows", time_zone),
        lambda: _purchase_rows(frame, until=None, time_zone=time_zone, keep=frame.columns),
    )
    return every.restricted(until, keep, orders)


def _purchase_rows(
    transactions: Frame,
    *,
    until: date | None,
    time_zone: str | None,
    keep: Sequence[str] = (),
    orders: bool = True,
) -> PurchaseRows:
    """``purchase_rows`` of a frame."""
    lazy = transactions.lazy()
    schema = require_columns(lazy, ("member_id", "occurred_at", "amount"), "transactions")
    local_date(schema, "occurred_at", time_zone)  # a clear error for a column of no time
    wanted = ("order_id", *keep) if orders else keep
    extra = [c for c in wanted if c in schema and c != "member_id"]
    names = list(dict.fromkeys(["member_id", "occurred_at", "amount", "kind", *extra]))
    names = [c for c in names if c in schema]
    if isinstance(transactions, pl.DataFrame):
        frame = transactions.select(names)
    else:
        frame = lazy.select(names).collect()
    day, usable = local_days(frame["occurred_at"], time_zone)
    if frame["member_id"].null_count():
        known = frame["member_id"].is_not_null().to_numpy()
        usable = known if usable is None else usable & known
    if until is not None:
        before = day <= day_number(until)
        usable = before if usable is None else usable & before
    if usable is not None and not usable.all():
        frame = frame.filter(pl.Series(usable))
        day = day[usable]
    amount = pl.col("amount").cast(pl.Float64)
    if "kind" in schema:
        is_return = pl.col("kind") == "return"
        net = pl.when(is_return).then(-amount.abs()).otherwise(amount)
        is_purchase = ~is_return
    else:
        net = amount
        is_purchase = amount >= 0
    values = frame.select(
        is_purchase.fill_null(True).alias("is_purchase"), net.fill_null(0.0).alias("net")
    )
    member = frame["member_id"]
    if member.dtype != pl.String:
        member = member.cast(pl.String)
    return PurchaseRows(
        members=MemberCodes.of(member),
        day=day,
        is_purchase=values["is_purchase"].to_numpy(),
        net=values["net"].to_numpy(),
        order=frame["order_id"].hash().to_numpy() if "order_id" in frame.columns else None,
        frame=frame.select(c for c in dict.fromkeys(keep) if c in frame.columns),
    )
