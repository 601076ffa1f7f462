"""All of the member analytics on a whole client base: seconds per analysis and in total.

Target (issue 5, "Speed"): on 1,000,000 members and about 10,000,000 purchases, all of the
analytics together in at most 60 s on this 2-core machine:

- RFM: scores and segments as of the last day, segment sizes and value shares, movement
  between two dates 90 days apart;
- lifetime value: summary, BG/NBD and Gamma-Gamma fits, P(alive), expected purchases, CLV;
- churn: the gradient-boosting model trained, validated on a later period, and scored, on
  RFM, tier, points, redemption and experience features;
- cohorts: retention and revenue matrices by join month, first channel, first store, tier;
- tiers: distribution by month, migration over a year, members near the next tier, time to
  upgrade, spend and retention by tier;
- points: cohorts (issuance, redemption, breakage), the chain-ladder forecast, the IFRS 15
  deferred revenue.

The data are the demo world (``memberlab.datasets.world``) written once to
``bench/out/analytics-world-<members>-<seed>/`` as the store would hand them over: orders
(not lines), returns, members, survey responses. The world's files have no ledger and no
tier history (the engine writes those); running 10,000,000 purchases through the engine
is issue 3's benchmark and takes far longer than the analyses, so the ledger, the points
lots and the tier history are derived here, vectorised, from the teahouse program's main
rules: 1 point a yuan paid, points paid with at checkout, returns taking back what their
order earned, lots expiring at the end of the next calendar year (first in, first out);
growth of 1 a yuan plus 5 an order, upgrades within a calendar year at 800 and 2,500,
reviews each 1 January keeping a tier only with 600 or 2,000 of last year's growth. The
analyses' cost depends on the rows and their shape, which this reproduces; the figures
are not the program's exact balances.

The analyses run as a report running all of them would: the transactions are handed over
as one ``Prepared`` (their local days, member codes and amounts worked out by the first
analysis and shared by the others, let go before the points), and the IFRS 15 view reuses
the points cohorts.

Baseline, in the same run: one pass of Polars over the orders (count, sum and last day per
member), i.e. the floor of touching the data once; the ratio says how many such passes all
the analytics cost. Reading the Parquet files is timed apart. Peak memory is ``ru_maxrss``
(overall, and so far after each analysis); CPU seconds per analysis are printed beside the
wall-clock ones, as they vary less with the load of a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from common import OUT

from memberlab.analytics.churn import churn_model
from memberlab.analytics.clv import (
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    predict_purchases,
)
from memberlab.analytics.cohorts import cohort_matrices
from memberlab.analytics.columnar import Prepared
from memberlab.analytics.points import deferred_revenue, points_cohorts, points_forecast
from memberlab.analytics.rfm import rfm_table, segment_movement, segment_summary
from memberlab.analytics.summary import rfm_summary
from memberlab.analytics.tiers import (
    members_near_next_tier,
    tier_distribution,
    tier_migration,
    tier_performance,
    time_to_upgrade,
)
from memberlab.datasets.world import generate_world

TARGET_SECONDS = 60.0
TIMEZONE = "Asia/Shanghai"
TIERS = ["sprout", "green_leaf", "golden_bud"]
THRESHOLDS = (0, 800, 2500)  # growth within a calendar year to reach each tier
RETENTION = (0, 600, 2000)  # last year's growth needed to keep it at the review
GROWTH_PER_ORDER = 5
VALUE_PER_POINT = 0.01


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the data --------------------------------------------------------------------------------


def world_files(members: int, seed: int) -> Path:
    """The demo world as the store hands it over, plus the derived program history."""
    folder = OUT / f"analytics-world-{members}-{seed}"
    if (folder / "done").exists():
        return folder
    started = time.perf_counter()
    raw = folder / "raw"
    generate_world(raw, members=members, seed=seed)
    lines = pl.scan_parquet(raw / "transactions.parquet")
    orders = (
        lines.filter(pl.col("kind") == "purchase")
        .group_by("order_id")
        .agg(
            pl.col("member_id", "occurred_at", "channel", "store").first(),
            gross=pl.col("amount").sum(),
            points_used=pl.col("points_used").sum(),
        )
        .with_columns(amount=(pl.col("gross") - pl.col("points_used") * VALUE_PER_POINT))
        .sort("occurred_at", "order_id")
        .collect()
    )
    returns = (
        lines.filter(pl.col("kind") == "return")
        .group_by("return_id")
        .agg(pl.col("order_id", "member_id", "occurred_at", "channel", "store").first(),
             amount=pl.col("amount").sum())
        .sort("occurred_at", "return_id")
        .collect()
    )  # fmt: skip
    transactions = pl.concat(
        [
            orders.select("member_id", "order_id", "occurred_at", "amount", kind=pl.lit("purchase"),
                          channel="channel", store="store"),
            returns.select("member_id", "order_id", "occurred_at", "amount", kind=pl.lit("return"),
                           channel="channel", store="store"),
        ]
    ).sort("occurred_at")  # fmt: skip
    transactions.write_parquet(folder / "transactions.parquet")
    members_frame = pl.read_parquet(raw / "members.parquet").select(
        "member_id", "enrolled_at", "enrol_channel", "enrol_store", "city"
    )
    ledger, lots = points_history(orders, returns)
    tier_history = tier_changes(orders)
    tier_end = tier_history.group_by("member_id").agg(pl.col("tier").sort_by("at").last())
    members_frame.join(tier_end, on="member_id", how="left").with_columns(
        pl.col("tier").fill_null(TIERS[0])
    ).write_parquet(folder / "members.parquet")
    ledger.write_parquet(folder / "ledger.parquet")
    lots.write_parquet(folder / "lots.parquet")
    tier_history.write_parquet(folder / "tier_history.parquet")
    pl.read_parquet(raw / "responses.parquet").select(
        "member_id", "responded_at", "nps", "csat", "ces", "touchpoint", "channel", "store"
    ).write_parquet(folder / "responses.parquet")
    (folder / "done").write_text(f"{time.perf_counter() - started:.1f} s\n")
    return folder


def _year_end(year: pl.Expr) -> pl.Expr:
    """The last moment of a calendar year, local time."""
    return pl.datetime(year, 12, 31, 23, 59, 59, time_zone=TIMEZONE)


def points_history(
    orders: pl.DataFrame, returns: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ledger rows (member_id, at, kind, points) and lots, first in first out."""
    earned = orders.select(
        "member_id",
        "order_id",
        at="occurred_at",
        points=pl.col("amount").floor().cast(pl.Int64).clip(lower_bound=0),
        points_used=pl.col("points_used").cast(pl.Int64),
    )
    taken_back = returns.join(earned.select("order_id", "points"), on="order_id").select(
        "member_id",
        at="occurred_at",
        kind=pl.lit("return"),
        points=-pl.min_horizontal(pl.col("amount").floor().cast(pl.Int64), pl.col("points")),
    )
    flows = pl.concat(
        [
            earned.filter(pl.col("points") > 0).select(
                "member_id", "at", kind=pl.lit("purchase"), points="points"
            ),
            earned.filter(pl.col("points_used") > 0).select(
                "member_id", "at", kind=pl.lit("payment"), points=-pl.col("points_used")
            ),
            taken_back,
        ]
    ).with_columns(year=pl.col("at").dt.year())
    # at the end of year Y + 1 whatever is left of year Y's lots expires (first in, first
    # out: spending before then came out of the oldest lots first)
    expiries = []
    expired_so_far = pl.DataFrame(schema={"member_id": pl.String, "expired": pl.Int64})
    for year in range(flows["year"].min(), flows["year"].max()):  # type: ignore[arg-type]
        points = pl.col("points")
        ends = flows.group_by("member_id").agg(
            earned=points.filter((points > 0) & (pl.col("year") <= year)).sum(),
            out=-points.filter((points < 0) & (pl.col("year") <= year + 1)).sum(),
        )
        ends = ends.join(expired_so_far, on="member_id", how="left").with_columns(
            pl.col("expired").fill_null(0)
        )
        due = ends.with_columns(
            due=(pl.col("earned") - pl.col("out") - pl.col("expired")).clip(lower_bound=0)
        ).filter(pl.col("due") > 0)
        expiries.append(
            due.select("member_id", at=_year_end(pl.lit(year + 1)), kind=pl.lit("expire"),
                       points=-pl.col("due"))
        )  # fmt: skip
        expired_so_far = (
            pl.concat([expired_so_far, due.select("member_id", expired="due")])
            .group_by("member_id")
            .agg(pl.col("expired").sum())
        )
    ledger = pl.concat([flows.drop("year"), *expiries]).sort("at")
    out_total = (
        ledger.filter(pl.col("points") < 0).group_by("member_id").agg(out=-pl.col("points").sum())
    )
    lots = (
        earned.filter(pl.col("points") > 0)
        .sort("member_id", "at")
        .join(out_total, on="member_id", how="left")
        .with_columns(
            before=pl.col("points").cum_sum().over("member_id") - pl.col("points"),
            out=pl.col("out").fill_null(0),
        )
        .select(
            "member_id",
            earned_at="at",
            expires_at=_year_end(pl.col("at").dt.year() + 1),
            amount="points",
            remaining=(
                pl.col("points") - (pl.col("out") - pl.col("before")).clip(0, pl.col("points"))
            ),
        )
    )
    return ledger, lots


