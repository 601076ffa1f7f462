"""Points economics: issuance, redemption and expiry (breakage) by earning cohort, a forecast
of what the outstanding points will become, the liability by expiry month and the IFRS 15
view of it.

Inputs
------
``ledger``: one row per change of a member's points (the member side of the ledger, e.g.
``ledger_entries`` or its postings):

- ``member_id`` (String), ``at`` (Datetime), ``points`` (Int64, signed: positive earned or
  given back, negative spent, expired or taken back);
- ``kind`` (String): the entry kind of ``memberlab.programs.rules`` — earning kinds
  ``purchase``, ``sign_up``, ``birthday``, ``review``, ``referral``, ``spend_threshold``,
  ``adjustment``; outflows ``redemption`` (rewards) and ``payment`` (points paying at
  checkout), both *redeemed*; ``expire``, *expired*; ``return`` and negative
  ``adjustment``, *reversed* (points taken back: they reduce what the cohort issued, they
  are neither redemption nor breakage). The account names ``program.redeemed``,
  ``program.payment``, ``program.expired``, ``program.returned``,
  ``program.adjustment`` and the short forms ``redeem``, ``expired`` are understood too;
  ``kinds=`` maps any other name. Rows of kind ``release`` (pending to available) and
  rows with 0 points are ignored. Every positive row is an issuance (a new lot).
- ``earned_at`` (Datetime, optional): on outflow rows, when the points taken were earned
  (from the posting's lot). With it, outflows are attributed to cohorts exactly; without
  it, first-in-first-out: a member's points are used in the order they were earned, which
  is what the rules do (soonest-expiring lots first) when expiry follows earning order.
  Returns take their points back from the member's latest earning at or before the
  return (the order's own lot, as the rules do), any excess first-in-first-out.

``lots`` (optional, for the liability and a sharper forecast): one row per points lot:
``member_id``, ``earned_at``, ``expires_at`` (null: never), ``amount``, ``remaining``
(Int64); as ``points_lots`` holds them.

Definitions
-----------
- A *cohort* is the calendar month points were earned (``YYYY-MM``); *age* ``k`` the
  ``k``-th month after it (0 = the same month).
- ``net_issued = issued - reversed``; the shares ``redeemed_share``,
  ``expired_share`` (breakage so far) and ``outstanding_share`` are of ``net_issued``.
- The development triangles hold, per cohort and age, the cumulative shares redeemed
  and expired; only months that ended on or before ``as_of`` are in them.
- Forecast (chain ladder on the outstanding points): for each age ``k`` the *hazards*
  ``redeemed(k) / outstanding at the start of k`` and ``expired(k) / outstanding at the
  start of k`` are pooled over every cohort observed at that age (the volume-weighted
  chain-ladder development factors, written as shares of what is still outstanding).
  Each cohort's outstanding points are rolled forward month by month with the hazards of
  the ages it will reach. Ages observed with less than 1 % of the largest exposure (thin
  data), and ages beyond the history, reuse the hazards of the last well-observed age.
  With ``lots``, each lot's points are rolled forward with the redemption hazards only,
  until their expiry month, when whatever is left expires (the program's rule, rather
  than an age-based estimate of it). What is still outstanding after ``horizon_months``
  is ``unresolved``; the expected redemption rate splits it like the forecast.
- IFRS 15: deferred revenue (the contract liability) = outstanding points x value per
  point x expected redemption rate; the expected breakage ``1 - rate`` is recognised as
  the other points are redeemed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

import numpy as np
import polars as pl

from memberlab.analytics.columnar import (
    MemberCodes,
    bits_for,
    hash_groups,
    local_days,
    month_numbers,
    nullable,
    pack_sort,
    small_codes,
)
from memberlab.analytics.fitting import FitWarning
from memberlab.analytics.rfm import (
    DayLike,
    Frame,
    Transactions,
    as_day,
    day_number,
    day_of,
    local_date,
    month_label,
    month_number,
    month_of_day,
    purchases,
    require_columns,
)
from memberlab.core.errors import FieldError, InvalidInput

__all__ = [
    "DEFAULT_KINDS",
    "Ifrs15View",
    "PointsCohorts",
    "PointsForecast",
    "deferred_revenue",
    "ifrs15_view",
    "liability_by_expiry",
    "points_cohorts",
    "points_forecast",
]

Category = Literal["redeemed", "expired", "reversed"]
OUTFLOWS: tuple[str, ...] = ("redeemed", "expired", "reversed")
DEFAULT_KINDS: dict[str, str] = {
    "redemption": "redeemed",
    "redeem": "redeemed",
    "payment": "redeemed",
    "program.redeemed": "redeemed",
    "program.payment": "redeemed",
    "expire": "expired",
    "expired": "expired",
    "expiry": "expired",
    "program.expired": "expired",
    "return": "reversed",
    "program.returned": "reversed",
    "adjustment": "reversed",
    "adjust": "reversed",
    "program.adjustment": "reversed",
}
RETURN_KINDS = ("return", "program.returned")
IGNORED_KINDS = ("release",)
RESOLVED_SHARE = 0.01  # a cohort with at most 1 % outstanding counts as resolved
THIN_EXPOSURE = 0.01  # ages with less than 1 % of the largest exposure reuse earlier hazards
_ONE_US = timedelta(microseconds=1)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class PointsCohorts:
    """What became of the points earned in each month (see the module notes).

    ``cohorts``: ``cohort, issued, reversed, net_issued, redeemed, expired, outstanding,
    redeemed_share, expired_share, outstanding_share`` and, with transactions, ``spend``
    (net yuan in that month) and ``issued_per_yuan`` (the issuance rate).
    ``development``: ``cohort, age, outstanding_start, redeemed, expired, reversed,
    outstanding_end, cum_redeemed_share, cum_expired_share`` for the complete months.
    ``redeemed_triangle`` / ``expired_triangle``: the cumulative shares, one row per
    cohort, a column per age. ``hazards``: ``age, cohorts, exposure, redeemed, expired,
    redemption_hazard, expiry_hazard, used`` (``used`` false for thin ages).
    ``outstanding_points`` is the ledger's balance (the sum of all points up to
    ``as_of``); ``unattributed`` the points spent beyond everything a member ever earned
    (a debt never repaid), left out of the cohorts.
    """

    as_of: date
    last_month: str
    method: str
    cohorts: pl.DataFrame
    development: pl.DataFrame
    redeemed_triangle: pl.DataFrame
    expired_triangle: pl.DataFrame
    hazards: pl.DataFrame
    outstanding_points: int
    unattributed: int
    warnings: tuple[FitWarning, ...] = ()

    @property
    def historical_redemption_rate(self) -> float | None:
        """Redeemed / (redeemed + expired) over the resolved cohorts (at most 1 % of their
        points outstanding); None when no cohort is resolved yet."""
        resolved = self.cohorts.filter(pl.col("outstanding_share") <= RESOLVED_SHARE)
        redeemed = float(resolved["redeemed"].sum())
        expired = float(resolved["expired"].sum())
        if redeemed + expired <= 0:
            return None
        return redeemed / (redeemed + expired)


@dataclass(frozen=True)
class PointsForecast:
    """Where the outstanding points are expected to go.

    ``by_cohort``: ``cohort, outstanding, expected_redeemed, expected_expired, unresolved,
    expected_redemption_rate``; ``by_month``: ``month, expected_redeemed,
    expected_expired`` (calendar months after ``as_of``). ``expected_redemption_rate`` is
    the share of the outstanding points expected to be redeemed.
    """

    as_of: date
    horizon_months: int
    method: str
    outstanding: int
    expected_redeemed: float
    expected_expired: float
    unresolved: float
    expected_redemption_rate: float
    by_cohort: pl.DataFrame
    by_month: pl.DataFrame


@dataclass(frozen=True)
class Ifrs15View:
    """The IFRS 15 contract liability for outstanding points.

    ``face_value = outstanding_points x value_per_point``; ``deferred_revenue = face_value x
    expected_redemption_rate``; ``expected_breakage_value = face_value - deferred_revenue``.
    ``rate_source``: ``forecast``, ``historical`` or ``given``.
    """

    outstanding_points: int
    value_per_point: Decimal
    expected_redemption_rate: float
    expected_breakage_rate: float
    face_value: Decimal
    deferred_revenue: Decimal
    expected_breakage_value: Decimal
    rate_source: str
    warnings: tuple[FitWarning, ...] = field(default=())


def points_cohorts(
    ledger: Frame,
    *,
    as_of: DayLike | None = None,
    transactions: Transactions | None = None,
    kinds: Mapping[str, str] | None = None,
    time_zone: str | None = None,
) -> PointsCohorts:
    """Issuance, redemption, expiry and what is outstanding, by earning month.

    ``as_of`` (inclusive day) defaults to the last ledger day.
    """
    mapping = {**DEFAULT_KINDS, **(kinds or {})}
    bad = sorted({v for v in mapping.values() if v not in OUTFLOWS})
    if bad:
        raise InvalidInput(
            errors=[
                FieldError(
                    "kinds",
                    "analytics.v.choice",
                    {"value": ", ".join(bad), "choices": ", ".join(OUTFLOWS)},
                )
            ]
        )
    rows, as_of_day = _ledger_rows(ledger, as_of, mapping, time_zone)
    last_month = month_number(as_of_day + timedelta(days=1)) - 1
    outstanding_points = int(rows.points.sum())
    if rows.earned_month is not None:
        flows, unattributed, method = _by_lot(rows), 0, "lot"
    else:
        flows, unattributed = _fifo(rows)
        method = "fifo"
    warnings: list[FitWarning] = []
    if unattributed:
        warnings.append(FitWarning("analytics.points.unattributed", {"points": unattributed}))

    totals = flows.group_by("cohort", "category").agg(pl.col("points").sum())
    wide = (
        totals.pivot(
            "category",
            on_columns=["issued", *OUTFLOWS],
            index="cohort",
            values="points",
            aggregate_function="sum",
        )
        .with_columns(pl.col("issued", *OUTFLOWS).fill_null(0).cast(pl.Int64))
        .sort("cohort")
    )
    net = pl.col("issued") - pl.col("reversed")
    cohorts = wide.with_columns(net.alias("net_issued")).with_columns(
        (pl.col("net_issued") - pl.col("redeemed") - pl.col("expired")).alias("outstanding")
    )
    cohorts = cohorts.with_columns(
        *(
            _share(pl.col(c), pl.col("net_issued")).alias(f"{c}_share")
            for c in ("redeemed", "expired", "outstanding")
        )
    ).select(
        "cohort",
        "issued",
        "reversed",
        "net_issued",
        "redeemed",
        "expired",
        "outstanding",
        "redeemed_share",
        "expired_share",
        "outstanding_share",
    )
    if transactions is not None:
        spend = (
            purchases(transactions, until=as_of_day, time_zone=time_zone)
            .group_by(month_of_day(pl.col("day")).alias("cohort"))
            .agg(pl.col("net").sum().alias("spend"))
            .collect()
        )
        cohorts = cohorts.join(spend, on="cohort", how="left", maintain_order="left").with_columns(
            _share(pl.col("issued"), pl.col("spend")).alias("issued_per_yuan")
        )
    development = _development(flows, cohorts, last_month)
    hazards = _hazards(development)
    labelled = cohorts.with_columns(month_label(pl.col("cohort")).alias("cohort"))
    development = development.with_columns(month_label(pl.col("cohort")).alias("cohort"))
    return PointsCohorts(
        as_of=as_of_day,
        last_month=_label(last_month),
        method=method,
        cohorts=labelled,
        development=development,
        redeemed_triangle=_triangle(development, "cum_redeemed_share"),
        expired_triangle=_triangle(development, "cum_expired_share"),
        hazards=hazards,
        outstanding_points=outstanding_points,
        unattributed=unattributed,
        warnings=tuple(warnings),
    )


def points_forecast(
    cohorts: PointsCohorts,
    *,
    lots: Frame | None = None,
    horizon_months: int = 60,
    time_zone: str | None = None,
) -> PointsForecast:
    """Expected redemption and expiry of the outstanding points (see the module notes)."""
    if horizon_months < 1:
        raise InvalidInput(
            errors=[FieldError("horizon_months", "analytics.v.positive", {"value": horizon_months})]
        )
    hazards = cohorts.hazards
    red, exp = _hazard_curves(hazards, horizon_months)
    first_month = month_number(cohorts.as_of + timedelta(days=1))  # the next month to come
    if lots is None:
        method = "hazards"
        start = cohorts.cohorts.select(
            _month_from_label(pl.col("cohort")).alias("cohort"),
            pl.col("outstanding").clip(lower_bound=0).alias("points"),
        ).filter(pl.col("points") > 0)
        start = start.with_columns(pl.lit(None, dtype=pl.Int32).alias("expiry"))
    else:
        method = "hazards+expiry"
        start = _lot_buckets(lots, cohorts.as_of, time_zone)
    points = start["points"].to_numpy().astype(np.float64)
    cohort = start["cohort"].to_numpy().astype(np.int64)
    never = np.iinfo(np.int64).max
    expiry = start["expiry"].cast(pl.Int64).fill_null(never).to_numpy()
    n = points.size
    redeemed = np.zeros((n, horizon_months))
    expired = np.zeros((n, horizon_months))
    left = points.copy()
    for step in range(horizon_months):  # months ahead: vectorised over cohorts and lots
        month = first_month + step
        age = np.clip(month - cohort, 0, red.size - 1)
        alive = month <= expiry
        r = np.where(alive, left * red[age], 0.0)
        if lots is None:
            e = left * exp[age]
            e = np.minimum(e, left - r)
        else:
            e = np.where(month == expiry, left - r, 0.0)
            e = np.where(month > expiry, 0.0, e)
        redeemed[:, step] = r
        expired[:, step] = e
        left = left - r - e
    if lots is not None:
        overdue = expiry < first_month  # expired on the books soon, nothing more to redeem
        expired[:, 0] += np.where(overdue, left, 0.0)
        left = np.where(overdue, 0.0, left)
    per_row = pl.DataFrame(
        {
            "cohort": cohort,
            "outstanding": points,
            "expected_redeemed": redeemed.sum(axis=1),
            "expected_expired": expired.sum(axis=1),
            "unresolved": left,
        }
    )
    by_cohort = (
        per_row.group_by("cohort")
        .agg(pl.all().sum())
        .sort("cohort")
        .with_columns(
            _rate(
                pl.col("expected_redeemed"), pl.col("expected_expired"), pl.col("unresolved")
            ).alias("expected_redemption_rate"),
            month_label(pl.col("cohort")).alias("cohort"),
        )
    )
    months = first_month + np.arange(horizon_months)
    by_month = pl.DataFrame(
        {
            "month": months,
            "expected_redeemed": redeemed.sum(axis=0),
            "expected_expired": expired.sum(axis=0),
        }
    ).with_columns(month_label(pl.col("month")).alias("month"))
    total_red = float(redeemed.sum())
    total_exp = float(expired.sum())
    unresolved = float(left.sum())
    resolved = total_red + total_exp
    if resolved > 0:
        rate = (total_red + unresolved * total_red / resolved) / (resolved + unresolved)
    else:
        rate = cohorts.historical_redemption_rate or 0.0
    return PointsForecast(
        as_of=cohorts.as_of,
        horizon_months=horizon_months,
        method=method,
        outstanding=int(points.sum().round()),
        expected_redeemed=total_red,
        expected_expired=total_exp,
        unresolved=unresolved,
        expected_redemption_rate=rate,
        by_cohort=by_cohort,
        by_month=by_month,
    )


def liability_by_expiry(
    lots: Frame,
    *,
    value_per_point: Decimal | float | str | None = None,
    as_of: DayLike | None = None,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Outstanding points (lots' ``remaining``) by the last month they can be used
    (``YYYY-MM`` of ``expires_at`` minus a microsecond, as ``memberlab.ledger.liability``
    does; ``never`` for lots that do not expire), with their face ``value`` when
    ``value_per_point`` is given. With ``as_of``, lots earned after it or expired by its
    end are left out. Columns ``expiry_month, points[, value]``, in month order.
    """
    lazy = lots.lazy()
    schema = require_columns(lazy, ("earned_at", "expires_at", "remaining"), "lots")
    rows = lazy.filter(pl.col("remaining") > 0)
    if as_of is not None:
        day = day_number(as_day(as_of, "as_of"))
        rows = rows.filter(day_of(schema, "earned_at", time_zone) <= day)
        expiry_day = _last_usable(schema, time_zone).cast(pl.Int32)
        rows = rows.filter(pl.col("expires_at").is_null() | (expiry_day >= day))
    month = _last_usable(schema, time_zone)
    label = (
        pl.when(pl.col("expires_at").is_null())
        .then(pl.lit("never"))
        .otherwise(month.dt.strftime("%Y-%m"))
    )
    frame = (
        rows.group_by(label.alias("expiry_month"))
        .agg(pl.col("remaining").sum().cast(pl.Int64).alias("points"))
        .sort("expiry_month")
        .collect()
    )
    if value_per_point is not None:
        value = float(Decimal(str(value_per_point)))
        frame = frame.with_columns((pl.col("points") * value).round(2).alias("value"))
    return frame


