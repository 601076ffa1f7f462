"""Tiers: distribution over time, migration, members near the next tier, time to upgrade,
spend and retention by tier.

Inputs
------
- ``tier_history``: one row per tier change: ``member_id`` (String), ``at`` (Datetime),
  ``tier`` (String: the tier held from ``at`` on). The rules announce changes as
  ``tier.changed`` notices (upgrades on purchases, reviews on anniversaries, changes on
  returns); purchase and return ledger entries carry ``tier_before``/``tier_after`` too.
  Before a member's first row they hold ``entry_tier`` (if given; else they are not
  counted until their first row).
- ``members`` (optional): ``member_id``, ``enrolled_at`` (Datetime); members count from
  the day they enrolled.
- ``transactions``: as in ``memberlab.analytics.rfm``.
- ``tiers``: the tier codes in ascending order (entry tier first), e.g.
  ``["sprout", "green_leaf", "golden_bud", "imperial"]``; optional, orders the output and
  tells upgrades from downgrades.

A tier "on a day" is the tier at the end of that day (changes on that day included);
a month's figure is the tier at the end of its last day. Days are calendar days of the
timestamps in their own zone, or in ``time_zone``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from memberlab.analytics.columnar import (
    MemberCodes,
    first_index,
    group_max,
    local_days,
    masked,
    month_numbers,
    nullable,
    small_codes,
)
from memberlab.analytics.rfm import (
    DayLike,
    Frame,
    Transactions,
    add_months,
    as_day,
    day_number,
    day_of,
    distinct_pairs,
    local_date,
    month_label,
    month_number,
    purchase_rows,
    require_columns,
)
from memberlab.core.errors import FieldError, InvalidInput

__all__ = [
    "NO_TIER",
    "TierMigration",
    "members_near_next_tier",
    "tier_at",
    "tier_distribution",
    "tier_migration",
    "tier_performance",
    "tier_progress",
    "time_to_upgrade",
]

NO_TIER = "none"  # "from" side of a migration: not (yet) a member on the first day


@dataclass(frozen=True)
class TierMigration:
    """Tiers on ``date_a`` against tiers on ``date_b``.

    ``long``: ``from_tier, to_tier, members, share`` (of the ``from`` tier) and, when the
    tier order is known, ``move`` (``up``, ``same``, ``down``, ``new``); ``wide``: one row
    per ``from_tier`` with its ``members`` and a column of counts per ``to`` tier;
    ``moves``: members per ``move``.
    """

    date_a: date
    date_b: date
    long: pl.DataFrame
    wide: pl.DataFrame
    moves: pl.DataFrame


def tier_at(
    tier_history: Frame,
    *,
    on: DayLike,
    members: Frame | None = None,
    entry_tier: str | None = None,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Each member's tier at the end of day ``on``: ``member_id, tier``."""
    day = day_number(as_day(on, "on"))
    spells = _Spells.of(tier_history, members, entry_tier, time_zone)
    tier, held = spells.at(day)
    chosen = spells.members.by_id
    chosen = chosen[held[chosen]]
    return pl.DataFrame(
        {
            "member_id": spells.members.ids_of(chosen),
            "tier": spells.names.gather(tier[chosen]),
        }
    )


