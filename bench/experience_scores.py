"""Experience scores and key drivers on a million survey answers: seconds, and the ratio to
one pass over the answers.

Target (issue 6, "Customer experience"): on 1,000,000 answers, NPS, CSAT and CES by
touchpoint x store x month (``experience.scores.score_table``) plus the relative weights
of the attribute ratings on NPS per touchpoint with 1,000 bootstrap resamples
(``experience.drivers.driver_weights``), all in at most 10 s on this 2-core machine.

The answers are simulated in memory (not timed): six touchpoints asking the attributes a
real survey asks there (cleanliness only in stores, app usability only in the apps),
300 stores, 36 months. Each attribute has a latent experience (a common factor plus its
own part); a rating is that experience on a 1-5 scale and NPS a weighted sum of the
experiences on 0-10, with weights 0.9 (speed), 0.7 (staff), 0.5 (product quality),
0.3 (value), 0.4 (app usability), 0.2 (cleanliness). The recovered order is printed
next to that truth as a check that the fast path computes the right thing.

Baseline, in the same run: one Polars ``group_by`` over the answers by touchpoint, store
and month (count and mean NPS), the floor of touching the data once; the ratio says how
many such passes the whole analysis costs. Every step runs ``--repeat`` times (default 3)
and the median counts: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from memberlab.experience.drivers import driver_weights
from memberlab.experience.scores import score_table

TARGET_SECONDS = 10.0
TOUCHPOINTS = ("store", "mini_program", "app", "delivery", "after_sales", "membership")
TOUCHPOINT_SHARES = (0.38, 0.28, 0.08, 0.14, 0.05, 0.07)
ATTRIBUTES = ("speed", "staff", "product_quality", "value", "app_usability", "cleanliness")
WEIGHTS = (0.9, 0.7, 0.5, 0.3, 0.4, 0.2)  # the true effect of each experience on NPS
ASKED = {
    "store": ("speed", "staff", "product_quality", "value", "cleanliness"),
    "mini_program": ("speed", "product_quality", "value", "app_usability"),
    "app": ("speed", "product_quality", "value", "app_usability"),
    "delivery": ("speed", "product_quality", "value"),
    "after_sales": ("speed", "staff"),
    "membership": ("value",),
}
STORES = 300
MONTHS = 36


def simulate_answers(n: int, seed: int) -> pl.DataFrame:
    """``n`` answers with NPS, CSAT, CES and the ratings asked at their touchpoint."""
    rng = np.random.default_rng(seed)
    touchpoint = rng.choice(len(TOUCHPOINTS), size=n, p=TOUCHPOINT_SHARES)
    common = rng.standard_normal(n)
    experience = 0.6 * common[:, None] + 0.8 * rng.standard_normal((n, len(ATTRIBUTES)))
    asked = np.array([[a in ASKED[tp] for a in ATTRIBUTES] for tp in TOUCHPOINTS])[touchpoint]
    # NPS moves with what was experienced and asked about (an unasked part is not there)
    signal = (experience * asked) @ np.asarray(WEIGHTS) / np.sqrt(asked.sum(axis=1))
    nps = np.clip(np.rint(7.2 + 1.6 * signal + rng.normal(0, 1.2, n)), 0, 10)
    csat = np.clip(np.rint(3.8 + 0.6 * signal + rng.normal(0, 0.6, n)), 1, 5)
    ces = np.clip(np.rint(5.2 + 0.8 * signal + rng.normal(0, 0.9, n)), 1, 7)
    start = np.datetime64("2023-11-01T00:00:00", "us")
    seconds = rng.integers(0, MONTHS * 30 * 86_400, n)
    columns: dict[str, Any] = {
        "response_id": pl.Series(np.arange(n)).cast(pl.String),
        "responded_at": pl.Series(start + seconds.astype("timedelta64[s]")).dt.replace_time_zone(
            "Asia/Shanghai"
        ),
        "touchpoint": pl.Series(np.asarray(TOUCHPOINTS)[touchpoint]),
        "store": pl.Series(rng.integers(1, STORES + 1, n)).cast(pl.String).str.zfill(3),
        "nps": nps.astype(np.int64),
        "csat": csat.astype(np.int64),
        "ces": ces.astype(np.int64),
    }
    for j, attribute in enumerate(ATTRIBUTES):
        rating = np.clip(np.rint(3.6 + 0.9 * experience[:, j] + rng.normal(0, 0.5, n)), 1, 5)
        columns[f"rating_{attribute}"] = pl.Series(rating.astype(np.int64)).scatter(
            np.flatnonzero(~asked[:, j]), None
        )
    return pl.DataFrame(columns)


def timed(step: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    answers = simulate_answers(args.answers, args.seed)
    print(
        f"simulated {answers.height:,} answers in {time.perf_counter() - started:.1f} s; "
        f"load average {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )
    by = ["touchpoint", "store"]
    floor, _ = timed(
        lambda: answers.group_by(
            "touchpoint", "store", pl.col("responded_at").dt.truncate("1mo").alias("month")
        ).agg(pl.len(), pl.col("nps").mean()),
        args.repeat,
    )
    seconds: dict[str, float] = {}
    groups = {}
    for metric in ("nps", "csat", "ces"):
        seconds[f"score_table_{metric}"], table = timed(
            lambda m=metric: score_table(answers, m, by=by, period="month"), args.repeat
        )
        groups[metric] = table.height
    seconds["driver_weights"], drivers = timed(
        lambda: driver_weights(answers, resamples=args.resamples, seed=args.seed), args.repeat
    )
    total = sum(seconds.values())

    truth = dict(zip(ATTRIBUTES, WEIGHTS, strict=True))
    recovered = {}
    for (touchpoint,), frame in drivers.table.group_by("touchpoint"):
        ranked = frame.sort("rank").get_column("attribute").to_list()
        expected = sorted(ASKED[touchpoint], key=lambda a: -truth[a])
        recovered[touchpoint] = {"ranked": ranked, "true_order": expected}
    result = {
        "answers": answers.height,
        "resamples": args.resamples,
        "groups": groups,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "total_seconds": round(total, 2),
        "baseline_one_pass_seconds": round(floor, 3),
        "ratio_to_one_pass": round(total / floor, 1),
        "target_seconds": TARGET_SECONDS,
        "target_met": total <= TARGET_SECONDS,
        "load_average_at_end": os.getloadavg()[0],
        "drivers_recover_true_order": all(
            r["ranked"] == r["true_order"] for r in recovered.values()
        ),
        "drivers": recovered,
    }
    print(
        f"scores (NPS, CSAT, CES by touchpoint x store x month) and drivers (relative weights, "
        f"{args.resamples} resamples) on {answers.height:,} answers: {total:.2f} s "
        f"(target {TARGET_SECONDS:.0f} s), {result['ratio_to_one_pass']}x one group_by pass "
        f"({floor:.3f} s)"
    )
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
