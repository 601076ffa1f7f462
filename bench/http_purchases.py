"""HTTP: single-purchase POSTs and member views over loopback, server on PostgreSQL.

Targets (issue "Points and tier engine"): POST /api/v1/purchases at >= 600 requests/s with
p99 <= 50 ms; GET /api/v1/members/{id}/points (tier, balances, 50 last entries) p99 <= 10 ms.
Baseline measured in the same run: GET /healthz (no key, no database) with the same load
generator and concurrency, so the ratio shows what a purchase costs on top of the HTTP stack.
The purchases then run again at lower concurrencies (``--sweep``): with a closed loop of N
connections, latency is N / throughput once the server is saturated, so the sweep shows the
rate at which p99 stays within its target.

The server runs as ``memberlab serve --workers N`` (default 2, one per core). The load
generator runs on the same 2-core machine: ``wrk`` (Debian's package, written in C, so it
leaves the cores to the server) when it is installed, else an httpx client in Python,
which needs about as much CPU per request as the server and so understates the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from common import cpu_seconds, interpreter_speed_us, postgres_schema

from memberlab.core import migrate
from memberlab.core.db import Database
from memberlab.datasets.demo import prepare_demo

# wrk's script: one purchase per request, unique order ids across wrk's threads, a random
# member of the enrolled ones, times one second apart from a start in the past.
PURCHASE_LUA = """
local counter = 0
local next_thread = 0
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  key = args[1]; members = tonumber(args[2]); start = tonumber(args[3]); tag = args[4]
  math.randomseed(1000 + thread_id)
