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

import numpy as np
import polars as pl

from memberlab.analytics.columnar import (
    first_index,
    group_min,
    masked,
    month_numbers,
    small_codes,
)
from memberlab.analytics.rfm import (
    DayLike,
    Frame,
    PurchaseRows,
    Transactions,
    as_day,
    day_number,
    day_of,
    month_label,
    month_number,
    month_of_day,
    purchase_rows,
    require_columns,
)
from memberlab.core.errors import FieldError, InvalidInput

__all__ = ["CohortMatrices", "cohort_matrices"]

STARTS = ("first_purchase", "enrolment")
_BITMAP_CELLS = 1 << 28  # members x months up to which active months are flagged in a table
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
    transactions: Transactions,
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
    rows = purchase_rows(
        transactions,
        until=None if as_of is None else as_day(as_of, "as_of"),
        time_zone=time_zone,
        keep=keep,
        orders=False,
    )
    if by in FROM_PURCHASES:
        require_columns(rows.frame, keep, "transactions")
    if as_of is None:
        last_day = int(rows.day.max()) if rows.day.size else 0
        as_of_day = date(1970, 1, 1) + timedelta(days=last_day)
    else:
        as_of_day = as_day(as_of, "as_of")
    last_month = month_number(as_of_day + timedelta(days=1)) - 1  # the last complete month

    # Everything below works on member codes: the row each member belongs to (its start
    # month and cohort), then sums over the rows and the member-months with a purchase.
    month = rows.cached("month", lambda: month_numbers(rows.day))
    groups = _groups(rows, month, members, start, by, time_zone, as_of_day)
    counted = groups.m0 <= last_month
    code, m0, row = groups.code[counted], groups.m0[counted], groups.row[counted]

    # members observed in each period: cohort sizes by start month, spread over periods
    top = last_month - (int(m0.min()) if m0.size else last_month)
    if max_periods is not None:
        top = min(top, max_periods - 1)
    exposure = _exposure(m0, row, groups.labels, top, last_month)
    activity = _activity(rows, month, code, m0, row, groups.labels, top, last_month)
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


@dataclass
class _Groups:
    """The members counted: their code in the rows (-1 without a transaction), start month
    and row of the matrices (an index in ``labels``, the cohort names; null is one)."""

    code: np.ndarray
    m0: np.ndarray
    row: np.ndarray
    labels: pl.Series

    @classmethod
    def of(cls, code: np.ndarray, m0: np.ndarray, cohort: pl.Series) -> _Groups:
        row, labels = small_codes(cohort)
        return cls(code.astype(np.int64), m0.astype(np.int64), row, labels)


def _groups(
    rows: PurchaseRows,
    month: np.ndarray,
    members: Frame | None,
    start: str,
    by: str,
    time_zone: str | None,
    as_of_day: date,
) -> _Groups:
    """The row each member counted belongs to, and their start month."""
    n = rows.members.n
    if start == "enrolment":
        return _enrolment_groups(rows, members, by, time_zone, as_of_day)
    # start: the month of the first purchase
    bought = rows.is_purchase
    first, present = group_min(*masked(bought, rows.codes, month), n)
    code = np.flatnonzero(present)
    m0 = first[code]
    if by == "join_month":
        low = int(m0.min()) if m0.size else 0
        high = int(m0.max()) if m0.size else -1
        labels = pl.Series("cohort", [_label(m) for m in range(low, high + 1)], dtype=pl.String)
        return _Groups(code, m0.astype(np.int64), (m0 - low).astype(np.int64), labels)
    if by in FROM_PURCHASES:
        earliest = _earliest_purchase(rows)  # the earliest row's (first if tied)
        cohort = rows.frame[FROM_PURCHASES[by]].gather(earliest[code]).cast(pl.String)
        return _Groups.of(code, m0, cohort)
    cohort = _attribute(members, by, rows).gather(code)
    return _Groups.of(code, m0, cohort)