def _tier_of(growth: pl.Expr, bars: tuple[int, ...]) -> pl.Expr:
    tier = pl.lit(0)
    for level, bar in enumerate(bars[1:], start=1):
        tier = pl.when(growth >= bar).then(pl.lit(level)).otherwise(tier)
    return tier


def tier_changes(orders: pl.DataFrame) -> pl.DataFrame:
    """Upgrades within each calendar year and downgrades at the 1 January reviews."""
    growth = orders.select(
        "member_id",
        "occurred_at",
        year=pl.col("occurred_at").dt.year(),
        growth=pl.col("gross").floor().cast(pl.Int64) + GROWTH_PER_ORDER,
    ).sort("member_id", "occurred_at")
    growth = growth.with_columns(cumulative=pl.col("growth").cum_sum().over("member_id", "year"))
    yearly = growth.group_by("member_id", "year").agg(total=pl.col("growth").sum())
    first_year, last_year = growth["year"].min(), growth["year"].max()
    changes = []
    held = pl.DataFrame(schema={"member_id": pl.String, "held": pl.Int32})  # tier at year end
    for year in range(first_year, last_year + 1):  # type: ignore[arg-type]
        last = yearly.filter(pl.col("year") == year - 1).select("member_id", "total")
        review = held.join(last, on="member_id", how="left").with_columns(
            kept=pl.min_horizontal("held", _tier_of(pl.col("total").fill_null(0), RETENTION))
        )
        changes.append(
            review.filter(pl.col("kept") < pl.col("held")).select(
                "member_id",
                at=pl.datetime(year, 1, 1, time_zone=TIMEZONE),
                from_tier="held",
                tier="kept",
            )
        )
        base = review.select("member_id", base="kept")
        this_year = (
            growth.filter(pl.col("year") == year)
            .join(base, on="member_id", how="left")
            .with_columns(
                base=pl.col("base").fill_null(0),
                reached=_tier_of(pl.col("cumulative"), THRESHOLDS),
            )
            .with_columns(
                tier=pl.max_horizontal("base", "reached"),
            )
            .with_columns(from_tier=pl.col("tier").shift(1).over("member_id"))
            .with_columns(pl.col("from_tier").fill_null(pl.col("base")))
        )
        changes.append(
            this_year.filter(pl.col("tier") > pl.col("from_tier")).select(
                "member_id", at="occurred_at", from_tier="from_tier", tier="tier"
            )
        )
        ends = this_year.group_by("member_id").agg(held=pl.col("tier").last())
        held = (
            pl.concat([base.rename({"base": "held"}), ends], how="vertical_relaxed")
            .group_by("member_id")
            .agg(pl.col("held").max())
        )
    names = dict(enumerate(TIERS))
    return (
        pl.concat(changes, how="vertical_relaxed")
        .with_columns(pl.col("from_tier", "tier").replace_strict(names, return_dtype=pl.String))
        .sort("member_id", "at")
    )