end
request = function()
  counter = counter + 1
  local at = os.date("!%Y-%m-%dT%H:%M:%SZ", start + counter * 8 + thread_id)
  local body = string.format(
    '{"member_id":"B%06d","order_id":"wrk-%s-%d-%d","occurred_at":"%s","channel":"mini_program",'
    .. '"lines":[{"sku":"tea-1","category":"tea","quantity":1,"amount":"%d.%02d"}]}',
    math.random(0, members - 1), tag, thread_id, counter, at,
    math.random(9, 98), math.random(0, 99))
  return wrk.format("POST", "/api/v1/purchases",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
"""

# wrk's script for the member view: a random enrolled member's points, 50 last entries.
VIEW_LUA = """
function init(args)
  key = args[1]; members = tonumber(args[2])
  math.randomseed(7)
end
request = function()
  local path = string.format("/api/v1/members/B%06d/points", math.random(0, members - 1))
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- wrk ---------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(
    url: str, *, seconds: int, connections: int, script: str | None, args: list[str]
) -> dict[str, float]:
    """Requests/s, p50 and p99 (s), non-2xx count and wrk's own CPU seconds of one run."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script or "")
    if script:
        command += ["-s", handle.name]
    command += [url, "--", *args] if script else [url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        output = subprocess.run(  # noqa: S603 - our own command line
            command, capture_output=True, text=True, check=True
        ).stdout
    finally:
        Path(handle.name).unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk has exited: its CPU is in
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if bad or errors:
        print(output, file=sys.stderr)
    non_2xx = float(bad.group(1)) if bad else 0
    return {"rate": rate, "p50": p50, "p99": p99, "non_2xx": non_2xx, "cpu": cpu}


# --- httpx (fallback load generator, and the warm-up) -----------------------------------------


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


def summary(rate: float, latencies: list[float]) -> dict[str, float]:
    return {
        "rate": rate,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "non_2xx": 0,
    }


def analyze_schema(engine) -> None:
    """ANALYZE the bench's tables, as autovacuum does on a production server within a minute
    of the warm-up's writes (this machine's PostgreSQL runs with autovacuum off): without
    statistics the planner found members by scanning them."""
    with engine.begin() as connection:
        tables = connection.exec_driver_sql(
            "select tablename from pg_tables where schemaname = current_schema()"
        ).scalars()
        for table in list(tables):
            connection.exec_driver_sql(f'ANALYZE "{table}"')


def profiler(pid: int, path: Path | None, seconds: int) -> subprocess.Popen | None:
    """py-spy sampling the server and its workers for the purchases' run, if asked."""
    if path is None:
        return None
    command = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil"]
    command += ["--rate", "400"]
    command += ["--duration", str(seconds), "--format", "raw", "--output", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="each wrk run")
    parser.add_argument("--requests", type=int, default=6000, help="purchases (httpx only)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--sweep",
        type=lambda text: [int(c) for c in text.split(",") if c],
        default=[4, 8],
        help="purchases again at these concurrencies (wrk only; '' for none): where p99 "
        "stays under 50 ms",
    )
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client", choices=["wrk", "httpx"], default=None)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the server during the purchases with py-spy (on PATH) into this "
        "collapsed-stacks file (threads holding the GIL only: where the CPU goes)",
    )
    args = parser.parse_args()
    client = args.client or ("wrk" if shutil.which("wrk") else "httpx")
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
            "MEMBERLAB_WORKERS": str(args.workers),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "memberlab.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):  # workers import the whole CLI first: slow on a busy machine
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

            # warm up: enrol every member once (a day before the measured purchases)
            earlier = start - timedelta(days=1)
            asyncio.run(
                load(
                    base,
                    lambda i: purchase(10_000_000 + i, f"B{i:06d}", earlier),
                    args.members,
                    8,
                )
            )
            analyze_schema(engine)
            load_before = os.getloadavg()[0]
            sweep: dict[int, dict] = {}
            if client == "wrk":
                baseline = run_wrk(
                    f"{base}/healthz",
                    seconds=10,
                    connections=args.concurrency,
                    script=None,
                    args=[],
                )
                cpu_before = cpu_seconds(server.pid)
                spy = profiler(server.pid, args.profile, args.seconds)
                purchases = run_wrk(
                    base,
                    seconds=args.seconds,
                    connections=args.concurrency,
                    script=PURCHASE_LUA,
                    args=[key, str(args.members), str(int(start.timestamp())), "main"],
                )
            else:
                baseline = summary(
                    *asyncio.run(load(base, health, args.requests, args.concurrency))
                )
                cpu_before = cpu_seconds(server.pid)
                purchases = summary(
                    *asyncio.run(load(base, purchase, args.requests, args.concurrency))
                )
            cpu_after = cpu_seconds(server.pid)
            if client == "wrk" and spy is not None:
                spy.wait(timeout=120)
            if client == "wrk":
                # the same at other concurrencies, each a day later (new order ids)
                for day, connections in enumerate(args.sweep, start=1):
                    later = int((start + timedelta(days=day)).timestamp())
                    sweep[connections] = run_wrk(
                        base,
                        seconds=args.seconds,
                        connections=connections,
                        script=PURCHASE_LUA,
                        args=[key, str(args.members), str(later), f"c{connections}"],
                    )
            # the member view, one request at a time (the latency a till sees)
            _, view_latencies = asyncio.run(load(base, view, 2000, 1))
            views = summary(0, view_latencies[200:])  # the first 200 warm the caches
            wrk_views = None
            if client == "wrk":  # the same through a client that costs next to nothing
                wrk_views = run_wrk(
                    base,
                    seconds=10,
                    connections=1,
                    script=VIEW_LUA,
                    args=[key, str(args.members)],
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
            problems = server.stderr.read().decode() if server.stderr else ""
            if "Traceback" in problems:
                print(problems[-3000:], file=sys.stderr)
    ms = 1000
    print(
        f"load generator: {client}; server workers: {args.workers}; "
        f"load average before: {load_before:.2f}; "
        f"Python, 1,000 lookups after the runs: {interpreter_speed_us():.1f} us"
    )
    print(
        f"purchases: {purchases['rate']:.0f} req/s, p50 {purchases['p50'] * ms:.1f} ms, "
        f"p99 {purchases['p99'] * ms:.1f} ms (concurrency {args.concurrency}, "
        f"non-2xx {purchases['non_2xx']:.0f})"
    )
    for connections, run in sweep.items():
        print(
            f"purchases at concurrency {connections}: {run['rate']:.0f} req/s, "
            f"p50 {run['p50'] * ms:.1f} ms, p99 {run['p99'] * ms:.1f} ms, "
            f"non-2xx {run['non_2xx']:.0f}"
        )
    served = purchases["rate"] * args.seconds if client == "wrk" else args.requests
    server_cpu = (cpu_after[0] - cpu_before[0]) / served * ms
    database_cpu = (cpu_after[1] - cpu_before[1]) / served * ms
    print(
        f"CPU per purchase: server {server_cpu:.2f} ms, PostgreSQL {database_cpu:.2f} ms "
        f"(capacity of 2 cores at this cost: {2000 / (server_cpu + database_cpu):.0f}/s)"
    )
    if client == "wrk":
        # the load generator shares the cores: what it takes, the server cannot have
        generator_cpu = purchases["cpu"] / served * ms
        total = server_cpu + database_cpu + generator_cpu
        print(
            f"wrk's CPU per purchase: {generator_cpu:.2f} ms "
            f"(capacity with it: {2000 / total:.0f}/s)"
        )
    print(
        f"baseline GET /healthz: {baseline['rate']:.0f} req/s, p99 {baseline['p99'] * ms:.1f}"
        f" ms; ratio purchases/baseline = {purchases['rate'] / baseline['rate']:.3f}"
    )
    print(
        f"member view (sequential, httpx): p50 {views['p50'] * ms:.1f} ms, "
        f"p99 {views['p99'] * ms:.1f} ms"
    )
    if wrk_views is not None:
        print(
            f"member view (wrk, one connection): {wrk_views['rate']:.0f} req/s, "
            f"p50 {wrk_views['p50'] * ms:.2f} ms, p99 {wrk_views['p99'] * ms:.2f} ms"
        )


if __name__ == "__main__":
    main()
