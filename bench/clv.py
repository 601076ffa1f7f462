"""Lifetime value: summary, BG/NBD and Gamma-Gamma fits, P(alive), expected purchases, CLV.

Target (issue 5, "Speed"): on 1,000,000 members and about 10,000,000 purchases, the whole
pipeline in at most 10 s with peak memory at most 4 GiB, and at least 10x faster than
lifetimes 0.11.3 on the same data in the same run, with the estimates compared.

The data are simulated (BG/NBD purchases, Gamma-Gamma spend; ``memberlab.analytics.simulate``)
and written once, in time order as a till exports them (not grouped by member), to
``bench/out/clv-<members>-<seed>-by-time.parquet``. Each side then runs in a
fresh process that reads that file, so that timings and peak memory (``ru_maxrss``) are the
pipeline's own:

- ours: ``rfm_summary`` -> ``fit_bgnbd`` -> ``fit_gamma_gamma`` -> ``predict_purchases``
  (P(alive) and expected purchases over 90 days) -> ``customer_lifetime_value`` (12 months,
  1% a month);
- lifetimes 0.11.3 in its own virtual environment (``bench/out/lifetimes-venv``, made on
  first use with numpy<2, pandas<2, scipy<1.14): ``summary_data_from_transaction_data`` ->
  ``BetaGeoFitter.fit`` -> ``GammaGammaFitter.fit`` -> ``conditional_probability_alive`` ->
  ``conditional_expected_number_of_purchases_up_to_time`` -> ``customer_lifetime_value``.

Our pipeline runs ``--repeat`` times (default 5, each in a fresh process) and the median
counts (the best is printed too): the machine is shared and single runs vary by a factor of
two or more with the other work on it; the load average is printed.
Reading the Parquet file is timed apart (pandas and Polars differ there) and not counted.
If lifetimes takes longer than ``--lifetimes-timeout`` seconds on all members, both sides
are timed again on the first 100,000 members and the ratio comes from that run (the output
says so). Parameter estimates and per-member results are compared side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from common import OUT

TARGET_SECONDS = 10.0
TARGET_RSS_MIB = 4096
TARGET_RATIO = 10.0
START = date(2024, 1, 1)
DAYS = 730
CALIBRATION_END = START + timedelta(days=DAYS - 1)  # every purchase is in calibration
HORIZON_DAYS = 90.0
MONTHS = 12
MONTHLY_DISCOUNT = 0.01
# Purchases: 0.024 a day on average (r / alpha), a 7.7% chance of dropping out after each
# repeat purchase (a / (a + b)); members join over the first year. Spend: mean 20 a visit.
TRUTH = {"r": 1.2, "alpha": 50.0, "a": 0.5, "b": 6.0, "p": 6.0, "q": 4.0, "gamma": 10.0}
VENV = OUT / "lifetimes-venv"
LIFETIMES_REQUIREMENTS = ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.14", "pyarrow<18"]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_file(members: int, seed: int) -> Path:
    """The simulated transactions, made once and reused."""
    path = OUT / f"clv-{members}-{seed}-by-time.parquet"
    if path.exists():
        return path
    from memberlab.analytics.simulate import simulate_transactions

    started = time.perf_counter()
    frame = simulate_transactions(
        members, **TRUTH, start=START, days=DAYS, join_days=365, seed=seed
    ).sort("occurred_at")  # in time order, as a till or shop exports them
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    print(
        f"simulated {frame.height:,} purchases for {members:,} members in "
        f"{time.perf_counter() - started:.1f} s -> {path}",
        file=sys.stderr,
    )
    return path


def last_member(subset: int | None) -> str | None:
    """Members are M0000000, M0000001, ...: a subset is everyone up to this id."""
    return None if subset is None else f"M{subset - 1:07d}"


# --- ours -------------------------------------------------------------------------------


def run_ours(path: Path, subset: int | None, results: Path) -> dict:
    """The pipeline in this process (called in a fresh process by ``main``)."""
    from memberlab.analytics.clv import (
        customer_lifetime_value,
        fit_bgnbd,
        fit_gamma_gamma,
        predict_purchases,
        rfm_summary,
    )

    started = time.perf_counter()
    transactions = pl.read_parquet(path)
    if subset is not None:
        transactions = transactions.filter(pl.col("member_id") <= last_member(subset))
    read = time.perf_counter() - started

    marks = [time.perf_counter()]
    summary = rfm_summary(transactions, calibration_end=CALIBRATION_END, time_unit="day")
    marks.append(time.perf_counter())
    purchases = fit_bgnbd(summary)
    marks.append(time.perf_counter())
    spend = fit_gamma_gamma(summary)
    marks.append(time.perf_counter())
    predicted = predict_purchases(purchases, summary, t=HORIZON_DAYS)
    values = customer_lifetime_value(
        purchases,
        spend,
        summary,
        months=MONTHS,
        discount_rate=MONTHLY_DISCOUNT,
        time_unit="day",
    )
    marks.append(time.perf_counter())

    predicted.with_columns(values["clv"]).write_parquet(results)
    steps = ["summary", "bgnbd_fit", "gamma_gamma_fit", "predictions_and_clv"]
    return {
        "transactions": transactions.height,
        "members": summary.height,
        "read_seconds": round(read, 2),
        "seconds": round(marks[-1] - marks[0], 2),
        "steps": {s: round(b - a, 2) for s, a, b in zip(steps, marks[:-1], marks[1:], strict=True)},
        "peak_rss_mib": round(peak_rss_mib()),
        "bgnbd": purchases.params,
        "bgnbd_se": purchases.standard_errors,
        "bgnbd_loglik": purchases.loglik,
        "gamma_gamma": spend.params,
        "gamma_gamma_se": spend.standard_errors,
    }


# --- lifetimes ----------------------------------------------------------------------------

LIFETIMES_SCRIPT = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

path, last, end, horizon, months, rate, results = sys.argv[1:8]
started = time.perf_counter()
df = pd.read_parquet(path)
if last != "-":
    df = df[df["member_id"] <= last]
read = time.perf_counter() - started

marks = [time.perf_counter()]
s = summary_data_from_transaction_data(
    df, "member_id", "occurred_at", monetary_value_col="amount",
    observation_period_end=end, freq="D",
)
marks.append(time.perf_counter())
bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
marks.append(time.perf_counter())
repeat = s[s["frequency"] > 0]
ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
marks.append(time.perf_counter())
p_alive = bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
expected = bgf.conditional_expected_number_of_purchases_up_to_time(
    float(horizon), s["frequency"], s["recency"], s["T"]
)
clv = ggf.customer_lifetime_value(
    bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
    time=int(months), discount_rate=float(rate), freq="D",
)
marks.append(time.perf_counter())

pd.DataFrame({
    "member_id": s.index.astype(str), "p_alive": np.asarray(p_alive),
    "expected_purchases": np.asarray(expected), "clv": np.asarray(clv),
}).to_parquet(results)
steps = ["summary", "bgnbd_fit", "gamma_gamma_fit", "predictions_and_clv"]
print(json.dumps({
    "transactions": int(len(df)),
    "members": int(len(s)),
    "read_seconds": round(read, 2),
    "seconds": round(marks[-1] - marks[0], 2),
    "steps": {k: round(b - a, 2) for k, a, b in zip(steps, marks, marks[1:])},
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
    "bgnbd_se": {k: float(v) for k, v in bgf.standard_errors_.items()},
    "gamma_gamma": {"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]),
                    "gamma": float(ggf.params_["v"])},
    "gamma_gamma_se": {"p": float(ggf.standard_errors_["p"]),
                       "q": float(ggf.standard_errors_["q"]),
                       "gamma": float(ggf.standard_errors_["v"])},
}))
"""


