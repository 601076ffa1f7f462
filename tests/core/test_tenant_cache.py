"""A tenant's configuration (program activations, webhook endpoints) kept per process.

Every change to it renews the tenant's ``config_stamp``; requests read the stamp with
their API key and use what the process keeps only while it is the same. A change made
around this process (another server process, the CLI) is therefore in force for the very
next request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import TenantWithKeys, make_tenant, run_program
from memberlab.core.app_state import AppState
from memberlab.core.models import Tenant
from memberlab.datasets.demo import sample_program_text
from memberlab.members.models import Member
from memberlab.programs import service as programs
from memberlab.programs.service import _ACTIVATIONS
from memberlab.webhooks import service as webhooks
from memberlab.webhooks.models import OutboxEvent

API = "/api/v1"
TEAHOUSE = sample_program_text("teahouse")
# the same program earning 3 base points per yuan instead of 1
TEAHOUSE_TRIPLE = TEAHOUSE.replace("    points: 1\n    per: 1\n", "    points: 3\n    per: 1\n", 1)


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="tea")
    run_program(client, tenant, TEAHOUSE)
    return tenant


def stamp_of(state: AppState, tenant: TenantWithKeys) -> str:
    with state.database.session(platform=True) as session:
        stamp = session.scalar(select(Tenant.config_stamp).where(Tenant.id == tenant.tenant.id))
    assert stamp
    return stamp


def activate_triple_points(state: AppState, tenant: TenantWithKeys) -> None:
    """As another server process or the CLI would: straight through the service, in force
    from 1 January 2026."""
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        loaded = programs.load(session, source=TEAHOUSE_TRIPLE, created_by="t", now=state.clock())
        programs.activate(
            session,
            version_id=loaded.version.id,
            effective_from=datetime.fromisoformat("2026-01-01T00:00:00+08:00"),
            activated_by="t",
            now=state.clock(),
        )


def buy(client: TestClient, tenant: TenantWithKeys, order_id: str, yuan: str) -> dict[str, Any]:
    """A plain tea on a day with no promotion: the base rule alone earns."""
    body = {
        "member_id": "T-1",
        "order_id": order_id,
        "occurred_at": "2026-11-12T12:00:00+08:00",
        "channel": "store",
        "lines": [{"sku": "oolong", "category": "tea", "amount": yuan}],
    }
    response = client.post(f"{API}/purchases", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    return response.json()


def test_activating_a_program_renews_the_stamp(state: AppState, tea: TenantWithKeys) -> None:
    before = stamp_of(state, tea)
    activate_triple_points(state, tea)

    assert stamp_of(state, tea) != before


def test_adding_and_deactivating_an_endpoint_renew_the_stamp(
    state: AppState, tea: TenantWithKeys
) -> None:
    first = stamp_of(state, tea)
    with state.database.session(tenant_id=tea.tenant.id) as session:
        endpoint = webhooks.create_endpoint(
            session, url="https://example.com/hook", event_types=[], now=state.clock()
        )
    second = stamp_of(state, tea)
    with state.database.session(tenant_id=tea.tenant.id) as session:
        webhooks.deactivate(session, endpoint.id)

    assert len({first, second, stamp_of(state, tea)}) == 3


def test_other_writes_leave_the_stamp(
    state: AppState, client: TestClient, tea: TenantWithKeys
) -> None:
    before = stamp_of(state, tea)

    buy(client, tea, "o-1", "10.00")

    assert stamp_of(state, tea) == before


def test_purchases_read_the_activations_once_while_the_stamp_stands(
    client: TestClient, tea: TenantWithKeys
) -> None:
    buy(client, tea, "o-1", "10.00")
    reads = _ACTIVATIONS.reads

    buy(client, tea, "o-2", "10.00")
    buy(client, tea, "o-3", "10.00")

    assert _ACTIVATIONS.reads == reads


def test_a_program_activated_around_this_process_is_in_force_for_the_next_request(
    state: AppState, client: TestClient, tea: TenantWithKeys
) -> None:
    assert buy(client, tea, "o-1", "10.00")["explanation"] == [{"rule": "base", "points": 10}]
    activate_triple_points(state, tea)  # not through this process's API

    assert buy(client, tea, "o-2", "10.00")["explanation"] == [{"rule": "base", "points": 30}]


def test_an_endpoint_added_around_this_process_gets_the_next_requests_events(
    state: AppState, client: TestClient, tea: TenantWithKeys
) -> None:
    buy(client, tea, "o-1", "10.00")  # no endpoint yet: nothing to deliver
    with state.database.session(tenant_id=tea.tenant.id) as session:
        webhooks.create_endpoint(
            session, url="https://example.com/hook", event_types=[], now=state.clock()
        )

    buy(client, tea, "o-2", "10.00")

    with state.database.session(tenant_id=tea.tenant.id) as session:
        events = session.scalars(select(OutboxEvent.event_type)).all()
        assert session.scalar(select(Member.member_id)) == "T-1"
    assert "points.earned" in events
