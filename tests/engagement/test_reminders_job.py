"""Reminders pushed: the engagement's job writes one ``engagement.reminder`` webhook event for
each item falling due within the week, as a function of ``as_of``, and never twice; it runs
with ``memberlab jobs run --as-of`` and in the server's scheduler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from cli_runner import Cli, running_cli
from factories import TenantWithKeys, make_tenant
from memberlab.core.app_state import AppState
from memberlab.engagement.jobs import run_jobs
from memberlab.engagement.models import ReminderSent
from memberlab.ledger.scheduler import Scheduler
from memberlab.webhooks.models import OutboxEvent

API = "/api/v1/engagements"
SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
TERMS: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
)
NUMBER = TERMS["contract_number"]
# 8 January 2026, 09:00 in Shanghai
MORNING = datetime(2026, 1, 8, 1, 0, tzinfo=UTC)


@pytest.fixture
def firm(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="firm")
    assert client.post(API, json=TERMS, headers=tenant.headers()).status_code == 201
    signed = {"kind": "signed", "on": "2026-01-05", "payload": {}}
    assert client.post(f"{API}/{NUMBER}/events", json=signed, headers=tenant.headers()).is_success
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/reminders", "event_types": ["engagement.reminder"]},
        headers=tenant.headers(),
    )
    assert hook.status_code == 201, hook.text
    return tenant


def outbox(state: AppState, firm: TenantWithKeys) -> list[dict[str, Any]]:
    with state.database.session(tenant_id=firm.tenant.id) as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        return [r.payload for r in rows if r.event_type == "engagement.reminder"]


def send(state: AppState, firm: TenantWithKeys, as_of: datetime):
    with state.database.session(tenant_id=firm.tenant.id) as session:
        return run_jobs(session, as_of=as_of)


def test_a_reminder_is_sent_once_for_what_falls_due_this_week(
    state: AppState, firm: TenantWithKeys
) -> None:
    # Thursday 8 January: the advance (due Monday 12 January) falls due within the week
    first = send(state, firm, MORNING)
    assert (first.day.isoformat(), first.sent, first.queued) == ("2026-01-08", 1, 1)
    (event,) = outbox(state, firm)
    assert event["type"] == "engagement.reminder"
    assert event["member_id"] is None
    assert event["data"] == {
        "contract_number": NUMBER,
        "kind": "instalment",
        "subject": "advance",
        "side": "client",
        "due": "2026-01-12",
        "days_left": 4,
        "message": {
            "zh-CN": "2026-01-12：advance 期款项到期（甲方付款）。",
            "en": "2026-01-12: instalment advance falls due (client to pay).",
        },
    }

    # the same day again, and the next morning: nothing is sent twice
    again = send(state, firm, MORNING)
    assert (again.sent, again.already_sent) == (0, 1)
    assert send(state, firm, datetime(2026, 1, 9, 1, 0, tzinfo=UTC)).sent == 0
    assert len(outbox(state, firm)) == 1

    # Wednesday 14 January: the client's questionnaire is due on the 20th
    later = send(state, firm, datetime(2026, 1, 14, 1, 0, tzinfo=UTC))
    assert [(i["kind"], i["subject"], i["on"]) for i in later.items] == [
        ("deliverable", "needs_questionnaire", "2026-01-20")
    ]
    with state.database.session(tenant_id=firm.tenant.id) as session:
        keys = session.scalars(select(ReminderSent.key).order_by(ReminderSent.id)).all()
    assert keys == ["instalment:advance:2026-01-12", "deliverable:needs_questionnaire:2026-01-20"]


def test_a_reminder_nobody_subscribes_to_waits_for_a_subscriber(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    (hook,) = client.get("/api/v1/webhooks", headers=firm.headers()).json()
    client.delete(f"/api/v1/webhooks/{hook['id']}", headers=firm.headers()).raise_for_status()

    unheard = send(state, firm, MORNING)
    assert (unheard.sent, unheard.waiting, unheard.queued) == (0, 1, 0)
    assert outbox(state, firm) == []
    with state.database.session(tenant_id=firm.tenant.id) as session:
        assert session.scalars(select(ReminderSent)).all() == []

    subscribe = {"url": "http://127.0.0.1:9/r", "event_types": ["engagement.reminder"]}
    client.post("/api/v1/webhooks", json=subscribe, headers=firm.headers()).raise_for_status()
    heard = send(state, firm, datetime(2026, 1, 9, 1, 0, tzinfo=UTC))
    assert (heard.sent, heard.waiting, heard.queued) == (1, 0, 1)
    assert [e["data"]["subject"] for e in outbox(state, firm)] == ["advance"]


def test_the_reminders_query_says_what_was_sent(
    client: TestClient, state: AppState, firm: TenantWithKeys, clock
) -> None:
    clock.now = MORNING
    send(state, firm, MORNING)
    shown = client.get(f"{API}/{NUMBER}/reminders", headers=firm.headers()).json()
    assert [(r["subject"], r["sent_at"]) for r in shown] == [("advance", MORNING.isoformat())]


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch, firm: TenantWithKeys) -> Iterator[Cli]:
    with running_cli(state, monkeypatch) as runner:
        yield runner


def test_jobs_run_sends_the_reminders(cli: Cli, state: AppState, firm: TenantWithKeys) -> None:
    out = cli.ok("--lang", "en", "jobs", "run", "--as-of", "2026-01-08")
    assert (
        "Engagement reminders: 1 sent (1 webhook events), 0 sent before, 0 waiting for a "
        "webhook endpoint subscribed to engagement.reminder, 1 engagements." in out
    )
    again = cli.json("jobs", "run", "--as-of", "2026-01-08")
    assert again["engagement_reminders"]["sent"] == 0
    assert again["engagement_reminders"]["already_sent"] == 1
    assert "项目提醒：发送 0 条" in cli.ok("jobs", "run", "--as-of", "2026-01-08")
    assert len(outbox(state, firm)) == 1


def test_the_scheduler_sends_them_every_hour(state: AppState, firm: TenantWithKeys) -> None:
    # the test clock stands at 25 November 2026: the three standards' period ends on the 30th
    Scheduler(state).run_jobs_once()
    Scheduler(state).run_jobs_once()

    sent = [(e["data"]["kind"], e["data"]["subject"]) for e in outbox(state, firm)]
    assert sorted(sent) == [
        ("standard_period", "case_deadline_met"),
        ("standard_period", "nps"),
        ("standard_period", "repeat_rate"),
    ]


def test_the_jobs_endpoint_sends_them_too(
    client: TestClient, state: AppState, firm: TenantWithKeys, clock
) -> None:
    clock.now = MORNING
    body = {"as_of": MORNING.isoformat()}
    run = client.post("/api/v1/jobs/run", json=body, headers=firm.headers())
    assert run.status_code == 200, run.text
    assert run.json()["engagement_reminders"]["sent"] == 1
    again = client.post("/api/v1/jobs/run", json={}, headers=firm.headers()).json()
    assert again["engagement_reminders"]["already_sent"] == 1
    assert len(outbox(state, firm)) == 1