def lifetimes_python(base_python: str) -> Path:
    """The venv's interpreter; the venv is made (once) with the pinned old stack."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"making {VENV} with {' '.join(LIFETIMES_REQUIREMENTS)} ...", file=sys.stderr)
    # The commands are built here from constants and this script's own paths.
    subprocess.run([base_python, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "install", "--quiet", *LIFETIMES_REQUIREMENTS], check=True
    )
    return python


def run_lifetimes(
    python: Path, path: Path, subset: int | None, results: Path, timeout: float
) -> dict | None:
    """lifetimes in its venv; None when it takes longer than ``timeout`` seconds."""
    script = OUT / "clv_lifetimes_run.py"
    script.write_text(LIFETIMES_SCRIPT)
    arguments = [
        str(python),
        str(script),
        str(path),
        last_member(subset) or "-",
        CALIBRATION_END.isoformat(),
        str(HORIZON_DAYS),
        str(MONTHS),
        str(MONTHLY_DISCOUNT),
        str(results),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own script and file paths
            arguments, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        sys.exit(f"lifetimes failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ours_repeated(path: Path, subset: int | None, results: Path, repeat: int) -> dict:
    """Our pipeline ``repeat`` times, each in a fresh process: the median run, with all the
    times (the machine is shared, so single runs are noisy)."""
    runs = sorted(
        (run_ours_in_child(path, subset, results) for _ in range(max(1, repeat))),
        key=lambda run: run["seconds"],
    )
    median = dict(runs[(len(runs) - 1) // 2])
    median["runs_seconds"] = [run["seconds"] for run in runs]
    median["best_seconds"] = runs[0]["seconds"]
    median["best_steps"] = runs[0]["steps"]
    return median


def run_ours_in_child(path: Path, subset: int | None, results: Path) -> dict:
    arguments = [sys.executable, __file__, "--child", str(path), "--results", str(results)]
    if subset is not None:
        arguments += ["--subset", str(subset)]
    done = subprocess.run(arguments, capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        sys.exit(f"our pipeline failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- comparison -------------------------------------------------------------------------


def compare_members(ours: Path, theirs: Path) -> dict:
    """Largest differences between the two sides' per-member results."""
    joined = pl.read_parquet(ours).join(
        pl.read_parquet(theirs), on="member_id", suffix="_lifetimes"
    )
    out: dict[str, float | int] = {"members_compared": joined.height}
    for column in ("p_alive", "expected_purchases", "clv"):
        ours_col, theirs_col = pl.col(column), pl.col(f"{column}_lifetimes")
        difference = joined.select(
            (ours_col - theirs_col).abs().max().alias("abs"),
            ((ours_col - theirs_col).abs() / theirs_col.abs().clip(1e-9)).median().alias("rel"),
            ours_col.sum().alias("ours"),
            theirs_col.sum().alias("theirs"),
        ).row(0, named=True)
        out[f"{column}_max_abs_difference"] = float(f"{difference['abs']:.3g}")
        out[f"{column}_median_rel_difference"] = float(f"{difference['rel']:.3g}")
        out[f"{column}_total_ours"] = round(difference["ours"], 2)
        out[f"{column}_total_lifetimes"] = round(difference["theirs"], 2)
    return out


