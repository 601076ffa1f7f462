"""A purchase's work in the server, without HTTP: CPU and round trips per purchase.

What ``POST /api/v1/purchases`` does once the request is parsed: open the unit of work
(the API key), post the purchase (lock and read the member, run the rules, write, store the
answer, commit), on PostgreSQL, one purchase at a time. Printed per purchase: the CPU of
this process and of the PostgreSQL server processes serving it, the wall time, and the
round trips to the server (counted in libpq's trace of the connection: one ReadyForQuery
per round trip). CPU time holds when the machine is busy with something else, which the
HTTP benchmark's rates do not; round trips do not depend on the machine at all.

Baseline, measured in the same run and alternating with the purchases round after round:
the lightest unit of work that reads the store, the API key and one member's row, so the
ratio says how many of those a purchase costs.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import postgres_schema
from sqlalchemy import event, text

from memberlab.core import migrate
from memberlab.core.access import Permission
from memberlab.core.app_state import AppState
from memberlab.core.db import Database
from memberlab.core.settings import Settings
from memberlab.core.web import unit_of_work
from memberlab.datasets.demo import prepare_demo
from memberlab.ledger import service, store
from memberlab.ledger.router import ledger_context
from memberlab.ledger.schemas import PurchaseCreate

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(pids: set[int]) -> float:
    """CPU seconds used so far by these PostgreSQL server processes."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=500, help="purchases per round")
    args = parser.parse_args()
    with postgres_schema() as (url, engine):
        migrate.upgrade(engine)
        with Database(engine).session(platform=True) as session:
            key = prepare_demo(session, now=datetime.now(UTC), created_by="bench").admin_key
        # the server's own state, as ``memberlab serve`` builds it from the settings
        state = AppState.from_settings(Settings(database_url=url, language="en"))
        served = state.database.engine
        backends: set[int] = set()
        traces: list[int] = []  # the trace file, while round trips are counted
        traced: set[int] = set()

        @event.listens_for(served, "connect")
        def _remember(dbapi_connection: Any, _record: Any) -> None:
            backends.add(dbapi_connection.info.backend_pid)

        @event.listens_for(served, "checkout")
        def _trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            if traces and id(dbapi_connection) not in traced:
                traced.add(id(dbapi_connection))
                dbapi_connection.pgconn.trace(traces[0])

        start = datetime.now(UTC) - timedelta(days=30)
        rng = random.Random(7)
        counter = iter(range(10**9))

        def purchase(member: str) -> None:
            i = next(counter)
            amount = f"{rng.randint(900, 9900) / 100:.2f}"
            body = PurchaseCreate.model_validate(
                {
                    "member_id": member,
                    "order_id": f"p-{i}",
                    "occurred_at": (start + timedelta(seconds=i * 10)).isoformat(),
                    "channel": "mini_program",
                    "lines": [{"sku": "tea-1", "category": "tea", "amount": amount}],
                }
            )
            with unit_of_work(state, key, Permission.PURCHASES_WRITE) as ctx:
                answer = service.post_purchase(ledger_context(ctx), body)
            assert answer.status_code == 201, answer

        def read_member(member: str) -> None:
            with unit_of_work(state, key, Permission.MEMBERS_READ) as ctx:
                store.read_member(ctx.session, ctx.tenant_id, member)

        # every member's first purchase (which enrols it), then statistics
        for n in range(args.members):
            purchase(f"B{n:06d}")
        with engine.begin() as connection:
            for table in ("members", "member_states", "points_lots", "ledger_entries", "orders"):
                connection.execute(text(f"ANALYZE {table}"))

        def measure(work: Callable[[str], None]) -> tuple[float, float, float]:
            client, server, wall = time.process_time(), server_cpu(backends), time.perf_counter()
            for _ in range(args.per_round):
                work(f"B{rng.randrange(args.members):06d}")
            n = args.per_round
            return (
                (time.process_time() - client) / n,
                (server_cpu(backends) - server) / n,
                (time.perf_counter() - wall) / n,
            )

        totals = {"purchase": [0.0, 0.0, 0.0], "baseline": [0.0, 0.0, 0.0]}
        for _ in range(args.rounds):
            for name, work in (("purchase", purchase), ("baseline", read_member)):
                for i, value in enumerate(measure(work)):
                    totals[name][i] += value / args.rounds

        # round trips: libpq's trace of a few more of each
        round_trips = {}
        for name, work in (("purchase", purchase), ("baseline", read_member)):
            with tempfile.TemporaryFile() as trace:
                traces[:] = [trace.fileno()]
                work("B000000")  # the connection's first use is not counted
                trace.flush()
                trace.seek(0, os.SEEK_END)
                skip = trace.tell()
                for _ in range(20):
                    work(f"B{rng.randrange(args.members):06d}")
                trace.seek(skip)
                round_trips[name] = trace.read().count(b"\tReadyForQuery") / 20
                traces.clear()
                for connection in list(traced):
                    traced.discard(connection)
                served.dispose()  # the traced connections go

    for name, (client, server, wall) in totals.items():
        print(
            f"{name}: client CPU {client * 1e6:.0f} µs, PostgreSQL CPU {server * 1e6:.0f} µs, "
            f"wall {wall * 1e6:.0f} µs, round trips {round_trips[name]:.1f}"
        )
    purchase_cpu = sum(totals["purchase"][:2])
    baseline_cpu = sum(totals["baseline"][:2])
    print(f"ratio purchase/baseline (client + PostgreSQL CPU) = {purchase_cpu / baseline_cpu:.2f}")


if __name__ == "__main__":
    main()