def ifrs15_view(
    outstanding_points: int,
    value_per_point: Decimal | float | str,
    expected_redemption_rate: float,
    *,
    rate_source: str = "given",
) -> Ifrs15View:
    """Deferred revenue = outstanding points x value per point x expected redemption rate.

    >>> ifrs15_view(10_000, "0.01", 0.8).deferred_revenue
    Decimal('80.00')
    """
    if not 0.0 <= expected_redemption_rate <= 1.0:
        raise InvalidInput(
            errors=[
                FieldError(
                    "expected_redemption_rate",
                    "analytics.v.share",
                    {"value": expected_redemption_rate},
                )
            ]
        )
    value = Decimal(str(value_per_point))
    if value < 0:
        raise InvalidInput(
            errors=[FieldError("value_per_point", "analytics.v.negative", {"value": str(value)})]
        )
    face = Decimal(outstanding_points) * value
    deferred = face * Decimal(repr(expected_redemption_rate))
    face_q = face.quantize(_CENT, rounding=ROUND_HALF_UP)
    deferred_q = deferred.quantize(_CENT, rounding=ROUND_HALF_UP)
    return Ifrs15View(
        outstanding_points=int(outstanding_points),
        value_per_point=value,
        expected_redemption_rate=expected_redemption_rate,
        expected_breakage_rate=1.0 - expected_redemption_rate,
        face_value=face_q,
        deferred_revenue=deferred_q,
        expected_breakage_value=face_q - deferred_q,
        rate_source=rate_source,
    )


