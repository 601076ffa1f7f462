"""Starting the bulk importer's two worker processes, as ``memberlab import`` does.

A spawned process first runs its parent's ``__main__`` again; for the ``memberlab`` command
that is all of ``memberlab.cli``. ``bulk_chunk.worker_pool`` starts the workers with an
empty ``__main__``. Baseline, in the same run: a plain spawn pool with the same
initializer, which runs the main module again. This script imports ``memberlab.cli`` first,
so its main module costs what the command's does. Each pool runs in a fresh process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import memberlab.cli  # noqa: F401 - what the command's main module imports
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import bulk_chunk
from memberlab.programs import rules
from memberlab.programs.validation import parse_program_text

WORKERS = 2


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start(kind: str) -> tuple[float, float]:
    """(the workers' CPU seconds, wall seconds) to start them, each with an import's context
    (a sample program), and run a first task each."""
    program = parse_program_text(sample_program_text("teahouse"))
    now = datetime(2026, 11, 25, tzinfo=UTC)
    per_point = rules.unit(program) / program.points_payment.points_per_unit
    context = bulk_chunk.ChunkContext(1, program, now, now, per_point, "sqlite")
    cpu, started = _children_cpu(), time.perf_counter()
    if kind == "plain":
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(WORKERS, spawn, bulk_chunk.start_worker, (context,))
    else:
        pool = bulk_chunk.worker_pool(context, WORKERS)
    for future in [pool.submit(os.getpid) for _ in range(WORKERS)]:
        future.result()
    wall = time.perf_counter() - started
    pool.shutdown()
    return _children_cpu() - cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", choices=["plain", "worker_pool"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(*start(args.one))
        return
    figures: dict[str, list[tuple[float, float]]] = {"worker_pool": [], "plain": []}
    for _ in range(args.runs):  # alternating, each in a fresh process
        for kind in figures:
            out = subprocess.run(  # noqa: S603 - this very script
                [sys.executable, __file__, "--one", kind],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            figures[kind].append((float(out[0]), float(out[1])))
    for kind, runs in figures.items():
        cpu = sorted(c for c, _ in runs)[len(runs) // 2]
        wall = sorted(w for _, w in runs)[len(runs) // 2]
        print(f"{kind}: {WORKERS} workers' CPU {cpu:.2f} s, wall to ready {wall:.2f} s (median)")
    mine = sorted(c for c, _ in figures["worker_pool"])[args.runs // 2]
    base = sorted(c for c, _ in figures["plain"])[args.runs // 2]
    print(f"ratio of CPU, worker_pool / plain: {mine / base:.2f}")


if __name__ == "__main__":
    main()