# --- the analyses ----------------------------------------------------------------------------


def run_all(
    frames: dict[str, pl.DataFrame],
) -> tuple[dict[str, float], dict[str, Any], dict[str, dict[str, float]]]:
    """Every analysis once; seconds per analysis, a few figures to show they ran, and the
    CPU seconds and peak memory (so far) after each."""
    members, responses = frames["members"], frames["responses"]
    ledger, lots, history = frames["ledger"], frames["lots"], frames["tier_history"]
    # the transactions' local days, member codes and amounts, worked out by the first
    # analysis and shared by the others (as a report running several of them does)
    tx = Prepared(frames["transactions"])
    last_day: date = tx.frame["occurred_at"].max().date()  # type: ignore[union-attr]
    year_ago = last_day - timedelta(days=365)
    purchases_only = tx.frame.filter(pl.col("kind") == "purchase")
    seconds: dict[str, float] = {}
    figures: dict[str, Any] = {}
    costs: dict[str, dict[str, float]] = {}

    def timed(name: str, work: Callable[[], Any]) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        figures[name] = work()
        seconds[name] = round(time.perf_counter() - started, 2)
        # CPU seconds (every thread) and the peak so far: steadier than wall time on a busy
        # machine, and where memory peaks
        cpu = round(time.process_time() - cpu_started, 2)
        costs[name] = {"cpu": cpu, "peak_mib": round(peak_rss_mib())}
        print(f"  {name:<8} {seconds[name]:6.2f} s  (cpu {cpu:6.2f} s, "
              f"peak {costs[name]['peak_mib']} MiB)  {figures[name]}", flush=True)  # fmt: skip

    def rfm() -> dict[str, Any]:
        table = rfm_table(tx, as_of=last_day, time_zone=TIMEZONE)
        summary = segment_summary(table)
        movement = segment_movement(
            tx, date_a=last_day - timedelta(days=90), date_b=last_day, time_zone=TIMEZONE
        )
        return {"members": table.height, "segments": summary.height, "moves": movement.long.height}

    def clv() -> dict[str, Any]:
        summary = rfm_summary(purchases_only, calibration_end=last_day)
        purchases = fit_bgnbd(summary)
        spend = fit_gamma_gamma(summary)
        predicted = predict_purchases(purchases, summary, t=90.0)
        value = customer_lifetime_value(
            purchases, spend, summary, months=12, discount_rate=0.01
        ).join(predicted, on="member_id")
        return {"bgnbd": {k: round(v, 3) for k, v in purchases.params.items()},
                "mean_clv": round(float(value["clv"].mean()), 2)}  # fmt: skip

    def churn() -> dict[str, Any]:
        model = churn_model(
            tx, members=members, tier_history=history, tiers=TIERS, ledger=ledger,
            responses=responses, time_zone=TIMEZONE,
        )  # fmt: skip
        return {"auc": round(model.auc, 3), "scored": model.scores.height}

    def cohorts() -> dict[str, Any]:
        shapes = {}
        for by in ("join_month", "first_channel", "first_store", "tier"):
            matrices = cohort_matrices(tx, members=members, by=by, time_zone=TIMEZONE)
            shapes[by] = matrices.retention.shape
        return shapes

    def tiers() -> dict[str, Any]:
        program = {"entry_tier": TIERS[0], "tiers": TIERS, "time_zone": TIMEZONE}
        distribution = tier_distribution(history, members=members, **program)
        migration = tier_migration(
            history, date_a=year_ago, date_b=last_day, members=members, **program
        )
        thresholds = list(zip(TIERS, map(float, THRESHOLDS), strict=True))
        near = members_near_next_tier(tx, thresholds, as_of=last_day, time_zone=TIMEZONE)
        upgrade = time_to_upgrade(history, members, **program)
        performance = tier_performance(tx, history, as_of=last_day, members=members, **program)
        return {
            "months": distribution["month"].n_unique(),
            "moves": migration.long.height,
            "near": near.height,
            "upgrade": upgrade.height,
            "performance": performance.height,
        }

    def points() -> dict[str, Any]:
        cohorts = points_cohorts(ledger, as_of=last_day, time_zone=TIMEZONE)
        forecast = points_forecast(cohorts, lots=lots, time_zone=TIMEZONE)
        view = deferred_revenue(ledger, value_per_point=VALUE_PER_POINT, as_of=last_day,
                                lots=lots, time_zone=TIMEZONE, cohorts=cohorts)  # fmt: skip
        return {"cohorts": cohorts.cohorts.height, "forecast_months": forecast.by_month.height,
                "outstanding": view.outstanding_points,
                "deferred_revenue": str(view.deferred_revenue)}  # fmt: skip

    for name, work in (("rfm", rfm), ("clv", clv), ("churn", churn), ("cohorts", cohorts),
                       ("tiers", tiers)):  # fmt: skip
        timed(name, work)
    tx.forget()  # the points analyses do not read the transactions
    timed("points", points)
    return seconds, figures, costs