def deferred_revenue(
    ledger: Frame,
    *,
    value_per_point: Decimal | float | str,
    as_of: DayLike | None = None,
    lots: Frame | None = None,
    rate: Literal["forecast", "historical"] | float = "forecast",
    horizon_months: int = 60,
    kinds: Mapping[str, str] | None = None,
    time_zone: str | None = None,
    cohorts: PointsCohorts | None = None,
) -> Ifrs15View:
    """The IFRS 15 view straight from the ledger: the outstanding points (the ledger's
    balance, or the lots' remaining points when ``lots`` are given), with the expected
    redemption rate from the forecast (default), from the resolved cohorts
    (``"historical"``; the forecast's rate when no cohort is resolved, with a warning) or
    given as a number.

    ``cohorts``: ``points_cohorts`` of the same ledger (same ``as_of``, ``kinds`` and
    ``time_zone``) when it was worked out already, to use it rather than work it out
    again (the most expensive part: ``as_of`` must then be its day or left out)."""
    if cohorts is not None and as_of is not None and as_day(as_of, "as_of") != cohorts.as_of:
        raise InvalidInput(
            errors=[
                FieldError(
                    "as_of",
                    "analytics.points.other_cohorts",
                    {"value": str(as_of), "cohorts": cohorts.as_of.isoformat()},
                )
            ]
        )
    warnings: list[FitWarning] = []
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        history = cohorts  # (its balance, if given)
        expected, source = float(rate), "given"
    else:
        if rate not in ("forecast", "historical"):
            raise InvalidInput(
                errors=[
                    FieldError(
                        "rate",
                        "analytics.v.choice",
                        {"value": str(rate), "choices": "forecast, historical, a number"},
                    )
                ]
            )
        history = (
            cohorts
            if cohorts is not None
            else points_cohorts(ledger, as_of=as_of, kinds=kinds, time_zone=time_zone)
        )
        warnings.extend(history.warnings)
        historical = history.historical_redemption_rate if rate == "historical" else None
        if historical is not None:
            expected, source = historical, "historical"
        else:
            if rate == "historical":
                warnings.append(FitWarning("analytics.points.no_resolved_cohort"))
            forecast = points_forecast(
                history, lots=lots, horizon_months=horizon_months, time_zone=time_zone
            )
            expected, source = forecast.expected_redemption_rate, "forecast"
    if lots is not None:
        outstanding = int(
            lots.lazy().select(pl.col("remaining").clip(lower_bound=0).sum()).collect().item() or 0
        )
    elif history is not None:
        outstanding = history.outstanding_points
    else:
        mapping = {**DEFAULT_KINDS, **(kinds or {})}
        outstanding = int(_ledger_rows(ledger, as_of, mapping, time_zone)[0].points.sum())
    view = ifrs15_view(outstanding, value_per_point, expected, rate_source=source)
    return Ifrs15View(**{**view.__dict__, "warnings": tuple(warnings)})


