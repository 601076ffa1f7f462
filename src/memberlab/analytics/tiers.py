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

import polars as pl

from memberlab.analytics.rfm import (
    DayLike,
    Frame,
    add_months,
    as_day,
    day_number,
    day_of,
    distinct_count,
    month_label,
    month_number,
    month_of_day,
    purchases,
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
    spells = _spells(tier_history, members, entry_tier, time_zone)
    return (
        spells.filter(pl.col("day") <= day)
        .group_by("member_id")
        .agg(pl.col("tier").sort_by("day", "order").last())
        .sort("member_id")
        .collect()
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
    spells = _spells(tier_history, members, entry, time_zone).collect()
    if spells.is_empty():
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
    spells = spells.sort("member_id", "day", "order").with_columns(
        pl.col("day").shift(-1).over("member_id").alias("until")
    )
    starts = spells.select("tier", month_of_day(pl.col("day")).alias("month"), pl.lit(1).alias("d"))
    ends = spells.drop_nulls("until").select(
        "tier", month_of_day(pl.col("until")).alias("month"), pl.lit(-1).alias("d")
    )
    deltas = pl.concat([starts, ends]).group_by("tier", "month").agg(pl.col("d").sum())
    first = (
        month_number(as_day(start, "start")) if start is not None else int(deltas["month"].min())
    )
    last = month_number(as_day(end, "end")) if end is not None else int(deltas["month"].max())
    codes = _ordered(spells["tier"].unique().to_list(), tiers)
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
    spells = _spells(tier_history, members, entry, time_zone).collect().lazy()

    def at(day: date, name: str) -> pl.LazyFrame:
        return (
            spells.filter(pl.col("day") <= day_number(day))
            .group_by("member_id")
            .agg(pl.col("tier").sort_by("day", "order").last().alias(name))
        )

    moved = (
        at(b, "to_tier")
        .join(at(a, "from_tier"), on="member_id", how="left")
        .with_columns(pl.col("from_tier").fill_null(NO_TIER))
        .group_by("from_tier", "to_tier")
        .agg(pl.len().cast(pl.Int64).alias("members"))
        .collect()
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
    transactions: Frame,
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
    pairs = _check_thresholds(thresholds)
    day = as_day(as_of, "as_of")
    since = day_number(add_months(day, -window_months))
    rows = purchases(transactions, until=day, time_zone=time_zone).filter(pl.col("day") > since)
    has_orders = "order_id" in rows.collect_schema()
    order_key = pl.col("order_id").hash() if has_orders else pl.col("day").cast(pl.UInt64)
    growth = rows.group_by("member_id").agg(
        pl.col("net").sum().round(2).alias("_net"),
        distinct_count(pl.when(pl.col("is_purchase")).then(order_key)).alias("_orders"),
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
        .sort("member_id")
        .collect()
    )


def members_near_next_tier(
    transactions: Frame,
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
    progress = tier_progress(
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
    joined = lazy.select(
        pl.col("member_id").cast(pl.String), day_of(schema, "enrolled_at", time_zone).alias("e")
    ).unique("member_id", keep="first")
    population = joined.select(pl.len()).collect().item()
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
    transactions: Frame,
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
    held = tier_at(tier_history, on=start, members=members, entry_tier=entry, time_zone=time_zone)
    rows = purchases(transactions, until=end, time_zone=time_zone).filter(pl.col("day") > before)
    s = day_number(start)
    after = pl.col("day") > s
    per_member = rows.group_by("member_id").agg(
        (pl.col("is_purchase") & ~after).any().alias("bought_before"),
        (pl.col("is_purchase") & after).any().alias("bought_after"),
        pl.col("net").filter(after).sum().round(2).alias("spend"),
        distinct_count(pl.when(pl.col("is_purchase") & after).then(pl.col("day"))).alias("days"),
    )
    frame = (
        held.lazy()
        .join(per_member, on="member_id", how="left")
        .with_columns(
            pl.col("bought_before").fill_null(False),
            pl.col("bought_after").fill_null(False),
            pl.col("spend").fill_null(0.0),
            pl.col("days").fill_null(0),
        )
        .group_by("tier")
        .agg(
            pl.len().cast(pl.Int64).alias("members"),
            pl.col("bought_before").mean().alias("active_before"),
            pl.col("bought_after").mean().alias("retention"),
            pl.col("spend").mean().alias("spend_per_member"),
            (pl.col("spend").sum() / pl.col("bought_after").sum()).alias("spend_per_active"),
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


def _spells(
    tier_history: Frame,
    members: Frame | None,
    entry_tier: str | None,
    time_zone: str | None,
) -> pl.LazyFrame:
    """The changes plus, with ``members`` and an entry tier, each member's enrolment in
    the entry tier (``order`` 0, so a change on the enrolment day comes after it)."""
    changes = _history(tier_history, time_zone)
    if members is None or entry_tier is None:
        return changes
    lazy = members.lazy()
    schema = require_columns(lazy, ("member_id", "enrolled_at"), "members")
    joined = (
        lazy.select(
            pl.col("member_id").cast(pl.String),
            day_of(schema, "enrolled_at", time_zone).alias("day"),
            pl.lit(0, dtype=pl.Int64).alias("order"),
            pl.lit(entry_tier, dtype=pl.String).alias("tier"),
        )
        .drop_nulls()
        .unique("member_id", keep="first")
    )
    return pl.concat([joined, changes])


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
