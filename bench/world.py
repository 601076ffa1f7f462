"""The demo world generator: time and peak memory for a whole world.

Target (issue "Demo world", done when): 1,000,000 members (more than 10,000,000 purchases)
in at most 3 minutes with peak memory at most 4 GiB, on the 2-core machine. Baseline,
measured in the same run: writing as many rows (all files together) of random numbers to
Parquet with Polars, in as many chunks, i.e. the raw I/O floor; the ratio shows what
simulating, building the strings and writing real columns cost on top of that.

Peak memory is the process's ``ru_maxrss``, read right after the world is written (the
baseline runs afterwards and is not part of it).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from datetime import date

import numpy as np
import polars as pl
from common import OUT

from memberlab.datasets.world import generate_world

TARGET_SECONDS = 180
TARGET_RSS_MIB = 4096


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(rows: int, chunks: int, columns: int = 12) -> float:
    """Seconds to write ``rows`` rows of random numbers to Parquet in ``chunks`` files."""
    folder = OUT / "world_baseline"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    per_chunk = -(-rows // chunks)
    for i, lo in enumerate(range(0, rows, per_chunk)):
        n = min(per_chunk, rows - lo)
        frame = pl.DataFrame(
            {
                f"c{j}": rng.random(n) if j % 2 else rng.integers(0, 1 << 40, n)
                for j in range(columns)
            }
        )
        frame.write_parquet(folder / f"part-{i:04d}.parquet")
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-members", type=int, default=50_000)
    parser.add_argument("--no-effects", action="store_true", help="program_effects=False")
    parser.add_argument("--keep", action="store_true", help="keep the world in bench/out/world")
    args = parser.parse_args()

    out = OUT / "world"
    shutil.rmtree(out, ignore_errors=True)

    def progress(done: int, total: int) -> None:
        print(f"\r{done:,}/{total:,} members", end="", file=sys.stderr, flush=True)

    summary = generate_world(
        out,
        members=args.members,
        seed=args.seed,
        start=date(2023, 11, 1),
        end=date(2026, 10, 31),
        program_effects=not args.no_effects,
        chunk_members=args.chunk_members,
        progress=progress,
    )
    print(file=sys.stderr)
    rss = peak_rss_mib()
    counts = summary.counts
    rows = (
        sum(
            counts[key]
            for key in (
                "stores",
                "products",
                "members",
                "lines",
                "return_lines",
                "responses",
                "incidents",
            )
        )
        + counts["members"]
    )  # truth/members has a row per member
    chunks = -(-args.members // args.chunk_members)
    floor = baseline(rows, chunks)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    figures = {
        "members": counts["members"],
        "purchases": counts["orders"],
        "lines": counts["lines"],
        "returns": counts["returns"],
        "responses": counts["responses"],
        "comments": counts["comments"],
        "rows_written": rows,
        "megabytes_written": round(size / 1e6, 1),
        "seconds": round(summary.seconds, 1),
        "purchases_per_s": round(counts["orders"] / summary.seconds),
        "peak_rss_mib": round(rss),
        "baseline_seconds": round(floor, 1),
        "ratio_to_baseline": round(summary.seconds / floor, 2),
        "target_met": summary.seconds <= TARGET_SECONDS and rss <= TARGET_RSS_MIB,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
