"""Importing a client's purchase export: rows/s to parse, map, validate and stage a GBK CSV.

Target (issue "Data in and out"): a 1,000,000-row GBK CSV with Chinese headers at
>= 200,000 rows/s, engine not included. Baseline, measured in the same run: Polars reading
the same rows from a UTF-8 CSV with no checks at all (the floor for reading the bytes).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

import polars as pl
from common import OUT

from memberlab.dataio.kinds import TRANSACTIONS
from memberlab.dataio.loaders import to_events
from memberlab.dataio.prepare import prepare

NOW = datetime(2026, 11, 25, tzinfo=UTC)
HEADERS = ["订单号", "会员卡号", "下单时间", "实付金额", "门店", "渠道", "商品编码", "品类", "数量"]


def write_export(rows: int, seed: int = 11) -> tuple[pl.DataFrame, int]:
    """A POS-style export: Chinese headers, yuan with ￥ and thousands separators, mixed date
    forms, Chinese channel names."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    channels = ["门店", "小程序", "外卖", "APP"]
    categories = ["茶饮", "咖啡", "烘焙", "周边"]
    times = [start + timedelta(seconds=rng.randrange(700 * 86400)) for _ in range(rows)]
    forms = ["%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y年%m月%d日 %H:%M"]
    frame = pl.DataFrame(
        {
            "订单号": [f"P{i:09d}" for i in range(rows)],
            "会员卡号": [f"M{rng.randrange(100_000):07d}" for _ in range(rows)],
            "下单时间": [t.strftime(forms[i % 3]) for i, t in enumerate(times)],
            "实付金额": [
                f"￥{v / 100:,.2f}" if v % 2 else f"{v / 100:.2f}"
                for v in (rng.randint(900, 250_000) for _ in range(rows))
            ],
            "门店": [f"S{rng.randrange(300):03d}" for _ in range(rows)],
            "渠道": [rng.choice(channels) for _ in range(rows)],
            "商品编码": [f"SKU{rng.randrange(400)}" for _ in range(rows)],
            "品类": [rng.choice(categories) for _ in range(rows)],
            "数量": [str(rng.randint(1, 3)) for _ in range(rows)],
        }
    )
    return frame, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    frame, rows = write_export(args.rows)
    utf8 = OUT / f"purchases-{rows}-utf8.csv"
    gbk = OUT / f"purchases-{rows}-gbk.csv"
    frame.write_csv(utf8)
    gbk.write_bytes(utf8.read_bytes().decode("utf-8").encode("gbk"))
    print(f"rows: {rows:,}  GBK file: {gbk.stat().st_size / 1e6:.0f} MB")

    started = time.perf_counter()
    plain = pl.read_csv(utf8, infer_schema=False)
    baseline = time.perf_counter() - started
    assert plain.height == rows

    started = time.perf_counter()
    prepared = prepare(gbk, TRANSACTIONS, timezone="Asia/Shanghai", now=NOW)
    parsed = time.perf_counter() - started
    events = to_events(prepared.frame, "transactions")
    events.write_parquet(OUT / "staged.parquet")
    total = time.perf_counter() - started
    assert prepared.source.encoding == "gbk"
    assert prepared.frame.height == rows, prepared.rejects[:5]

    print(f"baseline (Polars read_csv, UTF-8, no checks): {rows / baseline:,.0f} rows/s")
    print(f"parse + map + validate: {parsed:.2f} s")
    print(
        f"import (parse, map, validate, stage): {total:.2f} s = {rows / total:,.0f} rows/s "
        f"(target 200,000); ratio to baseline {baseline / total:.2f}x"
    )


if __name__ == "__main__":
    main()