def baseline(tx: pl.DataFrame) -> float:
    started = time.perf_counter()
    per_member = tx.group_by("member_id").agg(
        pl.len(), pl.col("amount").sum(), pl.col("occurred_at").max()
    )
    assert per_member.height > 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    folder = world_files(args.members, args.seed)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    frames = {
        name: pl.read_parquet(folder / f"{name}.parquet")
        for name in ("transactions", "members", "responses", "ledger", "lots", "tier_history")
    }
    read_seconds = time.perf_counter() - started
    rows = {name: frame.height for name, frame in frames.items()}
    purchases = int((frames["transactions"]["kind"] == "purchase").sum())
    print(f"{args.members:,} members, {purchases:,} purchases; rows {rows}; "
          f"read in {read_seconds:.1f} s; load average {load:.2f}")  # fmt: skip
    floor = baseline(frames["transactions"])
    seconds, figures, costs = run_all(frames)
    total = sum(seconds.values())
    result = {
        "members": args.members,
        "purchases": purchases,
        "rows": rows,
        "read_seconds": round(read_seconds, 2),
        "seconds": seconds,
        "total_seconds": round(total, 2),
        "cpu_seconds": {name: cost["cpu"] for name, cost in costs.items()},
        "peak_rss_mib_after": {name: cost["peak_mib"] for name, cost in costs.items()},
        "baseline_one_pass_seconds": round(floor, 3),
        "ratio_to_one_pass": round(total / floor, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
        "target_seconds": TARGET_SECONDS,
        "target_met": total <= TARGET_SECONDS,
        "figures": figures,
    }
    print(f"all analytics: {total:.1f} s (target {TARGET_SECONDS:.0f} s), "
          f"{result['ratio_to_one_pass']}x one pass over the orders ({floor:.2f} s), "
          f"peak {result['peak_rss_mib']} MiB")  # fmt: skip
    json.dump(result, sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
