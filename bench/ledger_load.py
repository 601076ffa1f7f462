"""A writer's read of one member on PostgreSQL: one statement against three.

Every purchase, return, redemption and adjustment locks its member and loads what the
rules need: the state row, the open lots and the recent activity. ``store.load`` reads
them in one statement on PostgreSQL (lots and activity as JSON built by the server); the
baseline, measured in the same run, is the three statements it replaced, which
``store.load`` still runs when handed a state row (as readers do). The two ways alternate,
round after round, so that a machine whose speed drifts treats both alike; the figures are
CPU microseconds per load, in this process and in PostgreSQL's server process, so they hold
when the machine is busy with something else.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import postgres_schema
from sqlalchemy import text

from memberlab.core import migrate
from memberlab.core.db import CONFIG_STAMP, Database
from memberlab.core.pii import PersonalDataVault
from memberlab.datasets.demo import prepare_demo
from memberlab.ledger import service, store
from memberlab.ledger.schemas import LineIn, PurchaseCreate
from memberlab.members import service as member_service

TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by one PostgreSQL server process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--purchases", type=int, default=6, help="history per member")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loads", type=int, default=100, help="loads per way and round")
    args = parser.parse_args()
    now = datetime.now(UTC)
    vault = PersonalDataVault("bench-" * 6)
    rng = random.Random(7)
    with postgres_schema() as (_url, engine):
        migrate.upgrade(engine)
        database = Database(engine)
        with database.session(platform=True) as session:
            tenant_id = prepare_demo(session, now=now, created_by="bench").tenant.id
        # each member: a few purchases over the last months (lots, some pending; activity)
        start = now - timedelta(days=300)
        for number in range(args.members * args.purchases):
            member = f"B{number % args.members:06d}"
            at = start + timedelta(
                minutes=number * 300 * 24 * 60 // (args.members * args.purchases)
            )
            with database.session(tenant_id=tenant_id) as session:
                body = PurchaseCreate(
                    member_id=member,
                    order_id=f"load-{number}",
                    occurred_at=at,
                    channel="store",
                    lines=[LineIn(sku="tea", category="tea", amount=Decimal(rng.randint(9, 98)))],
                )
                ctx = service.LedgerContext(session, tenant_id, now, vault, "bench")
                service.post_purchase(ctx, body)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
            stamp = connection.execute(
                text("SELECT config_stamp FROM tenants WHERE id = :id"), {"id": tenant_id}
            ).scalar()
        spent = {"one statement": [0.0, 0.0, 0], "three statements": [0.0, 0.0, 0]}
        for round_ in range(args.rounds):
            for way, totals in spent.items():
                with database.session(tenant_id=tenant_id) as session:
                    session.info[CONFIG_STAMP] = stamp
                    connection = session.connection()
                    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                    _, program = service.program_at(session, now)
                    client, server = time.process_time(), server_cpu(pid)
                    for i in range(args.loads):
                        number = (round_ * args.loads + i) % args.members
                        member = member_service.get_for_ledger(session, f"B{number:06d}", lock=True)
                        row = store.UNREAD
                        if way == "three statements":
                            keys = {"tenant_id": tenant_id, "member_pk": member.id}
                            row = store._STATE.first(connection, keys)
                        store.load(
                            session,
                            tenant_id=tenant_id,
                            member=member,
                            program=program,
                            now=now,
                            lock=False,
                            state_row=row,
                        )
                    totals[0] += time.process_time() - client
                    totals[1] += server_cpu(pid) - server
                    totals[2] += args.loads
    per_load = {
        way: (1e6 * client / loads, 1e6 * server / loads)
        for way, (client, server, loads) in spent.items()
    }
    for way, (client, server) in per_load.items():
        print(f"{way}: client {client:.0f} us, PostgreSQL {server:.0f} us CPU per member load")
    (one_client, one_server), (three_client, three_server) = per_load.values()
    print(
        f"ratio one/three statements: client {one_client / three_client:.2f}, "
        f"PostgreSQL {one_server / three_server:.2f} (each load includes the member's lookup)"
    )


if __name__ == "__main__":
    main()
