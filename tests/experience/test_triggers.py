"""Triggers as a job of ``as_of``: purchases at the right touchpoints invite after their
delay, sampling and the contact cap decide who, and a rerun invites nobody twice."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from experience_setup import API, active_survey, buy, ok, sample_survey, tea_chain
from factories import TenantWithKeys
from memberlab.core.app_state import AppState
from memberlab.experience.invitations import sampled
from memberlab.experience.models import SurveyInvitation
from memberlab.webhooks.models import OutboxEvent


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = tea_chain(state, client)
    ok(
        client.post(
            f"{API}/webhooks", json={"url": "http://127.0.0.1:9/sms"}, headers=tenant.headers()
        ),
        201,
    )
    return tenant


def run(client: TestClient, tenant: TenantWithKeys, as_of: str) -> dict:
    return ok(
        client.post(f"{API}/experience/jobs", json={"as_of": as_of}, headers=tenant.headers())
    )


def invitations(state: AppState, tenant: TenantWithKeys) -> list[SurveyInvitation]:
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        return list(session.scalars(select(SurveyInvitation).order_by(SurveyInvitation.id)))


def test_sampling_is_stable_and_close_to_its_rate() -> None:
    chosen = [sampled(0.1, "after_purchase", f"O-{i}") for i in range(20_000)]
    assert chosen == [sampled(0.1, "after_purchase", f"O-{i}") for i in range(20_000)]
    assert sum(chosen) / len(chosen) == pytest.approx(0.1, abs=0.01)  # 3 SE is 0.0064
    assert all(sampled(1.0, "x", str(i)) for i in range(100))
    assert not any(sampled(0.0, "x", str(i)) for i in range(100))


def test_purchases_invite_after_their_delay_once_per_order(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    # everyone sampled, every channel but delivery
    survey = sample_survey("after_purchase")
    survey["triggers"] = [{"event": "purchase", "touchpoints": ["store", "app"], "delay_hours": 2}]
    ok(client.post(f"{API}/experience/surveys", json=survey, headers=tea.headers()), 201)
    ok(
        client.post(
            f"{API}/experience/surveys/after_purchase/status",
            json={"status": "active"},
            headers=tea.headers(),
        )
    )
    state.clock.now = datetime.fromisoformat("2026-11-26T12:00:00+08:00")  # type: ignore[attr-defined]
    buy(client, tea, "M-2", "O-2", "2026-11-26T09:00:00+08:00", channel="app")
    buy(client, tea, "M-3", "O-3", "2026-11-26T09:30:00+08:00", channel="delivery")
    buy(client, tea, "M-4", "O-4", "2026-11-26T10:30:00+08:00")  # delay not over at 12:00

    first = run(client, tea, "2026-11-26T12:00:00+08:00")

    # M-1's purchase of 20 November happened before the survey existed: not asked
    assert first["invited"] == {"after_purchase": 1}
    (invited,) = invitations(state, tea)
    assert (invited.order_id, invited.touchpoint, invited.trigger) == ("O-2", "app", "purchase")
    assert invited.created_at == datetime.fromisoformat("2026-11-26T11:00:00+08:00")
    assert run(client, tea, "2026-11-26T12:00:00+08:00")["invited"] == {}  # a rerun: nothing
    state.clock.now = datetime.fromisoformat("2026-11-26T12:40:00+08:00")  # type: ignore[attr-defined]
    later = run(client, tea, "2026-11-26T12:40:00+08:00")
    assert later["invited"] == {"after_purchase": 1}  # O-4, its two hours now over
    with state.database.session(tenant_id=tea.tenant.id) as session:
        events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_type == "survey.invitation")
        ).all()
        assert len(events) == 2
        assert all(e.payload["data"]["url"].startswith("http://127.0.0.1:8000/s/") for e in events)


def test_the_contact_cap_holds_across_surveys(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    active_survey(
        client,
        tea,
        "after_purchase",
        triggers=[{"event": "purchase", "delay_hours": 0}],
    )
    state.clock.now = datetime.fromisoformat("2026-11-26T12:00:00+08:00")  # type: ignore[attr-defined]
    buy(client, tea, "M-2", "O-2", "2026-11-26T09:00:00+08:00")
    buy(client, tea, "M-2", "O-3", "2026-11-26T10:00:00+08:00")  # the same member again
    buy(client, tea, "M-5", "O-5", "2026-11-26T10:00:00+08:00")

    report = run(client, tea, "2026-11-26T12:00:00+08:00")

    assert report["invited"] == {"after_purchase": 2}  # O-2 and O-5
    assert report["skipped_contact_cap"] == 1  # O-3: M-2 asked an hour before
    assert [i.order_id for i in invitations(state, tea)] == ["O-2", "O-5"]
    # a relationship survey the same day asks nobody already asked in the last 30 days
    active_survey(client, tea, "relationship", triggers=[{"event": "periodic", "every_days": 365}])
    yearly = run(client, tea, "2026-11-26T12:00:00+08:00")
    assert yearly["invited"] == {"relationship_nps": 1}  # M-1 only
    assert yearly["skipped_contact_cap"] == 3  # M-2 and M-5, and O-3 looked at again
    assert run(client, tea, "2026-11-26T12:00:00+08:00")["invited"] == {}


def test_the_job_refuses_a_future_moment(client: TestClient, tea: TenantWithKeys) -> None:
    response = client.post(
        f"{API}/experience/jobs", json={"as_of": "2030-01-01T00:00:00+08:00"}, headers=tea.headers()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "as_of"
