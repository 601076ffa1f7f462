"""The engagement through the API: terms in, events recorded and checked, a change agreed as
a new version, the status with its breaches; bad input named, nothing half-written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import TenantWithKeys, make_tenant
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.engagement.models import EngagementEvent, EngagementVersion

API = "/api/v1/engagements"
SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
# the sample as JSON (dates as text)
TERMS: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
)
NUMBER = TERMS["contract_number"]


@pytest.fixture
def firm(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="firm")
    created = client.post(API, json=TERMS, headers=tenant.headers())
    assert created.status_code == 201, created.text
    return tenant


def event(client: TestClient, firm: TenantWithKeys, kind: str, on: str, key: str | None = None,
          **payload: Any):  # fmt: skip
    headers = firm.headers()
    if key:
        headers["Idempotency-Key"] = key
    return client.post(
        f"{API}/{NUMBER}/events", json={"kind": kind, "on": on, "payload": payload},
        headers=headers,
    )  # fmt: skip


def count(state: AppState, firm: TenantWithKeys, model: type) -> int:
    with state.database.session(tenant_id=firm.tenant.id) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_terms_in_and_status_out(client: TestClient, firm: TenantWithKeys) -> None:
    assert client.post(API, json=TERMS, headers=firm.headers()).status_code == 409
    listed = client.get(API, headers=firm.headers(Role.ANALYST)).json()
    assert [(e["contract_number"], e["status"]) for e in listed] == [(NUMBER, "draft")]

    assert event(client, firm, "signed", "2026-01-05").status_code == 201
    assert event(client, firm, "payment", "2026-01-09", amount="144000.00",
                 instalment="advance").status_code == 201  # fmt: skip

    found = client.get(
        f"{API}/{NUMBER}/status", params={"as_of": "2026-02-20"}, headers=firm.headers()
    ).json()
    advance, design, _ = found["instalments"]
    assert (advance["due"], advance["state"], advance["due_provisional"]) == (
        "2026-01-12",
        "paid",
        False,
    )
    assert "2026-01-12" in advance["due_rule"]
    assert design["due"] is None
    late = {b["subject"]: b for b in found["breaches"]}
    # nothing handed in by 20 February: the client's questionnaire (due 20 January) and the
    # provider's schedule and team introduction (due 25 January) are late
    assert set(late) == {"needs_questionnaire", "service_schedule", "team_introduction"}
    assert late["needs_questionnaire"]["type"] == "client_no_cooperation"
    # 31 days x 144.00
    assert late["needs_questionnaire"]["amount"] == "4464.00"


def test_bad_events_are_named_and_nothing_is_stored(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    early = event(client, firm, "payment", "2026-01-09", amount="1.00")
    assert early.status_code == 422  # not signed yet
    assert event(client, firm, "signed", "2026-01-05").status_code == 201
    cases = [
        (("payment", "2026-01-09"), {"amount": "200000.00", "instalment": "advance"},
         "payload.amount", "more than the 144000.00 CNY still owed"),
        (("acceptance", "2026-01-20"), {"deliverable": "program_design", "accepted_by": "王明"},
         "payload.deliverable", "never submitted"),
        (("submission", "2026-01-20"), {"deliverable": "no_such_thing"},
         "payload.deliverable", "No no_such_thing"),
        (("assessment", "2026-01-20"), {"standard": "nps", "value": "abc"},
         "payload.value", ""),
        (("submission", "2030-01-01"), {"deliverable": "training_plan"}, "on", "after today"),
        (("signed", "2026-01-06"), {}, "kind", "signed already"),
    ]  # fmt: skip
    for (kind, on), payload, field, message in cases:
        refused = event(client, firm, kind, on, **payload)
        assert refused.status_code == 422, (kind, refused.text)
        (error,) = refused.json()["errors"]
        assert error["field"] == field
        assert message in error["message"]
    assert count(state, firm, EngagementEvent) == 1  # the signing only


def test_events_replay_with_their_key(client: TestClient, firm: TenantWithKeys) -> None:
    first = event(client, firm, "signed", "2026-01-05", key="sign-1")
    again = event(client, firm, "signed", "2026-01-05", key="sign-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = event(client, firm, "questionnaire", "2026-01-05", key="sign-1",
                  answers={"goal": "提升复购"}, answered_by="王明")  # fmt: skip
    assert other.status_code == 409


def test_a_change_is_agreed_as_a_new_version(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    event(client, firm, "signed", "2026-01-05")
    requested = event(
        client, firm, "change_request", "2026-03-02", code="cr-1",
        scope="增加门店体验诊断 20 家", fee_change="60000.00",
        schedule_impact="诊断里程碑顺延两周", requested_by="王明",
    )  # fmt: skip
    assert requested.status_code == 201
    changed = copy.deepcopy(TERMS)
    changed["payment"]["fee"] = 540000.00
    changed["milestones"][1]["planned"] = "2026-04-14"  # diagnosis, two weeks later
    changed["milestones"][2]["planned"] = "2026-05-14"
    body = {"on": "2026-03-06", "decided_by": "王明", "terms": changed}

    approved = client.post(f"{API}/{NUMBER}/changes/cr-1/approve", json=body,
                           headers=firm.headers())  # fmt: skip

    assert approved.status_code == 201, approved.text
    assert approved.json()["version"] == 2
    versions = client.get(f"{API}/{NUMBER}/versions", headers=firm.headers()).json()
    assert [(v["version"], v["change_code"]) for v in versions] == [(1, None), (2, "cr-1")]
    assert versions[1]["reason"] == "增加门店体验诊断 20 家"
    terms = client.get(f"{API}/{NUMBER}", headers=firm.headers()).json()["terms"]
    assert terms["payment"]["fee"] == "540000.0"
    diagnosis = terms["milestones"][1]
    assert (diagnosis["planned"], diagnosis["baseline"]) == ("2026-04-14", "2026-03-31")
    again = client.post(f"{API}/{NUMBER}/changes/cr-1/approve", json=body, headers=firm.headers())
    assert again.status_code == 422  # decided already
    unknown = client.post(f"{API}/{NUMBER}/changes/cr-9/approve", json=body,
                          headers=firm.headers())  # fmt: skip
    assert unknown.status_code == 422
    assert count(state, firm, EngagementVersion) == 2


def test_terms_that_do_not_hold_are_refused(client: TestClient, firm: TenantWithKeys) -> None:
    broken = copy.deepcopy(TERMS)
    broken["contract_number"] = "ML-2026-002"
    broken["payment"]["instalments"][2]["portion"] = 20
    refused = client.post(API, json=broken, headers=firm.headers())
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "payment.instalments"
    valid = client.post(f"{API}/validate", json=TERMS, headers=firm.headers())
    assert valid.json() == {"valid": True, "contract_number": NUMBER}
    assert client.get(f"{API}/NOPE", headers=firm.headers()).status_code == 404


def test_evidence_uploaded_listed_and_verified(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    uploaded = client.post(
        f"{API}/{NUMBER}/evidence",
        files={"file": ("验收单.pdf", "%PDF-1.4 accepted by 王明".encode())},
        data={"kind": "acceptance", "title": "方案验收单"},
        headers=firm.headers(),
    )
    assert uploaded.status_code == 201, uploaded.text
    item = uploaded.json()
    assert (item["seq"], item["kind"], item["size"]) == (1, "acceptance", 27)
    empty = client.post(
        f"{API}/{NUMBER}/evidence",
        files={"file": ("empty.txt", b"")},
        data={"kind": "nonsense", "title": "x"},
        headers=firm.headers(),
    )
    assert empty.status_code == 422
    assert {e["field"] for e in empty.json()["errors"]} >= {"kind"}
    listed = client.get(f"{API}/{NUMBER}/evidence", headers=firm.headers(Role.ANALYST)).json()
    assert [i["title"] for i in listed] == ["方案验收单"]
    checked = client.get(f"{API}/{NUMBER}/evidence/verify", headers=firm.headers()).json()
    assert checked["ok"] is True

    stored = next((state.settings.data_dir / "evidence").rglob("*.pdf"))
    stored.write_bytes(b"%PDF-1.4 accepted by nobody")  # someone edits the file afterwards
    checked = client.get(f"{API}/{NUMBER}/evidence/verify", headers=firm.headers()).json()
    assert checked["ok"] is False
    assert checked["items"][0]["problems"]