# --- attribution -----------------------------------------------------------------------------


@dataclass
class _LedgerRows:
    """The ledger rows counted (see ``_ledger_rows``), as arrays."""

    member: pl.Series  # member_id (String)
    seconds: np.ndarray  # int64, ``at`` in whole seconds since 1970
    day: np.ndarray  # int32
    month: np.ndarray  # int32
    points: np.ndarray  # int64
    cat: np.ndarray  # int8: -1 issued, else the index in ``OUTFLOWS``
    ret: np.ndarray  # bool: a return
    earned_month: np.ndarray | None  # int32 (the row's own month where unknown)
    seconds_sorted: bool  # ``seconds`` never decrease


def _ledger_rows(
    ledger: Frame, as_of: DayLike | None, mapping: Mapping[str, str], time_zone: str | None
) -> tuple[_LedgerRows, date]:
    """The rows up to ``as_of`` with points other than 0, a member, a time and a kind not
    ignored, as arrays."""
    lazy = ledger.lazy()
    schema = require_columns(lazy, ("member_id", "at", "kind", "points"), "ledger")
    local_date(schema, "at", time_zone)  # a clear error for a column of no time
    has_lot = "earned_at" in schema
    codes = {kind: OUTFLOWS.index(outcome) for kind, outcome in mapping.items()}
    names = ["member_id", "at", "kind", "points", *(["earned_at"] if has_lot else [])]
    if isinstance(ledger, pl.DataFrame):
        frame = ledger.select(names)
    else:
        frame = lazy.select(names).collect()
    kind = pl.col("kind")
    # the kinds are few: work them out on the distinct kinds, then look each row's up
    which, distinct = small_codes(frame["kind"].cast(pl.String))
    kinds = distinct.to_frame("kind").with_columns(
        (~kind.is_in(IGNORED_KINDS)).fill_null(False).alias("counted"),
        kind.is_in(RETURN_KINDS).fill_null(False).alias("ret"),
        kind.replace_strict(codes, default=OUTFLOWS.index("reversed"), return_dtype=pl.Int8)
        .fill_null(OUTFLOWS.index("reversed"))
        .alias("outflow"),
    )
    points_column = frame["points"].cast(pl.Int64)
    points = points_column.fill_null(0).to_numpy()
    keep = (points != 0) & kinds["counted"].to_numpy()[which]
    day, usable = local_days(frame["at"], time_zone)
    if usable is not None:
        keep &= usable
    if frame["member_id"].null_count():
        keep &= frame["member_id"].is_not_null().to_numpy()
    if points_column.null_count():
        keep &= points_column.is_not_null().to_numpy()
    last = int(day[keep].max()) if keep.any() else None
    if as_of is None:
        as_of_day = date(1970, 1, 1) + timedelta(days=int(last or 0))
    else:
        as_of_day = as_day(as_of, "as_of")
        keep &= day <= day_number(as_of_day)
    all_rows = bool(keep.all())
    member = frame["member_id"].cast(pl.String)
    at = frame["at"]
    if not all_rows:
        member = member.filter(pl.Series(keep))
        at = at.filter(pl.Series(keep))
        day, points, which = day[keep], points[keep], which[keep]
    outflow = kinds["outflow"].to_numpy()[which]
    cat = np.where(points > 0, np.int8(-1), outflow).astype(np.int8)
    seconds = _seconds(at)
    earned_month = None
    if has_lot:
        earned = frame["earned_at"] if all_rows else frame["earned_at"].filter(pl.Series(keep))
        lot_day, known = local_days(earned, time_zone)
        earned_month = month_numbers(lot_day)
        month = month_numbers(day)
        if known is not None:
            earned_month = np.where(known, earned_month, month)
    else:
        month = month_numbers(day)
    return (
        _LedgerRows(
            member=member,
            seconds=seconds,
            day=day,
            month=month,
            points=points,
            cat=cat,
            ret=kinds["ret"].to_numpy()[which],
            earned_month=earned_month,
            seconds_sorted=bool(np.all(seconds[1:] >= seconds[:-1])),
        ),
        as_of_day,
    )


