"""``store.load``: what the rules need of one member, read back from the ledger tables.

A writer locks the member and loads its state row, its open lots and its recent activity.
On PostgreSQL that is one statement (the lots and the activity come back as JSON built by
the server); a reader that hands ``load`` a state row it read already gets the lots and the
activity by two statements of their own. Both ways must give the rules the same member.
A purchase, which knows its member by number, also reads the member and takes the lock in
that one statement (``lock_and_load``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import FIXED_NOW
from factories import TenantWithKeys, make_tenant, run_program
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import service, store
from memberlab.members import service as member_service

API = "/api/v1"


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="tea", name_zh="茶语", name_en="Teahouse")
    run_program(client, tenant, sample_program_text("teahouse"), effective_from="2025-01-01")
    return tenant


def history(client: TestClient, tea: TenantWithKeys) -> None:
    """T-1: an old purchase, recent ones (one still pending), and points spent."""

    def write(path: str, body: dict, key: str | None = None) -> None:
        headers = tea.headers() | ({"Idempotency-Key": key} if key else {})
        response = client.post(f"{API}{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text

    write("/members", {"member_id": "T-1", "enrolled_at": "2025-02-01T10:00:00+08:00"})
    for order_id, when, amount in (
        ("old", "2025-03-10T12:00:00+08:00", "40.00"),  # before the activity horizon
        ("june", "2026-06-01T12:00:00+08:00", "30.00"),
        ("last", "2026-11-25T15:00:00+08:00", "25.00"),  # pending for 3 days
    ):
        line = {"sku": "t", "category": "tea", "amount": amount}
        body = {"member_id": "T-1", "order_id": order_id, "occurred_at": when, "channel": "store"}
        body["lines"] = [line]
        write("/purchases", body)
    write("/members/T-1/adjustments", {"points": 20000, "reason": "test points"}, "grant")
    # the tumbler (6800 points) takes the soonest-expiring available lots first: the welcome
    # 200 and the old order's 40 (end of 2026), June's 30, then 6530 of the grant (end of 2027,
    # June's first by sequence); the last order's 25 are still pending
    write("/members/T-1/redemptions", {"reward": "tumbler"}, "r1")


def load_both_ways(state: AppState, tea: TenantWithKeys, *, timezone: str | None = None):
    with state.database.session(tenant_id=tea.tenant.id) as session:
        if timezone and state.database.dialect == "postgresql":
            session.execute(text(f"SET LOCAL TimeZone = '{timezone}'"))
        member = member_service.get_for_ledger(session, "T-1", lock=True)
        _, program = service.program_at(session, FIXED_NOW)
        at_once = store.load(
            session, tenant_id=tea.tenant.id, member=member, program=program, now=FIXED_NOW
        )
        row = store._STATE.first(
            session.connection(), {"tenant_id": tea.tenant.id, "member_pk": member.id}
        )
        apart = store.load(
            session,
            tenant_id=tea.tenant.id,
            member=member,
            program=program,
            now=FIXED_NOW,
            lock=False,
            state_row=row,
        )
    return at_once, apart


def test_a_writer_loads_the_member_it_would_load_statement_by_statement(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    history(client, tea)
    at_once, apart = load_both_ways(state, tea)

    assert at_once.state == apart.state
    assert at_once.lots_before == apart.lots_before
    state_ = at_once.state
    # open: the last order's pending lot and what is left of the grant; the lots the tumbler
    # used up are not loaded
    assert [(lot.reference, lot.remaining, lot.released) for lot in state_.lots] == [
        ("last", 25, False),
        ("grant", 13470, True),
    ]
    assert sum(lot.remaining for lot in state_.lots) == state_.available + state_.pending
    # the tier window looks back 12 months: March 2025 is beyond the horizon, June 2026 is not
    assert [a.at.date().isoformat() for a in state_.activity if a.orders] == [
        "2026-06-01",
        "2026-11-25",
    ]
    assert all(lot.earned_at.tzinfo is UTC for lot in state_.lots)


def test_the_lots_times_are_utc_whatever_the_database_sessions_time_zone(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    history(client, tea)
    at_once, apart = load_both_ways(state, tea, timezone="Asia/Shanghai")

    assert at_once.state == apart.state
    last = at_once.state.lots[0]
    assert last.reference == "last"
    assert last.earned_at == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    assert last.earned_at.tzinfo is UTC
    assert all(a.at.tzinfo is UTC for a in at_once.state.activity)


def test_a_purchase_locks_and_loads_its_member_by_number_in_one_statement(
    client: TestClient, tea: TenantWithKeys, state: AppState, backend: str
) -> None:
    history(client, tea)
    at_once, _ = load_both_ways(state, tea)
    with state.database.session(tenant_id=tea.tenant.id) as session:
        _, program = service.program_at(session, FIXED_NOW)
        fused = store.lock_and_load(
            session, tenant_id=tea.tenant.id, member_id="T-1", program=program, now=FIXED_NOW
        )
        unknown = store.lock_and_load(
            session, tenant_id=tea.tenant.id, member_id="nobody", program=program, now=FIXED_NOW
        )
    if backend == "sqlite":  # a statement is a function call there: the usual way
        assert fused is None
        return
    assert fused is not None
    member, loaded = fused
    assert (member.member_id, member.id) == ("T-1", at_once.member_pk)
    assert loaded.state == at_once.state
    assert loaded.lots_before == at_once.lots_before
    assert [lot.reference for lot in loaded.state.lots] == ["last", "grant"]
    assert unknown is None  # the caller enrols, or refuses, as before


def test_a_member_without_a_ledger_event_yet_is_loaded_the_usual_way(
    client: TestClient, tea: TenantWithKeys, state: AppState
) -> None:
    response = client.post(f"{API}/members", json={"member_id": "T-2"}, headers=tea.headers())
    assert response.status_code == 201, response.text
    with state.database.session(tenant_id=tea.tenant.id) as session:
        _, program = service.program_at(session, FIXED_NOW)
        fused = store.lock_and_load(
            session, tenant_id=tea.tenant.id, member_id="T-2", program=program, now=FIXED_NOW
        )
    assert fused is None  # no state row to read: ``load`` starts a new one
