"""Per-member frequency, recency, age and spend from a transaction log (the RFM summary).

The definitions are those of ``lifetimes.utils.summary_data_from_transaction_data`` and
``calibration_and_holdout_data`` (lifetimes 0.11.3) with ``freq="D"``, which are also those of
Fader, Hardie and Lee's CDNOW analyses:

- purchases by one member on one calendar day are one transaction (amounts summed);
- ``frequency``: the number of *repeat* purchase days in the calibration period (days with a
  purchase, minus the first one);
- ``recency``: time from the first to the last purchase day (0 with no repeat purchase);
- ``T``: time from the first purchase day to the end of calibration (the member's "age");
- ``monetary_value``: the mean amount of the repeat purchase days (0 with no repeat purchase;
  the first purchase is left out, as the Gamma-Gamma model expects);
- with ``observation_end``: ``frequency_holdout`` (purchase days after calibration, up to and
  including ``observation_end``), ``monetary_value_holdout`` and ``duration_holdout``.

``time_unit="week"`` divides the day counts by 7 (lifetimes' ``freq="D", freq_multiplier=7``),
as in the CDNOW papers where ``T = 38.86`` weeks for a member who joined on 1 January 1997.

One deliberate difference from lifetimes: its ``monetary_value_holdout`` averages the raw
transaction rows of the holdout period, while its calibration ``monetary_value`` averages
day totals. Here both average day totals, so that the holdout spend measures the same thing
the Gamma-Gamma model predicts. With at most one purchase row a day the two agree.

Speed: grouping ten million rows by a text member id is the expensive part. Rows already in
member and day order are used as they are; otherwise they are ordered by one 64-bit integer
key (a hash of the id in the high bits, the day in the low bits), which sorts several times
faster than the ids themselves, with a second hash to detect the rare collision (then the ids
are sorted after all). Every per-member figure is then a segment sum over contiguous rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import polars as pl

from memberlab.analytics.columnar import Prepared, frame_of, local_days
from memberlab.core.errors import FieldError, InvalidInput

__all__ = ["TIME_UNITS", "TimeUnit", "rfm_summary"]

TimeUnit = Literal["day", "week"]
_SEEDS = (0x5EED_0001, 0x5EED_0002)  # two independent hashes of the member id
TIME_UNITS: dict[str, int] = {"day": 1, "week": 7}


def _as_date(value: date | datetime | str, name: str) -> date:
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


def _day_expression(schema: pl.Schema, column: str) -> pl.Expr:
    """The calendar day of each transaction, as days since 1970-01-01 (Int32).

    A zoned timestamp is taken in its own zone: a member's day is the local day.
    """
    dtype = schema[column]
    col = pl.col(column)
    if dtype == pl.Date:
        day = col
    elif isinstance(dtype, pl.Datetime):
        day = col.dt.date()
    elif dtype in (pl.String, pl.Utf8):
        day = col.str.to_datetime(strict=True).dt.date()
    else:
        raise InvalidInput(
            errors=[FieldError(column, "analytics.v.not_a_date", {"dtype": str(dtype)})]
        )
    return day.cast(pl.Int32)


def rfm_summary(
    transactions: pl.DataFrame | pl.LazyFrame | Prepared,
    *,
    member_col: str = "member_id",
    time_col: str = "occurred_at",
    amount_col: str | None = "amount",
    calibration_end: date | datetime | str,
    observation_end: date | datetime | str | None = None,
    time_unit: TimeUnit = "day",
    include_first_purchase: bool = False,
) -> pl.DataFrame:
    """One row per member with a purchase on or before ``calibration_end``.

    Parameters
    ----------
    transactions
        One row per purchase (or order line): member, timestamp or date, amount.
    calibration_end, observation_end
        Inclusive last days of the calibration and holdout periods (a datetime counts as
        its day).
    time_unit
        ``"day"`` or ``"week"`` (7 days) for ``recency``, ``T`` and ``duration_holdout``.
    include_first_purchase
        Count the first purchase day in ``frequency`` and ``monetary_value`` (lifetimes'
        ``include_first_transaction``). Leave it off for the BG/NBD, Pareto/NBD and
        Gamma-Gamma models, which are written in repeat purchases.

    Returns
    -------
    polars.DataFrame
        ``member_col, frequency (Int64), recency, T[, monetary_value]`` and, with
        ``observation_end``, ``frequency_holdout, [monetary_value_holdout,]
        duration_holdout``. Rows are in no particular order.
    """
    if time_unit not in TIME_UNITS:
        raise InvalidInput(
            errors=[FieldError("time_unit", "analytics.v.time_unit", {"value": str(time_unit)})]
        )
    lazy = frame_of(transactions).lazy()
    schema = lazy.collect_schema()
    needed = [member_col, time_col] + ([amount_col] if amount_col else [])
    missing = [c for c in needed if c not in schema]
    if missing:
        raise InvalidInput(
            errors=[FieldError(c, "analytics.v.missing_column", {"column": c}) for c in missing]
        )
    cal_end = _as_date(calibration_end, "calibration_end")
    obs_end = None if observation_end is None else _as_date(observation_end, "observation_end")
    if obs_end is not None and obs_end <= cal_end:
        raise InvalidInput(
            errors=[
                FieldError(
                    "observation_end",
                    "analytics.v.observation_before_calibration",
                    {
                        "observation_end": obs_end.isoformat(),
                        "calibration_end": cal_end.isoformat(),
                    },
                )
            ]
        )
    unit = float(TIME_UNITS[time_unit])
    cal_day = (cal_end - date(1970, 1, 1)).days
    last_day = cal_day if obs_end is None else (obs_end - date(1970, 1, 1)).days

    _day_expression(schema, time_col)  # a clear error for a column of no time
    columns = [pl.col(member_col), pl.col(time_col).alias("_time")]
    if amount_col:
        columns.append(pl.col(amount_col).cast(pl.Float64).alias("_amount"))
    rows = lazy.select(columns).collect()
    # the local day as integer arithmetic on the instants (``columnar.local_days``)
    day, known = local_days(rows["_time"], None)
    day_column = pl.Series("_day", day)
    if known is not None:
        day_column = day_column.scatter(np.flatnonzero(~known), None)
    rows = rows.drop("_time").insert_column(1, day_column)
    usable = rows.select(
        pl.col(member_col).is_not_null()
        & pl.col("_day").is_not_null()
        & (pl.col("_day") <= last_day)
    ).to_series()
    if not usable.all():  # rows without a member or a date, or after the end, are ignored
        rows = rows.filter(usable)  # (only then: filtering copies every column)
    order, new_member, day, amount = _member_day_order(rows, member_col)
    new_day = new_member.copy()
    new_day[1:] |= day[1:] != day[:-1]
    starts = np.flatnonzero(new_member)
    return _summarise(
        rows[member_col],
        order,
        starts,
        new_day,
        day,
        amount,
        member_col=member_col,
        cal_day=cal_day,
        holdout_days=None if obs_end is None else last_day - cal_day,
        unit=unit,
        include_first_purchase=include_first_purchase,
    )


Sorted = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _member_day_order(rows: pl.DataFrame, member_col: str) -> Sorted:
    """The rows grouped by member and in day order within a member.

    Returns the original index of each row in that order, which rows start a new member,
    and the day and amount columns in that order.
    """
    if rows.height == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0, dtype=bool), empty, np.zeros(0) if "_amount" in rows else None
    return (
        _already_ordered(rows, member_col)
        or _hashed_order(rows, member_col)
        or _exact_order(rows, member_col)
    )


def _already_ordered(rows: pl.DataFrame, member_col: str) -> Sorted | None:
    """The rows as they are, if already sorted by member and day (a common export order):
    one pass of comparisons with the previous row instead of a sort."""
    member, day = pl.col(member_col), pl.col("_day")
    same = member == member.shift(1)
    in_order = ((member > member.shift(1)) | (same & (day >= day.shift(1)))).fill_null(True)
    if not rows.head(10_000).select(in_order.all()).item():
        return None  # the usual case (time order) is caught on the first rows, cheaply
    checks = rows.select(
        in_order.all(),
        (~same).fill_null(True).alias("_new"),
    )
    if not checks.item(0, 0):
        return None
    amount = rows["_amount"].to_numpy() if "_amount" in rows.columns else None
    return (
        np.arange(rows.height),
        checks["_new"].to_numpy(),
        rows["_day"].cast(pl.Int64).to_numpy(),
        amount,
    )


def _hashed_order(rows: pl.DataFrame, member_col: str) -> Sorted | None:
    """Grouping by an integer key instead of the text id.

    Sorting 10 million rows by a text id is slow when they are not already grouped (an
    export in time order takes over 10 s on two cores). Instead each row gets one 64-bit key:
    the high bits from a hash of the member id, the low bits the day; sorting by that integer
    takes a fraction of the time. Two ids may share the high bits (about once in 30,000 runs
    for a million members): a second, independent hash of the id, carried along, must then
    change inside a member's run of rows, and the answer is None (the caller sorts by id).
    """
    day = rows["_day"]
    low = int(day.min())  # type: ignore[arg-type]
    bits = max(1, (int(day.max()) - low).bit_length())  # type: ignore[arg-type]
    if bits > 24:  # dates spread over more than 45,000 years: leave it to the exact sort
        return None
    member = pl.col(member_col)
    high_bits = pl.lit(((1 << 64) - 1) ^ ((1 << bits) - 1), dtype=pl.UInt64)
    key = (member.hash(_SEEDS[0]) & high_bits) | (pl.col("_day") - low).cast(pl.UInt64)
    index = pl.int_range(pl.len(), dtype=pl.UInt32 if rows.height < 2**32 else pl.Int64)
    # Sort just the key and the row number; the other columns follow by one gather each.
    ordered = rows.select(key.alias("_key"), index.alias("_row")).sort("_key")
    keys = ordered["_key"].to_numpy()
    order = ordered["_row"].to_numpy()
    high = keys >> np.uint64(bits)
    new_member = np.ones(keys.size, dtype=bool)
    new_member[1:] = high[1:] != high[:-1]
    check = np.take(rows.select(member.hash(_SEEDS[1])).to_series().to_numpy(), order)
    if np.any((check[1:] != check[:-1]) & ~new_member[1:]):
        return None
    sorted_day = (keys & np.uint64((1 << bits) - 1)).astype(np.int64) + low
    amount = np.take(rows["_amount"].to_numpy(), order) if "_amount" in rows.columns else None
    return order, new_member, sorted_day, amount


def _exact_order(rows: pl.DataFrame, member_col: str) -> Sorted:
    """The same grouping by sorting on the member ids themselves (slow, always right)."""
    ordered = rows.with_row_index("_row").sort([member_col, "_day"])
    ids = ordered[member_col]
    new_member = ids.ne_missing(ids.shift(1)).fill_null(True).to_numpy()
    new_member[0] = True
    amount = ordered["_amount"].to_numpy() if "_amount" in ordered.columns else None
    return (
        ordered["_row"].cast(pl.Int64).to_numpy(),
        new_member,
        ordered["_day"].cast(pl.Int64).to_numpy(),
        amount,
    )


def _summarise(
    member: pl.Series,
    order: np.ndarray,
    starts: np.ndarray,
    new_day: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray | None,
    *,
    member_col: str,
    cal_day: int,
    holdout_days: int | None,
    unit: float,
    include_first_purchase: bool = False,
) -> pl.DataFrame:
    """Per-member figures as reductions over each member's contiguous run of sorted rows.

    Within a member the rows are in day order, so the calibration rows come first and the
    first rows are those of the first purchase day.
    """
    if starts.size == 0:
        counts = np.zeros(0, dtype=np.int64)
    else:
        counts = np.diff(np.append(starts, day.size))
    in_calibration = day <= cal_day

    def per_member(values: np.ndarray) -> np.ndarray:
        if starts.size == 0:
            return np.zeros(0, dtype=values.dtype)
        return np.add.reduceat(values, starts)

    calibration_rows = per_member(in_calibration.astype(np.int64))
    keep = calibration_rows > 0  # members who first bought after calibration are left out
    first = day[starts]
    last = day[starts + np.maximum(calibration_rows, 1) - 1]
    days = per_member((new_day & in_calibration).astype(np.int64))
    frequency = (days if include_first_purchase else days - 1)[keep]
    columns: dict[str, Any] = {
        member_col: member.gather(order[starts[keep]]),
        "frequency": frequency,
        "recency": ((last - first) / unit)[keep],
        "T": ((cal_day - first) / unit)[keep],
    }
    if amount is not None:
        total = per_member(np.where(in_calibration, amount, 0.0))
        on_first_day = day == np.repeat(first, counts)
        if include_first_purchase:
            first_amount = np.zeros_like(total)
        else:
            first_amount = per_member(np.where(on_first_day, amount, 0.0))
        columns["monetary_value"] = np.where(
            frequency > 0, (total - first_amount)[keep] / np.maximum(frequency, 1), 0.0
        )
    if holdout_days is not None:
        later = ~in_calibration
        holdout = per_member((new_day & later).astype(np.int64))[keep]
        columns["frequency_holdout"] = holdout
        if amount is not None:
            spent = per_member(np.where(later, amount, 0.0))[keep]
            columns["monetary_value_holdout"] = spent / np.maximum(holdout, 1)
        columns["duration_holdout"] = np.full(holdout.size, holdout_days / unit)
    return pl.DataFrame(
        columns,
        schema_overrides={"frequency": pl.Int64, "frequency_holdout": pl.Int64}
        if holdout_days is not None
        else {"frequency": pl.Int64},
    )