def _seconds(at: pl.Series) -> np.ndarray:
    """Whole seconds since 1970 (``dt.epoch("s")``) of a time column."""
    if isinstance(at.dtype, pl.Datetime):
        per_second = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000}[at.dtype.time_unit]
        return at.to_physical().fill_null(0).to_numpy() // per_second
    return at.dt.epoch("s").fill_null(0).to_numpy()


def _by_lot(rows: _LedgerRows) -> pl.DataFrame:
    """Flows with the lots' earning months; an outflow without one (a debt) counts against
    its own month."""
    assert rows.earned_month is not None
    month = rows.month.astype(np.int64)
    points = rows.points
    cohort = np.where(points > 0, month, rows.earned_month)
    return _sum_flows(cohort, rows.cat.astype(np.int64), month, np.abs(points))


def _fifo_order(rows: _LedgerRows) -> tuple[np.ndarray, np.ndarray]:
    """The rows by member, then time (whole seconds), then row; and which rows start a
    member."""
    n = rows.points.size
    if rows.seconds_sorted:  # time order already: group by member, keeping the row order
        order, new, _, _ = hash_groups(rows.member)
        return order, new
    members = MemberCodes.of(rows.member)
    low = int(rows.seconds.min())
    spread = rows.seconds - low
    by_time = pack_sort((spread, bits_for(spread)))
    if by_time is None:
        by_time = np.lexsort((np.arange(n), spread))
    rank = np.empty(n, dtype=np.int64)
    rank[by_time] = np.arange(n, dtype=np.int64)
    ranks = pack_sort((members.codes, bits_for(members.codes)), (rank, bits_for(rank)), row=False)
    order = by_time[ranks] if ranks is not None else np.lexsort((rank, members.codes))
    code = members.codes[order]
    return order, np.r_[True, code[1:] != code[:-1]]