def _attribute(members: Frame | None, by: str, rows: PurchaseRows) -> pl.Series:
    """Per member code of ``rows``: the ``by`` column of the member's first row in
    ``members`` (String, null for members not there)."""
    assert members is not None
    lazy = members.lazy()
    require_columns(lazy, ("member_id", by), "members")
    names = ["member_id", by]
    if isinstance(members, pl.DataFrame):
        frame = members.select(names)
    else:
        frame = lazy.select(names).collect()
    code = rows.members.lookup(frame["member_id"].cast(pl.String))
    found = np.flatnonzero(code >= 0)
    first = first_index(code[found], rows.members.n)  # a member's first row counts
    known = first >= 0
    attribute = pl.Series(by, [None] * rows.members.n, dtype=pl.String)
    if known.any():
        values = frame[by].cast(pl.String).gather(found[first[known]])
        attribute = attribute.scatter(np.flatnonzero(known), values)
    return attribute


def _enrolment_groups(
    rows: PurchaseRows, members: Frame | None, by: str, time_zone: str | None, as_of_day: date
) -> _Groups:
    """The members enrolled by ``as_of_day``, from their enrolment month."""
    assert members is not None
    lazy = members.lazy()
    schema = require_columns(lazy, ("member_id", "enrolled_at"), "members")
    enrolled = day_of(schema, "enrolled_at", time_zone)
    starts = (
        lazy.select(pl.col("member_id").cast(pl.String), enrolled.alias("day"))
        .drop_nulls()
        .filter(pl.col("day") <= day_number(as_of_day))
        .select("member_id", month_of_day(pl.col("day")).alias("m0"))
        .unique("member_id", keep="first")
        .collect()
    )
    code = rows.members.lookup(starts["member_id"])
    if by == "join_month":
        cohort = starts.select(_label(pl.col("m0"))).to_series()
    elif by in FROM_PURCHASES:
        earliest = _earliest_purchase(rows)
        chosen = np.where(code >= 0, earliest[np.maximum(code, 0)], -1)
        column = rows.frame[FROM_PURCHASES[by]].cast(pl.String)
        cohort = nullable_gather(column, chosen)
    else:
        require_columns(lazy, ("member_id", by), "members")
        attribute = (
            lazy.select(
                pl.col("member_id").cast(pl.String), pl.col(by).cast(pl.String).alias("cohort")
            )
            .unique("member_id", keep="first")
            .collect()
        )
        cohort = starts.join(attribute, on="member_id", how="left", maintain_order="left")["cohort"]
    return _Groups.of(code, starts["m0"].to_numpy(), cohort)


def nullable_gather(column: pl.Series, rows: np.ndarray) -> pl.Series:
    """``column`` at ``rows``; null where a row is -1."""
    missing = rows < 0
    taken = column.gather(np.maximum(rows, 0))
    return taken.scatter(np.flatnonzero(missing), None) if missing.any() else taken


def _earliest_purchase(rows: PurchaseRows) -> np.ndarray:
    """Per member code, the row of their earliest purchase (``occurred_at``; the first row
    if tied), or -1 for members without a purchase."""
    n = rows.members.n
    purchase = np.flatnonzero(rows.is_purchase)
    times = rows.frame["occurred_at"]
    if times.is_sorted():  # in time order already: a member's first purchase row
        first = first_index(rows.codes[purchase], n)
        return np.where(first >= 0, purchase[np.maximum(first, 0)], -1)
    if isinstance(times.dtype, pl.Datetime) or times.dtype == pl.Date:
        values = times.to_physical().to_numpy()[purchase]  # no nulls: such rows are dropped
        codes = rows.codes[purchase]
        lowest, _ = group_min(codes, values, n)
        tied = values == lowest[codes]
        first = first_index(codes[tied], n)
        return np.where(first >= 0, purchase[tied][np.maximum(first, 0)], -1)
    earliest = (
        pl.DataFrame({"code": rows.codes[purchase], "row": purchase, "t": times.gather(purchase)})
        .group_by("code")
        .agg(pl.col("row").get(pl.col("t").arg_min()))
    )
    result = np.full(n, -1, dtype=np.int64)
    result[earliest["code"].to_numpy()] = earliest["row"].to_numpy()
    return result