def tier_distribution(
    tier_history: Frame,
    *,
    members: Frame | None = None,
    entry_tier: str | None = None,
    tiers: Sequence[str] | None = None,
    start: DayLike | None = None,
    end: DayLike | None = None,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Members per tier at the end of each month from ``start`` to ``end`` (default: the
    first and last months with a change or an enrolment).

    Returns ``month (YYYY-MM), month_end (Date), tier, members, share`` (share of the
    members counted that month), one row per month and tier (zeros included).
    """
    entry = _entry(entry_tier, tiers)
    spells = _Spells.of(tier_history, members, entry, time_zone)
    if spells.code.size == 0:
        return pl.DataFrame(
            schema={
                "month": pl.String,
                "month_end": pl.Date,
                "tier": pl.String,
                "members": pl.Int64,
                "share": pl.Float64,
            }
        )
    # A spell adds one member to its tier from the month it starts and removes it from the
    # month it ends (the next change), so a running sum over months gives the month ends.
    deltas = spells.deltas()
    first = (
        month_number(as_day(start, "start")) if start is not None else int(deltas["month"].min())
    )
    last = month_number(as_day(end, "end")) if end is not None else int(deltas["month"].max())
    codes = _ordered(spells.names.to_list(), tiers)
    months = pl.DataFrame({"month": pl.int_range(first, last + 1, eager=True).cast(pl.Int32)})
    grid = pl.DataFrame({"tier": codes}).join(months, how="cross")
    before = (
        deltas.filter(pl.col("month") < first).group_by("tier").agg(pl.col("d").sum().alias("b"))
    )
    frame = (
        grid.join(deltas, on=["tier", "month"], how="left")
        .join(before, on="tier", how="left")
        .with_columns(pl.col("d").fill_null(0), pl.col("b").fill_null(0))
        .sort("tier", "month")
        .with_columns(
            (pl.col("d").cum_sum().over("tier", order_by="month") + pl.col("b"))
            .cast(pl.Int64)
            .alias("members")
        )
        .with_columns(
            (pl.col("members") / pl.col("members").sum().over("month"))
            .fill_nan(0.0)
            .alias("share"),
            pl.col("tier").replace_strict({c: i for i, c in enumerate(codes)}).alias("_order"),
        )
        .sort("month", "_order")
    )
    return frame.select(
        month_label(pl.col("month")).alias("month"),
        _month_end(pl.col("month")).alias("month_end"),
        "tier",
        "members",
        "share",
    )


def tier_migration(
    tier_history: Frame,
    *,
    date_a: DayLike,
    date_b: DayLike,
    members: Frame | None = None,
    entry_tier: str | None = None,
    tiers: Sequence[str] | None = None,
    time_zone: str | None = None,
) -> TierMigration:
    """The migration matrix of tiers between the ends of two days (``date_b`` after
    ``date_a``). Members not counted on ``date_a`` start in ``"none"``."""
    a, b = as_day(date_a, "date_a"), as_day(date_b, "date_b")
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
    entry = _entry(entry_tier, tiers)
    spells = _Spells.of(tier_history, members, entry, time_zone)
    to_tier, counted = spells.at(day_number(b))
    from_tier, known = spells.at(day_number(a))
    width = spells.names.len() + 1
    pair = np.where(known, from_tier + 1, 0) * width + to_tier  # 0: "none" before date_a
    sizes = np.bincount(pair[counted], minlength=width * width)
    present = np.flatnonzero(sizes)
    names = pl.concat([pl.Series([NO_TIER]), spells.names])
    moved = pl.DataFrame(
        {
            "from_tier": names.gather(present // width),
            "to_tier": spells.names.gather(present % width),
            "members": sizes[present].astype(np.int64),
        }
    )
    seen = set(moved["to_tier"].to_list()) | set(moved["from_tier"].to_list()) - {NO_TIER}
    codes = _ordered(list(seen), tiers)
    grid = pl.DataFrame({"from_tier": [NO_TIER, *codes]}).join(
        pl.DataFrame({"to_tier": codes}), how="cross"
    )
    long = (
        grid.join(moved, on=["from_tier", "to_tier"], how="left", maintain_order="left")
        .with_columns(pl.col("members").fill_null(0))
        .with_columns(
            (pl.col("members") / pl.col("members").sum().over("from_tier"))
            .fill_nan(0.0)
            .alias("share")
        )
    )
    if tiers is not None:
        rank = {c: i for i, c in enumerate(codes)}
        rank_from = pl.col("from_tier").replace_strict(rank, default=None, return_dtype=pl.Int32)
        rank_to = pl.col("to_tier").replace_strict(rank, default=None, return_dtype=pl.Int32)
        long = long.with_columns(
            pl.when(pl.col("from_tier") == NO_TIER)
            .then(pl.lit("new"))
            .when(rank_to > rank_from)
            .then(pl.lit("up"))
            .when(rank_to < rank_from)
            .then(pl.lit("down"))
            .otherwise(pl.lit("same"))
            .alias("move")
        )
        moves = (
            long.group_by("move")
            .agg(pl.col("members").sum())
            .join(
                pl.DataFrame({"move": ["new", "up", "same", "down"]}).with_row_index("_o"),
                on="move",
            )
            .sort("_o")
            .drop("_o")
        )
    else:
        moves = pl.DataFrame(schema={"move": pl.String, "members": pl.Int64})
    wide = long.pivot(
        "to_tier", on_columns=codes, index="from_tier", values="members", aggregate_function="sum"
    )
    wide = wide.with_columns(pl.sum_horizontal(codes).alias("members")).select(
        "from_tier", "members", *codes
    )
    return TierMigration(date_a=a, date_b=b, long=long, wide=wide, moves=moves)


def tier_progress(
    transactions: Transactions,
    thresholds: Sequence[tuple[str, float]],
    *,
    as_of: DayLike,
    current: Frame | None = None,
    per_yuan: float = 1.0,
    per_order: float = 5.0,
    window_months: int = 12,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Each member's qualifying growth over the last ``window_months`` months and the gap to
    the next tier.

    ``thresholds``: ``(tier code, threshold)`` pairs, ascending (invitation-only tiers left
    out). Growth is estimated from the transactions as in the teahouse sample program:
    ``per_yuan`` per yuan of net spend (rounded down once over the window; the program
    rounds each order, which can give up to a point per order less) plus ``per_order`` per
    purchase order, over the days after ``as_of`` minus ``window_months`` months up to
    ``as_of``. ``current`` (``member_id, tier``, e.g. the members frame) gives the tier
    members hold; without it, the tier their growth earns.

    Returns ``member_id, growth, tier, next_tier, next_threshold, gap, progress`` (growth
    as a share of the next threshold), sorted by ``member_id``; ``next_tier`` is null at
    the top (or for a tier not in ``thresholds``).
    """
    return _progress(
        transactions,
        thresholds,
        as_of=as_of,
        current=current,
        per_yuan=per_yuan,
        per_order=per_order,
        window_months=window_months,
        time_zone=time_zone,
    ).sort("member_id")


def _progress(
    transactions: Transactions,
    thresholds: Sequence[tuple[str, float]],
    *,
    as_of: DayLike,
    current: Frame | None,
    per_yuan: float,
    per_order: float,
    window_months: int,
    time_zone: str | None,
) -> pl.DataFrame:
    """``tier_progress`` in no particular row order."""
    pairs = _check_thresholds(thresholds)
    day = as_day(as_of, "as_of")
    since = day_number(add_months(day, -window_months))
    rows = purchase_rows(transactions, until=day, time_zone=time_zone)
    n = rows.members.n
    window = rows.day > since
    bought = window & rows.is_purchase
    if rows.order is not None:
        orders = rows.distinct_orders(bought)
    else:
        pair_member, pair_day = rows.purchase_days
        orders = np.bincount(pair_member[pair_day > since], minlength=n)
    seen = np.bincount(rows.codes[window], minlength=n) > 0
    chosen = np.flatnonzero(seen)
    net = np.bincount(*masked(window, rows.codes, rows.net), minlength=n)
    growth = (
        pl.DataFrame(
            {
                "member_id": rows.members.ids_of(chosen),
                "_net": net[chosen],
                "_orders": orders[chosen].astype(np.int32),
            }
        )
        .lazy()
        .with_columns(pl.col("_net").round(2))
    )
    growth = growth.select(
        "member_id",
        ((pl.col("_net") * per_yuan).floor() + pl.col("_orders") * per_order)
        .clip(lower_bound=0.0)
        .alias("growth"),
    )
    codes = [c for c, _ in pairs]
    values = [v for _, v in pairs]
    if current is not None:
        held = current.lazy()
        require_columns(held, ("member_id", "tier"), "current")
        held = held.select(pl.col("member_id").cast(pl.String), pl.col("tier").cast(pl.String))
        frame = held.join(growth, on="member_id", how="full", coalesce=True).with_columns(
            pl.col("growth").fill_null(0.0)
        )
        frame = frame.with_columns(pl.col("tier").fill_null(codes[0]))
        index = pl.col("tier").replace_strict(
            {c: i for i, c in enumerate(codes)}, default=None, return_dtype=pl.Int32
        )
    else:
        frame = growth
        index = pl.sum_horizontal([(pl.col("growth") >= v).cast(pl.Int32) for v in values]) - 1
        index = index.clip(lower_bound=0)
        frame = frame.with_columns(
            index.replace_strict(dict(enumerate(codes)), return_dtype=pl.String).alias("tier")
        )
    nxt = index + 1
    return (
        frame.with_columns(
            nxt.replace_strict(dict(enumerate(codes)), default=None, return_dtype=pl.String).alias(
                "next_tier"
            ),
            nxt.replace_strict(
                dict(enumerate(values)), default=None, return_dtype=pl.Float64
            ).alias("next_threshold"),
        )
        .with_columns(
            (pl.col("next_threshold") - pl.col("growth")).alias("gap"),
            (pl.col("growth") / pl.col("next_threshold")).alias("progress"),
        )
        .select("member_id", "growth", "tier", "next_tier", "next_threshold", "gap", "progress")
        .collect()
    )


def members_near_next_tier(
    transactions: Transactions,
    thresholds: Sequence[tuple[str, float]],
    *,
    as_of: DayLike,
    within: float = 0.2,
    current: Frame | None = None,
    per_yuan: float = 1.0,
    per_order: float = 5.0,
    window_months: int = 12,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """The rows of ``tier_progress`` with a next tier and a gap above 0 and at most
    ``within`` (a share, 0.2 = 20 %) of its threshold, smallest gap first."""
    if not 0 < within <= 1:
        raise InvalidInput(errors=[FieldError("within", "analytics.v.share", {"value": within})])
    progress = _progress(
        transactions,
        thresholds,
        as_of=as_of,
        current=current,
        per_yuan=per_yuan,
        per_order=per_order,
        window_months=window_months,
        time_zone=time_zone,
    )
    return progress.filter(
        (pl.col("gap") > 0) & (pl.col("gap") <= within * pl.col("next_threshold"))
    ).sort("gap", "member_id")


def time_to_upgrade(
    tier_history: Frame,
    members: Frame,
    *,
    tiers: Sequence[str] | None = None,
    entry_tier: str | None = None,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Days from enrolment to first reaching each tier.

    With ``tiers`` (ascending), reaching a tier means holding it *or a higher one* for the
    first time (a jump over a tier reaches it too); without, holding exactly it. The entry
    tier is left out. Returns ``tier, reached, share_reached`` (of the members in
    ``members``), ``days_mean, days_p10, days_p25, days_median, days_p75, days_p90`` (whole
    days; 0 = on the day of enrolment).
    """
    entry = _entry(entry_tier, tiers)
    lazy = members.lazy()
    schema = require_columns(lazy, ("member_id", "enrolled_at"), "members")
    local_date(schema, "enrolled_at", time_zone)  # a clear error for a column of no time
    enrolled = (
        members.select("member_id", "enrolled_at")
        if isinstance(members, pl.DataFrame)
        else lazy.select("member_id", "enrolled_at").collect()
    )
    day, known = local_days(enrolled["enrolled_at"], time_zone)
    joined = pl.DataFrame(
        {"member_id": enrolled["member_id"].cast(pl.String), "e": nullable(day, known)}
    ).unique("member_id", keep="first")
    population = joined.height
    joined = joined.lazy()
    changes = _history(tier_history, time_zone)
    if tiers is not None:
        rank = {c: i for i, c in enumerate(tiers)}
        ranked = changes.with_columns(
            pl.col("tier").replace_strict(rank, default=None, return_dtype=pl.Int32).alias("rank")
        ).drop_nulls("rank")
        reach = (
            ranked.sort("member_id", "day", "order")
            .with_columns(pl.col("rank").cum_max().over("member_id").alias("best"))
            .group_by("member_id", "best")
            .agg(pl.col("day").min())
            .collect()
        )
        parts = [
            reach.filter(pl.col("best") >= i)
            .group_by("member_id")
            .agg(pl.col("day").min())
            .with_columns(pl.lit(code).alias("tier"))
            for i, code in enumerate(tiers)
        ]
        first = pl.concat(parts).lazy()
        codes = list(tiers)
    else:
        first = changes.group_by("member_id", "tier").agg(pl.col("day").min())
        codes = _ordered(changes.select("tier").unique().collect()["tier"].to_list(), None)
    codes = [c for c in codes if c != entry]
    days = (
        first.join(joined, on="member_id", how="inner")
        .with_columns((pl.col("day") - pl.col("e")).clip(lower_bound=0).alias("days"))
        .group_by("tier")
        .agg(
            pl.len().cast(pl.Int64).alias("reached"),
            pl.col("days").mean().alias("days_mean"),
            *(
                pl.col("days").quantile(q, interpolation="linear").alias(name)
                for q, name in (
                    (0.1, "days_p10"),
                    (0.25, "days_p25"),
                    (0.5, "days_median"),
                    (0.75, "days_p75"),
                    (0.9, "days_p90"),
                )
            ),
        )
        .collect()
    )
    return (
        pl.DataFrame({"tier": codes})
        .join(days, on="tier", how="left", maintain_order="left")
        .with_columns(pl.col("reached").fill_null(0))
        .with_columns((pl.col("reached") / max(population, 1)).alias("share_reached"))
        .select(
            "tier",
            "reached",
            "share_reached",
            "days_mean",
            "days_p10",
            "days_p25",
            "days_median",
            "days_p75",
            "days_p90",
        )
    )


def tier_performance(
    transactions: Transactions,
    tier_history: Frame,
    *,
    as_of: DayLike,
    window_months: int = 12,
    members: Frame | None = None,
    entry_tier: str | None = None,
    tiers: Sequence[str] | None = None,
    time_zone: str | None = None,
) -> pl.DataFrame:
    """Spend and retention by tier, looking forward from a starting day.

    The starting day is ``as_of`` minus ``window_months`` months; each member counts in
    the tier they held at its end. ``active_before``: share with a purchase in the
    ``window_months`` months up to the starting day; ``retention``: share with a purchase
    after it, up to ``as_of``; ``spend_per_member`` (net yuan) and
    ``purchase_days_per_member`` over that same later period, and ``spend_per_active``
    (per member who bought). One row per tier: ``tier, members, active_before, retention,
    spend_per_member, spend_per_active, purchase_days_per_member``.
    """
    end = as_day(as_of, "as_of")
    start = add_months(end, -window_months)
    before = day_number(add_months(start, -window_months))
    entry = _entry(entry_tier, tiers)
    spells = _Spells.of(tier_history, members, entry, time_zone)
    s = day_number(start)
    tier, held = spells.at(s)
    rows = purchase_rows(transactions, until=end, time_zone=time_zone, orders=False)
    n = rows.members.n
    after = rows.day > s
    earlier = (rows.day > before) & ~after
    bought_before = np.bincount(rows.codes[earlier & rows.is_purchase], minlength=n) > 0
    bought_after = np.bincount(rows.codes[after & rows.is_purchase], minlength=n) > 0
    spend = np.bincount(*masked(after, rows.codes, rows.net), minlength=n)
    if "purchase_days" in rows.cache:  # worked out already (prepared transactions)
        pair_member, pair_day = rows.purchase_days
        pair_member = pair_member[pair_day > s]
    else:
        later = after & rows.is_purchase
        pair_member, _ = distinct_pairs(rows.codes[later], rows.day[later])
    days = np.bincount(pair_member, minlength=n)
    # the members holding a tier at the start and their figures (the sums below are exact:
    # the order of the members does not matter)
    chosen = np.flatnonzero(held)
    own = rows.members.codes_in(spells.members)[chosen]  # -1: no transaction
    found = own >= 0
    at = np.maximum(own, 0)
    frame = (
        pl.DataFrame(
            {
                "tier": spells.names.gather(tier[chosen]),
                "bought_before": found & bought_before[at],
                "bought_after": found & bought_after[at],
                "spend": np.where(found, spend[at], 0.0),
                "days": np.where(found, days[at], 0).astype(np.int32),
            }
        )
        .lazy()
        # spend to the fen, then summed exactly in fen: the means do not depend on the
        # order of the members (a float sum of a million amounts would, in the last bit)
        .with_columns((pl.col("spend").round(2) * 100).round().cast(pl.Int64).alias("fen"))
        .group_by("tier")
        .agg(
            pl.len().cast(pl.Int64).alias("members"),
            pl.col("bought_before").mean().alias("active_before"),
            pl.col("bought_after").mean().alias("retention"),
            (pl.col("fen").sum() / (100 * pl.len().cast(pl.Int64))).alias("spend_per_member"),
            (pl.col("fen").sum() / (100 * pl.col("bought_after").sum().cast(pl.Int64))).alias(
                "spend_per_active"
            ),
            pl.col("days").mean().alias("purchase_days_per_member"),
        )
        .collect()
    )
    codes = _ordered(frame["tier"].to_list(), tiers)
    return (
        pl.DataFrame({"tier": codes})
        .join(frame, on="tier", how="inner", maintain_order="left")
        .with_columns(pl.col("spend_per_active").fill_nan(None))
    )


# --- helpers -------------------------------------------------------------------------------


def _history(tier_history: Frame, time_zone: str | None) -> pl.LazyFrame:
    """``member_id, day, order, tier``: the changes, ``order`` keeping same-day changes in
    time order."""
    lazy = tier_history.lazy()
    schema = require_columns(lazy, ("member_id", "at", "tier"), "tier_history")
    return (
        lazy.select(
            pl.col("member_id").cast(pl.String),
            day_of(schema, "at", time_zone).alias("day"),
            pl.col("at").rank("ordinal").cast(pl.Int64).alias("order"),
            pl.col("tier").cast(pl.String),
        )
        .drop_nulls()
        .with_columns(pl.col("order") + 1)
    )


@dataclass
class _Spells:
    """The tier changes and, with ``members`` and an entry tier, each member's enrolment in
    the entry tier, as arrays ordered by member, day and time (an enrolment first on its
    day)."""

    members: MemberCodes
    code: np.ndarray  # member code
    day: np.ndarray  # int32
    tier: np.ndarray  # int64, index in ``names``
    names: pl.Series  # the tier codes (String)

    @classmethod
    def of(
        cls,
        tier_history: Frame,
        members: Frame | None,
        entry_tier: str | None,
        time_zone: str | None,
    ) -> _Spells:
        changes = _history(tier_history, time_zone).collect()
        ids, day, order, tier = (changes[c] for c in ("member_id", "day", "order", "tier"))
        day, order = day.to_numpy(), order.to_numpy()
        entries = 0
        if members is not None and entry_tier is not None:
            lazy = members.lazy()
            schema = require_columns(lazy, ("member_id", "enrolled_at"), "members")
            local_date(schema, "enrolled_at", time_zone)  # a clear error for no time
            joined = (
                members.select("member_id", "enrolled_at")
                if isinstance(members, pl.DataFrame)
                else lazy.select("member_id", "enrolled_at").collect()
            )
            member = joined["member_id"].cast(pl.String)
            enrolled, known = local_days(joined["enrolled_at"], time_zone)
            if member.null_count():
                present = member.is_not_null().to_numpy()
                known = present if known is None else known & present
            if known is not None:
                member, enrolled = member.filter(pl.Series(known)), enrolled[known]
            entries = member.len()
            ids = pl.concat([member, ids])
            day = np.concatenate([enrolled, day])
            order = np.concatenate([np.zeros(entries, dtype=order.dtype), order])
            tier = pl.concat([pl.Series([entry_tier] * entries, dtype=pl.String), tier])
        codes = MemberCodes.of(ids)
        keep = np.ones(codes.codes.size, dtype=bool)
        if entries:  # one enrolment per member: the first
            first = first_index(codes.codes[:entries], codes.n)
            keep[:entries] = False
            keep[first[first >= 0]] = True
        index, names = small_codes(tier)
        rows = np.flatnonzero(keep)
        order = rows[np.lexsort((order[rows], day[rows], codes.codes[rows]))]
        return cls(codes, codes.codes[order], day[order].astype(np.int32), index[order], names)

    def at(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Per member code, the tier (index) held at the end of ``day``, and whether one is
        (the member's last spell by then)."""
        upto = self.day <= day
        last, held = group_max(self.code[upto], np.flatnonzero(upto), self.members.n)
        return self.tier[np.where(held, last, 0)] if self.tier.size else last, held

    def deltas(self) -> pl.DataFrame:
        """``tier, month, d``: members starting (+1) and ending (-1) a spell in each month,
        for every tier and month with a spell starting or ending in it."""
        follows = np.r_[self.code[1:] == self.code[:-1], False]
        until = np.r_[self.day[1:], 0][follows]
        tier = np.concatenate([self.tier, self.tier[follows]])
        month = month_numbers(np.concatenate([self.day, until]).astype(np.int32)).astype(np.int64)
        step = np.r_[np.ones(self.day.size), -np.ones(until.size)]
        low = int(month.min())
        width = int(month.max()) - low + 1
        key = tier * width + (month - low)
        counts = np.bincount(key)
        total = np.bincount(key, weights=step)
        present = np.flatnonzero(counts)
        return pl.DataFrame(
            {
                "tier": self.names.gather(present // width),
                "month": (present % width + low).astype(np.int32),
                "d": np.rint(total[present]).astype(np.int32),
            }
        )


def _entry(entry_tier: str | None, tiers: Sequence[str] | None) -> str | None:
    if entry_tier is not None:
        return entry_tier
    return tiers[0] if tiers else None


def _ordered(codes: Sequence[str], tiers: Sequence[str] | None) -> list[str]:
    """All of ``tiers`` in their order, then any other code present, sorted."""
    present = [c for c in codes if c is not None]
    if tiers is None:
        return sorted(set(present))
    return list(tiers) + sorted(set(present) - set(tiers))


def _month_end(month: pl.Expr) -> pl.Expr:
    first = pl.date((month // 12).cast(pl.Int32), (month % 12 + 1).cast(pl.Int8), 1)
    return first.dt.month_end()


def _check_thresholds(thresholds: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    pairs = [(str(code), float(value)) for code, value in thresholds]
    values = [v for _, v in pairs]
    if not pairs or any(b <= a for a, b in itertools.pairwise(values)):
        raise InvalidInput(
            errors=[
                FieldError(
                    "thresholds",
                    "analytics.v.tier_thresholds",
                    {"value": ", ".join(f"{c}={v:g}" for c, v in pairs)},
                )
            ]
        )
    return pairs
