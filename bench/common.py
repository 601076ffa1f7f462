"""Shared pieces of the benchmarks: databases in throw-away places, synthetic history."""

from __future__ import annotations

import os
import random
import secrets
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, text

from memberlab.core.db import create_db_engine

OUT = Path(__file__).parent / "out"
POSTGRES_URL = os.environ.get(
    "MEMBERLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


TICKS = os.sysconf("SC_CLK_TCK")


def interpreter_speed_us() -> float:
    """Microseconds for a thousand dict lookups in a Python loop, the best of five: how fast
    this machine runs Python right now. The same code's figures move with it (this shared
    machine has measured 28 to 56 us within a week), so compare runs of similar speed."""
    timer = timeit.Timer("sum(d[i] for i in range(1000))", setup="d = {i: i for i in range(1000)}")
    loops, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=loops)) / loops * 1e6


def cpu_seconds(root_pid: int) -> tuple[float, float]:
    """CPU seconds used so far by ``root_pid`` and its descendants (a server, an importer and
    its workers) and by every PostgreSQL process: CPU per request or per row, which holds
    whatever else the machine is doing, where rates do not."""
    stats: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        if name.startswith("postgres"):
            # + cutime + cstime: the postmaster keeps the CPU of backends that have exited
            # (a connection closed during the run), which would otherwise go missing
            used += (int(fields[13]) + int(fields[14])) / TICKS
        stats[int(entry.name)] = (int(fields[1]), name, used)
    server = database = 0.0
    for pid, (_parent, name, used) in stats.items():
        ancestor = pid
        while ancestor in stats and ancestor != root_pid:
            ancestor = stats[ancestor][0]
        if ancestor == root_pid:
            server += used
        elif name.startswith("postgres"):
            database += used
    return server, database


@contextmanager
def postgres_schema() -> Iterator[tuple[str, Engine]]:
    """A fresh schema; yields (url with search_path, engine); dropped afterwards."""
    schema = f"ml_bench_{secrets.token_hex(4)}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def synthetic_history(path: Path, *, purchases: int, members: int, seed: int = 7) -> Path:
    """Order-level purchases (one line each) over two years, written as Parquet."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = 700 * 86400
    categories = ["tea", "coffee", "seasonal", "bakery", "merch"]
    channels = ["store", "mini_program", "app", "delivery"]
    member_ids = [f"M{rng.randrange(members):07d}" for _ in range(purchases)]
    frame = pl.DataFrame(
        {
            "member_id": member_ids,
            "order_id": [f"O{i:09d}" for i in range(purchases)],
            "occurred_at": [
                start + timedelta(seconds=rng.randrange(span)) for _ in range(purchases)
            ],
            "channel": [rng.choice(channels) for _ in range(purchases)],
            "store": [f"S{rng.randrange(300):03d}" for _ in range(purchases)],
            "sku": [f"SKU{rng.randrange(400)}" for _ in range(purchases)],
            "category": [rng.choice(categories) for _ in range(purchases)],
            "quantity": [rng.randint(1, 3) for _ in range(purchases)],
            "amount": [f"{rng.randint(900, 9900) / 100:.2f}" for _ in range(purchases)],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path