def _exposure(
    m0: np.ndarray, row: np.ndarray, labels: pl.Series, top: int, last_month: int
) -> pl.DataFrame:
    """``cohort, period, members``: members observed for ``period`` whole months (those who
    started at least ``period`` months before the last complete month)."""
    if m0.size == 0:
        return pl.DataFrame(schema={"cohort": pl.String, "period": pl.Int32, "members": pl.Int64})
    low = int(m0.min())
    width = last_month - low + 1
    counts = np.bincount(row * width + (m0 - low), minlength=labels.len() * width)
    cumulative = counts.reshape(labels.len(), width).cumsum(axis=1)
    period = np.arange(top + 1)
    members = cumulative[:, last_month - low - period]  # started by last_month - period
    cohort, at = np.nonzero(members)
    return pl.DataFrame(
        {
            "cohort": labels.gather(cohort),
            "period": period[at].astype(np.int32),
            "members": members[cohort, at].astype(np.int64),
        }
    )


def _activity(
    rows: PurchaseRows,
    month: np.ndarray,
    code: np.ndarray,
    m0: np.ndarray,
    row: np.ndarray,
    labels: pl.Series,
    top: int,
    last_month: int,
) -> pl.DataFrame:
    """``cohort, period, active, revenue``: member-months with a purchase and net spend,
    by cohort row and months since each member's start."""
    n = rows.members.n
    inside = code >= 0
    # each member's row and start month in one integer: one lookup per transaction
    never = (1 << 31) - 1  # the start month of members not counted: no period is >= 0
    both = np.full(n, never, dtype=np.int64)
    both[code[inside]] = (row[inside] << 32) | m0[inside]
    width = top + 1
    cells = labels.len() * width

    def cell(member: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = both[member]
        period = when - (found & 0xFFFFFFFF)
        keep = (period >= 0) & (period <= top) & (when <= last_month)
        return (found[keep] >> 32) * width + period[keep], keep

    # member-months with a purchase
    member, when = rows.cached("purchase_months", lambda: _purchase_months(rows, month))
    where, _ = cell(member, when)
    active = np.bincount(where, minlength=cells)
    where, keep = cell(rows.codes, month.astype(np.int64))
    revenue = np.bincount(where, rows.net[keep], minlength=cells)
    return pl.DataFrame(
        {
            "cohort": labels.gather(np.repeat(np.arange(labels.len()), width)),
            "period": np.tile(np.arange(width, dtype=np.int32), labels.len()),
            "active": active.astype(np.int64),
            "revenue": revenue,
        }
    ).with_columns(pl.col("revenue").round(2))


def _purchase_months(rows: PurchaseRows, month: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (member code, month) with a purchase."""
    member, when = masked(rows.is_purchase, rows.codes, month)
    if member.size == 0:
        return member.astype(np.int64), when.astype(np.int64)
    low = int(when.min())
    span = int(when.max()) - low + 1
    if rows.members.n * span <= _BITMAP_CELLS:  # a flag per member and month
        seen = np.zeros(rows.members.n * span, dtype=bool)
        seen[member * span + (when - low)] = True
        flat = np.flatnonzero(seen)
        return flat // span, flat % span + low
    pair_member, pair_day = rows.purchase_days
    pair_month = month_numbers(pair_day)
    new = np.r_[True, (pair_member[1:] != pair_member[:-1]) | (pair_month[1:] != pair_month[:-1])]
    return pair_member[new], pair_month[new].astype(np.int64)


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
