"""HTTP: single-purchase POSTs and member views over loopback, server on PostgreSQL.

Targets (issue "Points and tier engine"): POST /api/v1/purchases at >= 600 requests/s with
p99 <= 50 ms; GET /api/v1/members/{id}/points (tier, balances, 50 last entries) p99 <= 10 ms.
Baseline measured in the same run: GET /healthz (no key, no database) with the same client
and concurrency, so the ratio shows what a purchase costs on top of the HTTP stack.
The load generator runs on the same 2-core machine as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from common import postgres_schema

from memberlab.core import migrate
from memberlab.core.db import Database
from memberlab.datasets.demo import prepare_demo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(url: str, make_request, total: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            method, path, kwargs = make_request(i)
            started = time.perf_counter()
            response = await client.request(method, path, **kwargs)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1
                if errors < 3:
                    print("error", response.status_code, response.text[:600], file=sys.stderr)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        print(f"{errors} errors", file=sys.stderr)
    return total / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--members", type=int, default=2000)
    args = parser.parse_args()
    with postgres_schema() as (url, engine):
        database = Database(engine)
        migrate.upgrade(engine)
        with database.session(platform=True) as session:
            key = prepare_demo(session, now=datetime.now(UTC), created_by="bench").admin_key
        port = free_port()
        env = {
            **os.environ,
            "MEMBERLAB_DATABASE_URL": url,
            "MEMBERLAB_PORT": str(port),
            "MEMBERLAB_LANGUAGE": "en",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "memberlab.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            headers = {"Authorization": f"Bearer {key}"}
            rng = random.Random(3)
            start = datetime.now(UTC) - timedelta(days=30)

            def purchase(i: int, member: str | None = None, when: datetime | None = None):
                member = member or f"B{rng.randrange(args.members):06d}"
                when = when or start + timedelta(seconds=i * 10)
                body = {
                    "member_id": member,
                    "order_id": f"bench-{i}",
                    "occurred_at": when.isoformat(),
                    "channel": "mini_program",
                    "lines": [
                        {
                            "sku": "tea-1",
                            "category": "tea",
                            "quantity": 1,
                            "amount": f"{rng.randint(900, 9900) / 100:.2f}",
                        }
                    ],
                }
                return "POST", "/api/v1/purchases", {"json": body, "headers": headers}

            def health(_i: int):
                return "GET", "/healthz", {}

            def view(_i: int):
                member = f"B{rng.randrange(args.members):06d}"
                return "GET", f"/api/v1/members/{member}/points", {"headers": headers}

            # warm up: enrol every member once so views find them
            earlier = start - timedelta(days=1)
            asyncio.run(
                load(
                    base,
                    lambda i: purchase(10_000_000 + i, f"B{i:06d}", earlier),
                    args.members,
                    args.concurrency,
                )
            )
            base_rate, base_lat = asyncio.run(load(base, health, args.requests, args.concurrency))
            rate, lat = asyncio.run(load(base, purchase, args.requests, args.concurrency))
            _, view_lat = asyncio.run(load(base, view, 1000, 1))
        finally:
            server.terminate()
            server.wait(timeout=30)
            problems = server.stderr.read().decode() if server.stderr else ""
            if "Traceback" in problems:
                print(problems[-3000:], file=sys.stderr)
    ms = 1000
    print(
        f"purchases: {rate:.0f} req/s, p50 {statistics.median(lat) * ms:.1f} ms, "
        f"p99 {percentile(lat, 0.99) * ms:.1f} ms (concurrency {args.concurrency})"
    )
    print(
        f"baseline GET /healthz: {base_rate:.0f} req/s, p99 {percentile(base_lat, 0.99) * ms:.1f}"
        f" ms; ratio purchases/baseline = {rate / base_rate:.3f}"
    )
    print(
        f"member view (sequential): p50 {statistics.median(view_lat) * ms:.1f} ms, "
        f"p99 {percentile(view_lat, 0.99) * ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