def _fifo(rows: _LedgerRows) -> tuple[pl.DataFrame, int]:
    """First-in-first-out attribution: ``(flows, unattributed)``.

    All members are laid end to end on one line of points: member ``m`` owns the stretch
    ``[offset_m, offset_m + max(earned, spent))``; their earnings fill it from the start in
    time order, and so do their outflows. An outflow covering positions ``[s0, s1)`` used
    the points earned at the same positions. Cutting the line at every start (and at each
    member's two ends) gives pieces that lie in one earning and one outflow, found by
    binary search: no loop per member, a few sorts of the whole ledger.
    """
    n = rows.points.size
    if n == 0:
        empty = pl.DataFrame(
            schema={
                "cohort": pl.Int32,
                "category": pl.String,
                "month": pl.Int32,
                "points": pl.Int64,
            }
        )
        return empty, 0
    # Order by member, then time (whole seconds), rows of the same second in their order.
    order, new_member = _fifo_order(rows)
    pts = rows.points[order]
    # month, category and return flag travel together: one gather instead of three
    low = int(rows.month.min())
    packed = (rows.month.astype(np.int64) - low) << 3
    packed |= (rows.cat.astype(np.int64) + 1) << 1
    packed |= rows.ret
    packed = packed[order]
    month = (packed >> 3) + low
    cat = ((packed >> 1) & 3) - 1
    ret = (packed & 1).astype(bool)
    del order, packed
    m = np.cumsum(new_member, dtype=np.int64) - 1  # member number, 0, 1, ... in sorted order
    earn = pts > 0
    earned = np.where(earn, pts, 0)
    spent = np.where(pts < 0, -pts, 0)

    # Returns take back from the latest earning at or before them, up to what it gave.
    last_earn = np.maximum.accumulate(np.where(earn, np.arange(n), -1))
    matched = ret & (pts < 0) & (last_earn >= 0) & (m[np.maximum(last_earn, 0)] == m)
    r_rows = np.flatnonzero(matched)
    r_earn = last_earn[r_rows]
    r_pts = spent[r_rows]
    first = np.r_[True, r_earn[1:] != r_earn[:-1]] if r_rows.size else np.zeros(0, bool)
    running = np.cumsum(r_pts) - r_pts  # taken by earlier returns, over all groups
    group = np.cumsum(first) - 1
    before = running - running[first][group] if r_rows.size else running
    kept = np.clip(earned[r_earn] - before, 0, r_pts)
    np.subtract.at(earned, r_earn, kept)
    spent[r_rows] = r_pts - kept  # the excess is taken first-in-first-out
    reversed_flows = _sum_flows(month[r_earn], np.full(r_rows.size, 2), month[r_rows], kept)
    del last_earn, matched, ret

    # Positions on the line.
    starts = np.flatnonzero(new_member)
    member = m
    total_earned = np.add.reduceat(earned, starts)
    total_spent = np.add.reduceat(spent, starts)
    span = np.maximum(total_earned, total_spent)
    offset = np.cumsum(span) - span
    e_rows = np.flatnonzero(earned > 0)
    s_rows = np.flatnonzero(spent > 0)
    e1 = _line_ends(earned, e_rows, starts, offset, member)
    s1 = _line_ends(spent, s_rows, starts, offset, member)
    e0, s0 = e1 - earned[e_rows], s1 - spent[s_rows]
    del member
    # The cuts: four ascending runs, merged by a stable sort (nearly linear), each value
    # tagged with its run so that counting the earning and outflow starts up to each cut
    # gives the earning and the outflow it lies in (the last of each at or before it).
    tagged = np.concatenate(
        [
            e0 << 2,
            (s0 << 2) | 1,
            ((offset + total_earned) << 2) | 2,
            ((offset + total_spent) << 2) | 2,
        ]
    )
    tagged.sort(kind="stable")
    value = tagged >> 2
    tag = tagged & 3
    del tagged
    last = np.r_[value[1:] != value[:-1], True]  # the last of each value: counts include it
    ei = (np.cumsum(tag == 0) - 1)[last][:-1]
    si = (np.cumsum(tag == 1) - 1)[last][:-1]
    cuts = value[last]
    del value, tag, last
    length = np.diff(cuts)
    at = cuts[:-1]
    has_e = (ei >= 0) & (at < (e1[np.maximum(ei, 0)] if e1.size else at))
    has_s = (si >= 0) & (at < (s1[np.maximum(si, 0)] if s1.size else at))
    unattributed = int(length[has_s & ~has_e].sum())
    both = has_e & has_s & (length > 0)
    e_of = e_rows[ei[both]]
    s_of = s_rows[si[both]]
    used = _sum_flows(month[e_of], cat[s_of], month[s_of], length[both])
    issued = _issued_flows(month[earn], pts[earn])
    del pts, earn
    flows = pl.concat([issued, reversed_flows, used])
    return flows, unattributed


def _issued_flows(month: np.ndarray, points: np.ndarray) -> pl.DataFrame:
    """``_sum_flows`` of the issuance: cohort and month are the earning month."""
    if month.size == 0:
        return _sum_flows(month, month, month, points)
    low = int(month.min())
    totals = np.bincount(month - low, weights=points.astype(np.float64))
    present = np.flatnonzero(totals)
    return pl.DataFrame(
        {
            "cohort": (present + low).astype(np.int32),
            "category": ["issued"] * present.size,
            "month": (present + low).astype(np.int32),
            "points": np.rint(totals[present]).astype(np.int64),
        }
    )


