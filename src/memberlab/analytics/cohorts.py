"""Cohorts: retention and revenue by months since joining, as matrices.

Inputs
------
- ``transactions``: as in ``memberlab.analytics.rfm`` (``member_id, occurred_at, amount``,
  optional ``kind``, ``channel``, ``store``).
- ``members`` (optional, needed for ``start="enrolment"`` and for grouping by a member
  attribute): ``member_id`` (String), ``enrolled_at`` (Datetime), and the attribute named
  by ``by`` (e.g. ``enrol_channel``, ``enrol_store``, ``city``, ``tier``).

Definitions
-----------
- A member's start month is the month of their first purchase (``start="first_purchase"``,
  the default, so that everyone in a cohort is a customer and retention in month 0 is 1)
  or the month they enrolled (``start="enrolment"``: members who never bought are counted,
  and month-0 retention is the share who bought in their first month).
- Period ``k`` is the ``k``-th calendar month after the start month (0 = the start month).
  A member is *active* in period ``k`` with at least one purchase in that month.
- Rows (``cohort``) are, with ``by="join_month"``, the start month (``YYYY-MM``); with
  ``by="first_channel"`` or ``"first_store"``, the channel or store of the member's first
  purchase; with any other name, that column of ``members`` (note that ``tier`` there is
  the *current* tier, so a split by it describes, it does not explain). Members of
  different start months are then pooled, each counted from their own start month.
- ``members`` in period ``k`` is the number of members of the row who have been observed
  for ``k`` whole months: only calendar months that ended on or before ``as_of`` count
  (a partly observed month would understate retention), so recent cohorts have shorter
  rows. ``retention = active / members``; ``revenue_per_member`` is the net spend
  (purchases minus returns) in the period divided by ``members`` (active or not), and
  ``cumulative_revenue_per_member`` adds it up over the periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from memberlab.analytics.rfm import (
    DayLike,
    Frame,
    as_day,
    day_number,
    day_of,
    month_label,
    month_number,
    month_of_day,
    purchases,
    require_columns,
)
from memberlab.core.errors import FieldError, InvalidInput

__all__ = ["CohortMatrices", "cohort_matrices"]

STARTS = ("first_purchase", "enrolment")
FROM_PURCHASES = {"first_channel": "channel", "first_store": "store"}


@dataclass(frozen=True)
class CohortMatrices:
    """Retention and revenue per member by cohort row and period (months since start).

    ``long``: ``cohort, period, members, active, retention, revenue, revenue_per_member,
    cumulative_revenue_per_member`` (one row per observed cell); ``retention`` and
    ``revenue``: wide, one row per cohort with its ``members`` (size in period 0) and a
    column per period (``"0"``, ``"1"``, ...) holding ``retention`` and
    ``revenue_per_member``; cells not yet observed are null. ``last_month`` is the last
    complete month counted (``YYYY-MM``).
    """

    by: str
    start: str
    as_of: date
    last_month: str
    long: pl.DataFrame
    retention: pl.DataFrame
    revenue: pl.DataFrame


def cohort_matrices(
    transactions: Frame,
    *,
    members: Frame | None = None,
    by: str = "join_month",
    start: str = "first_purchase",
    as_of: DayLike | None = None,
    max_periods: int | None = None,
    time_zone: str | None = None,
) -> CohortMatrices:
    """Retention and revenue matrices (see the module notes for the definitions).

    ``as_of`` defaults to the last transaction day; ``max_periods`` limits the columns.
    """
    if start not in STARTS:
        raise InvalidInput(
            errors=[
                FieldError(
                    "start", "analytics.v.choice", {"value": start, "choices": ", ".join(STARTS)}
                )
            ]
        )
    if max_periods is not None and max_periods < 1:
        raise InvalidInput(
            errors=[FieldError("max_periods", "analytics.v.positive", {"value": max_periods})]
        )
    needs_members = start == "enrolment" or by not in ("join_month", *FROM_PURCHASES)
    if needs_members and members is None:
        raise InvalidInput(errors=[FieldError("members", "analytics.v.members_needed", {"by": by})])
    keep = (FROM_PURCHASES[by], "occurred_at") if by in FROM_PURCHASES else ()
    rows = purchases(
        transactions,
        until=None if as_of is None else as_day(as_of, "as_of"),
        time_zone=time_zone,
        keep=keep,
    )
    if by in FROM_PURCHASES:
        require_columns(rows, keep, "transactions")
    rows = rows.with_columns(month_of_day(pl.col("day")).alias("month"))
    # Everything below works on one row per member and month (a few per member).
    monthly = (
        rows.group_by("member_id", "month")
        .agg(
            pl.col("is_purchase").any().alias("bought"),
            pl.col("net").sum().alias("net"),
            pl.col("day").max().alias("last_day"),
        )
        .collect()
    )
    if as_of is None:
        last_day = monthly["last_day"].max()
        as_of_day = date(1970, 1, 1) + timedelta(days=int(last_day or 0))
    else:
        as_of_day = as_day(as_of, "as_of")
    last_month = month_number(as_of_day + timedelta(days=1)) - 1  # the last complete month

    starts = _starts(monthly, members, start, time_zone, as_of_day)
    groups = _groups(rows, members, starts, by)  # member_id, m0, cohort
    groups = groups.filter(pl.col("m0") <= last_month)

    # members observed in each period: cohort sizes by start month, spread over periods
    top = last_month - (groups["m0"].min() if groups.height else last_month)
    if max_periods is not None:
        top = min(top, max_periods - 1)
    periods = pl.DataFrame({"period": pl.int_range(0, top + 1, eager=True).cast(pl.Int32)})
    exposure = (
        groups.group_by("cohort", "m0")
        .agg(pl.len().cast(pl.Int64).alias("n"))
        .join(periods, how="cross")
        .filter(pl.col("m0") + pl.col("period") <= last_month)
        .group_by("cohort", "period")
        .agg(pl.col("n").sum().alias("members"))
    )
    activity = (
        monthly.lazy()
        .join(groups.lazy(), on="member_id", how="inner")
        .with_columns((pl.col("month") - pl.col("m0")).cast(pl.Int32).alias("period"))
        .filter(
            (pl.col("period") >= 0) & (pl.col("period") <= top) & (pl.col("month") <= last_month)
        )
        .group_by("cohort", "period")
        .agg(
            pl.col("bought").sum().cast(pl.Int64).alias("active"),
            pl.col("net").sum().round(2).alias("revenue"),
        )
        .collect()
    )
    long = (
        exposure.join(activity, on=["cohort", "period"], how="left")
        .with_columns(pl.col("active").fill_null(0), pl.col("revenue").fill_null(0.0))
        .with_columns(
            (pl.col("active") / pl.col("members")).alias("retention"),
            (pl.col("revenue") / pl.col("members")).alias("revenue_per_member"),
        )
        .sort("cohort", "period", nulls_last=True)
        .with_columns(
            pl.col("revenue_per_member")
            .cum_sum()
            .over("cohort", order_by="period")
            .alias("cumulative_revenue_per_member")
        )
        .select(
            "cohort",
            "period",
            "members",
            "active",
            "retention",
            "revenue",
            "revenue_per_member",
            "cumulative_revenue_per_member",
        )
    )
    return CohortMatrices(
        by=by,
        start=start,
        as_of=as_of_day,
        last_month=_label(last_month),
        long=long,
        retention=_wide(long, "retention", top),
        revenue=_wide(long, "revenue_per_member", top),
    )


def _starts(
    monthly: pl.DataFrame,
    members: Frame | None,
    start: str,
    time_zone: str | None,
    as_of_day: date,
) -> pl.DataFrame:
    """``member_id, m0``: each member's start month (``monthly``: one row per member and
    month with ``bought``)."""
    if start == "first_purchase":
        return (
            monthly.lazy()
            .filter(pl.col("bought"))
            .group_by("member_id")
            .agg(pl.col("month").min().alias("m0"))
            .collect()
        )
    assert members is not None
    lazy = members.lazy()
    schema = require_columns(lazy, ("member_id", "enrolled_at"), "members")
    enrolled = day_of(schema, "enrolled_at", time_zone)
    return (
        lazy.select(pl.col("member_id").cast(pl.String), enrolled.alias("day"))
        .drop_nulls()
        .filter(pl.col("day") <= day_number(as_of_day))
        .select("member_id", month_of_day(pl.col("day")).alias("m0"))
        .unique("member_id", keep="first")
        .collect()
    )


def _groups(
    rows: pl.LazyFrame, members: Frame | None, starts: pl.DataFrame, by: str
) -> pl.DataFrame:
    """``member_id, m0, cohort`` (String): the row each member belongs to."""
    if by == "join_month":
        return starts.with_columns(_label(pl.col("m0")).alias("cohort"))
    if by in FROM_PURCHASES:
        column = FROM_PURCHASES[by]
        first = (
            rows.filter(pl.col("is_purchase"))
            .group_by("member_id")
            .agg(
                pl.col(column)
                .get(pl.col("occurred_at").arg_min())  # the earliest row's (first if tied)
                .cast(pl.String)
                .alias("cohort")
            )
            .collect()
        )
        return starts.join(first, on="member_id", how="left")
    assert members is not None
    lazy = members.lazy()
    require_columns(lazy, ("member_id", by), "members")
    attribute = (
        lazy.select(pl.col("member_id").cast(pl.String), pl.col(by).cast(pl.String).alias("cohort"))
        .unique("member_id", keep="first")
        .collect()
    )
    return starts.join(attribute, on="member_id", how="left")


def _label(month: int | pl.Expr) -> pl.Expr | str:
    if isinstance(month, pl.Expr):
        return month_label(month)
    year, index = divmod(month, 12)
    return f"{year:04d}-{index + 1:02d}"


def _wide(long: pl.DataFrame, values: str, top: int) -> pl.DataFrame:
    columns = [str(k) for k in range(top + 1)]
    sizes = long.filter(pl.col("period") == 0).select("cohort", "members")
    if long.is_empty():
        return pl.DataFrame(schema={"cohort": pl.String, "members": pl.Int64})
    wide = long.with_columns(pl.col("period").cast(pl.String)).pivot(
        "period",
        on_columns=columns,
        index="cohort",
        values=values,
        aggregate_function="first",
    )
    return (
        sizes.join(wide, on="cohort", how="left", nulls_equal=True)
        .sort("cohort", nulls_last=True)
        .select("cohort", "members", *columns)
    )