def parameter_table(ours: dict, theirs: dict) -> str:
    lines = [f"{'parameter':<12}{'truth':>10}{'ours':>14}{'(se)':>12}{'lifetimes':>14}{'(se)':>12}"]
    for model, names in (("bgnbd", ("r", "alpha", "a", "b")), ("gamma_gamma", ("p", "q", "gamma"))):
        for name in names:
            lines.append(
                f"{model + '.' + name:<12}{TRUTH[name]:>10.4g}"
                f"{ours[model][name]:>14.6g}{ours[model + '_se'][name]:>12.3g}"
                f"{theirs[model][name]:>14.6g}{theirs[model + '_se'][name]:>12.3g}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--subset", type=int, default=None, help="only the first N members")
    parser.add_argument("--fallback-subset", type=int, default=100_000)
    parser.add_argument("--lifetimes-timeout", type=float, default=600.0)
    parser.add_argument(
        "--base-python",
        default=shutil.which("python3.11") or shutil.which("python3") or "python3",
        help="interpreter that makes the lifetimes venv (Python 3.11)",
    )
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (median counts)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # the measured run of our pipeline, in a process of its own
        print(json.dumps(run_ours(args.child, args.subset, args.results)))
        return

    path = data_file(args.members, args.seed)
    ours_results = OUT / "clv-ours.parquet"
    theirs_results = OUT / "clv-lifetimes.parquet"
    load_before = os.getloadavg()[0]
    ours = run_ours_repeated(path, args.subset, ours_results, args.repeat)
    print(
        f"ours: {ours['transactions']:,} purchases, {ours['members']:,} members: "
        f"{ours['seconds']} s (median of {ours['runs_seconds']}) {ours['steps']}, "
        f"peak {ours['peak_rss_mib']} MiB",
        file=sys.stderr,
    )
    figures: dict = {"cpus": os.cpu_count(), "load_average_at_start": load_before, "ours": ours}
    if not args.skip_lifetimes:
        python = lifetimes_python(args.base_python)
        theirs = run_lifetimes(python, path, args.subset, theirs_results, args.lifetimes_timeout)
        scope = "all members"
        if theirs is None:
            scope = (
                f"first {args.fallback_subset:,} members (lifetimes took more than "
                f"{args.lifetimes_timeout:.0f} s on all {ours['members']:,})"
            )
            print(f"lifetimes timed out; comparing on the {scope}", file=sys.stderr)
            figures["ours_subset"] = ours_subset = run_ours_repeated(
                path, args.fallback_subset, ours_results, args.repeat
            )
            theirs = run_lifetimes(
                python, path, args.fallback_subset, theirs_results, 10 * args.lifetimes_timeout
            )
            ratio_ours = ours_subset
        else:
            ratio_ours = ours
        figures["lifetimes"] = theirs
        if theirs is not None:
            figures["ratio_scope"] = scope
            figures["speedup"] = round(theirs["seconds"] / ratio_ours["seconds"], 1)
            figures["speedup_with_reading"] = round(
                (theirs["seconds"] + theirs["read_seconds"])
                / (ratio_ours["seconds"] + ratio_ours["read_seconds"]),
                1,
            )
            figures["per_member"] = compare_members(ours_results, theirs_results)
            print(parameter_table(ratio_ours, theirs), file=sys.stderr)
    figures["load_average_at_end"] = os.getloadavg()[0]
    figures["target_met_by_median_run"] = (
        ours["seconds"] <= TARGET_SECONDS
        and ours["peak_rss_mib"] <= TARGET_RSS_MIB
        and figures.get("speedup", 0) >= TARGET_RATIO
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