def _line_ends(
    amount: np.ndarray,
    rows: np.ndarray,
    starts: np.ndarray,
    offset: np.ndarray,
    member: np.ndarray,
) -> np.ndarray:
    """Where each of ``rows`` ends on the line: its member's offset plus the member's
    running total up to and including it."""
    running = np.cumsum(amount)
    before = (running - amount)[starts]  # the running total where each member begins
    who = member[rows]
    return offset[who] + running[rows] - before[who]


def _sum_flows(
    cohort: np.ndarray, category: np.ndarray, month: np.ndarray, points: np.ndarray
) -> pl.DataFrame:
    """``cohort, category, month, points`` summed over equal keys (category -1 = issued)."""
    if cohort.size == 0:
        return pl.DataFrame(
            schema={
                "cohort": pl.Int32,
                "category": pl.String,
                "month": pl.Int32,
                "points": pl.Int64,
            }
        )
    cohort, category, month = (a.astype(np.int64) for a in (cohort, category, month))
    low = int(min(cohort.min(), month.min()))
    width = int(max(cohort.max(), month.max())) - low + 1
    key = ((cohort - low) * 4 + (category + 1)) * width + (month - low)
    totals = np.bincount(key, weights=points.astype(np.float64))
    present = np.flatnonzero(totals)
    names = ["issued", *OUTFLOWS]
    return pl.DataFrame(
        {
            "cohort": (present // (4 * width) + low).astype(np.int32),
            "category": [names[c] for c in (present // width) % 4],
            "month": (present % width + low).astype(np.int32),
            "points": np.rint(totals[present]).astype(np.int64),
        }
    )


# --- development and hazards -----------------------------------------------------------------


def _development(flows: pl.DataFrame, cohorts: pl.DataFrame, last_month: int) -> pl.DataFrame:
    """Outflows by cohort and age for the complete months, with what was outstanding."""
    if cohorts.is_empty():
        return pl.DataFrame(
            schema={
                "cohort": pl.Int32,
                "age": pl.Int32,
                "outstanding_start": pl.Int64,
                "redeemed": pl.Int64,
                "expired": pl.Int64,
                "reversed": pl.Int64,
                "outstanding_end": pl.Int64,
                "cum_redeemed_share": pl.Float64,
                "cum_expired_share": pl.Float64,
            }
        )
    first = int(cohorts["cohort"].min())
    ages = pl.DataFrame({"age": pl.int_range(0, max(last_month - first, 0) + 1, eager=True)})
    grid = (
        cohorts.select("cohort", "issued", "net_issued")
        .join(ages, how="cross")
        .filter(pl.col("cohort") + pl.col("age") <= last_month)
        .with_columns(pl.col("age").cast(pl.Int32))
    )
    outflows = (
        flows.filter(pl.col("category") != "issued")
        .with_columns(
            (pl.col("month") - pl.col("cohort")).clip(lower_bound=0).cast(pl.Int32).alias("age")
        )
        .pivot(
            "category",
            on_columns=list(OUTFLOWS),
            index=["cohort", "age"],
            values="points",
            aggregate_function="sum",
        )
    )
    dev = (
        grid.join(outflows, on=["cohort", "age"], how="left")
        .with_columns(pl.col(*OUTFLOWS).fill_null(0).cast(pl.Int64))
        .sort("cohort", "age")
    )
    # Reversals reduce what was issued, so the outstanding line starts from the net issue.
    spent = (pl.col("redeemed") + pl.col("expired")).cum_sum().over("cohort", order_by="age")
    dev = dev.with_columns((pl.col("net_issued") - spent).alias("outstanding_end")).with_columns(
        (pl.col("outstanding_end") + pl.col("redeemed") + pl.col("expired")).alias(
            "outstanding_start"
        ),
        _share(
            pl.col("redeemed").cum_sum().over("cohort", order_by="age"), pl.col("net_issued")
        ).alias("cum_redeemed_share"),
        _share(
            pl.col("expired").cum_sum().over("cohort", order_by="age"), pl.col("net_issued")
        ).alias("cum_expired_share"),
    )
    return dev.select(
        "cohort",
        "age",
        "outstanding_start",
        "redeemed",
        "expired",
        "reversed",
        "outstanding_end",
        "cum_redeemed_share",
        "cum_expired_share",
    )


def _hazards(development: pl.DataFrame) -> pl.DataFrame:
    pooled = (
        development.group_by("age")
        .agg(
            pl.len().cast(pl.Int64).alias("cohorts"),
            pl.col("outstanding_start").clip(lower_bound=0).sum().alias("exposure"),
            pl.col("redeemed").sum(),
            pl.col("expired").sum(),
        )
        .sort("age")
    )
    largest = pooled["exposure"].max() if pooled.height else 0
    return pooled.with_columns(
        _share(pl.col("redeemed"), pl.col("exposure")).clip(0.0, 1.0).alias("redemption_hazard"),
        _share(pl.col("expired"), pl.col("exposure")).clip(0.0, 1.0).alias("expiry_hazard"),
        (pl.col("exposure") >= THIN_EXPOSURE * (largest or 0)).alias("used")
        & (pl.col("exposure") > 0),
    )


def _hazard_curves(hazards: pl.DataFrame, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Redemption and expiry hazards by age 0 .. (largest age + horizon), thin ages and
    ages beyond the history taking the last well-observed age's values."""
    size = (int(hazards["age"].max()) + 1 if hazards.height else 1) + horizon + 1
    red = np.full(size, np.nan)
    exp = np.full(size, np.nan)
    used = hazards.filter(pl.col("used"))
    ages = used["age"].to_numpy()
    red[ages] = used["redemption_hazard"].to_numpy()
    exp[ages] = used["expiry_hazard"].to_numpy()
    last_r = last_e = 0.0
    for i in range(size):  # carry forward (size is a few hundred at most)
        if np.isnan(red[i]):
            red[i], exp[i] = last_r, last_e
        else:
            last_r, last_e = red[i], exp[i]
    total = red + exp
    over = total > 1.0
    red[over] /= total[over]
    exp[over] /= total[over]
    return red, exp


def _lot_buckets(lots: Frame, as_of: date, time_zone: str | None) -> pl.DataFrame:
    """``cohort, expiry (last usable month or null), points`` from the lots' remaining."""
    lazy = lots.lazy()
    schema = require_columns(lazy, ("earned_at", "expires_at", "remaining"), "lots")
    local_date(schema, "earned_at", time_zone)  # a clear error for a column of no time
    last = _last_usable(schema, time_zone)
    names = ["earned_at", "expires_at", "remaining"]
    frame = lots.select(names) if isinstance(lots, pl.DataFrame) else lazy.select(names).collect()
    positive = (frame["remaining"] > 0).fill_null(False).to_numpy()
    frame = frame.filter(pl.Series(positive))  # (a few lots still hold points)
    earned, known = local_days(frame["earned_at"], time_zone)
    counted = earned <= day_number(as_of)
    if known is not None:
        counted &= known
    if not counted.all():
        frame = frame.filter(pl.Series(counted))
        earned = earned[counted]
    if isinstance(schema["expires_at"], pl.Datetime):
        moved = frame.select(pl.col("expires_at") - _ONE_US).to_series()
        zone = time_zone if time_zone is not None else schema["expires_at"].time_zone
        usable_day, expiring = local_days(moved, zone)
    else:
        usable = frame.select(last.cast(pl.Int32)).to_series()
        expiring = usable.is_not_null().to_numpy()
        usable_day = usable.fill_null(0).to_numpy()
    cohort = month_numbers(earned).astype(np.int64)
    expiry = month_numbers(usable_day).astype(np.int64)
    if expiring is None:
        expiring = np.ones(cohort.size, dtype=bool)
    remaining = frame["remaining"].cast(pl.Int64).to_numpy()
    if cohort.size == 0:
        return pl.DataFrame(schema={"cohort": pl.Int32, "expiry": pl.Int32, "points": pl.Int64})
    # one bucket per (cohort, expiry), "never" (null) first within a cohort
    low = int(cohort.min())
    first = int(expiry[expiring].min()) if expiring.any() else 0
    width = (int(expiry[expiring].max()) - first + 2) if expiring.any() else 1
    key = (cohort - low) * width + np.where(expiring, expiry - first + 1, 0)
    totals = np.bincount(key, weights=remaining.astype(np.float64))
    counts = np.bincount(key)
    present = np.flatnonzero(counts)
    slot = present % width
    return pl.DataFrame(
        {
            "cohort": (present // width + low).astype(np.int32),
            "expiry": nullable((slot - 1 + first).astype(np.int32), slot > 0),
            "points": np.rint(totals[present]).astype(np.int64),
        }
    )


def _last_usable(schema: pl.Schema, time_zone: str | None) -> pl.Expr:
    """The last day (Date) a lot's points can be used: ``expires_at`` minus a microsecond."""
    dtype = schema["expires_at"]
    if dtype == pl.Date:
        return pl.col("expires_at") - pl.duration(days=1)
    moved = pl.col("expires_at") - _ONE_US
    if isinstance(dtype, pl.Datetime) and time_zone is not None:
        zoned = moved if dtype.time_zone else moved.dt.replace_time_zone("UTC")
        moved = zoned.dt.convert_time_zone(time_zone)
    return moved.dt.date()


# --- small helpers ---------------------------------------------------------------------------


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return pl.when(whole != 0).then(part / whole).otherwise(None).cast(pl.Float64)


def _rate(redeemed: pl.Expr, expired: pl.Expr, unresolved: pl.Expr) -> pl.Expr:
    resolved = redeemed + expired
    return (
        pl.when(resolved > 0)
        .then((redeemed + unresolved * redeemed / resolved) / (resolved + unresolved))
        .otherwise(None)
    )


def _label(month: int) -> str:
    year, index = divmod(month, 12)
    return f"{year:04d}-{index + 1:02d}"


def _month_from_label(label: pl.Expr) -> pl.Expr:
    year = label.str.slice(0, 4).cast(pl.Int32)
    month = label.str.slice(5, 2).cast(pl.Int32)
    return (year * 12 + month - 1).cast(pl.Int32)


def _triangle(development: pl.DataFrame, values: str) -> pl.DataFrame:
    if development.is_empty():
        return pl.DataFrame(schema={"cohort": pl.String})
    top = int(development["age"].max())
    columns = [str(a) for a in range(top + 1)]
    return (
        development.with_columns(pl.col("age").cast(pl.String))
        .pivot("age", on_columns=columns, index="cohort", values=values, aggregate_function="first")
        .sort("cohort")
        .select("cohort", *columns)
    )
