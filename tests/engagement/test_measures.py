"""Standards measured from the client's data: NPS, repeat rate and active members over the
standard's period, recorded as assessment rounds; worked by hand in the comments."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from experience_setup import buy, tea_chain
from factories import TenantWithKeys
from memberlab.core.app_state import AppState
from memberlab.experience.models import SurveyResponse

API = "/api/v1/engagements"
SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
TERMS: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
)
N = TERMS["contract_number"]


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    """Purchases from July to November: M-1 (20 November), M-2 (1 August and 1 September),
    M-3 (15 August). Answers in the period: NPS 10, 9, 7 and 3."""
    tenant = tea_chain(state, client)
    buy(client, tenant, "M-2", "O-2", "2026-08-01T10:00:00+08:00")
    buy(client, tenant, "M-2", "O-3", "2026-09-01T10:00:00+08:00")
    buy(client, tenant, "M-3", "O-4", "2026-08-15T10:00:00+08:00")
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        # the last answer, after the period, does not count
        answers = [(f"2026-09-{10 + i}", score) for i, score in enumerate((10, 9, 7, 3))]
        for i, (day, score) in enumerate([*answers, ("2026-11-22", 0)]):
            at = datetime.fromisoformat(f"{day}T12:00:00+08:00")
            session.add(
                SurveyResponse(
                    response_id=f"S-{i}",
                    responded_at=at,
                    nps=score,
                    survey="transactional",
                    source="import",
                    created_at=at,
                )
            )
    terms = copy.deepcopy(TERMS)
    for standard in terms["standards"]:
        standard["period_end"] = "2026-11-20"
    assert client.post(API, json=terms, headers=tenant.headers()).status_code == 201
    signed = {"kind": "signed", "on": "2026-01-05", "payload": {}}
    assert (
        client.post(f"{API}/{N}/events", json=signed, headers=tenant.headers()).status_code == 201
    )
    return tenant


def measure(client: TestClient, tenant: TenantWithKeys, code: str) -> Any:
    return client.post(f"{API}/{N}/standards/{code}/measure", json={"on": "2026-11-24"},
                       headers=tenant.headers())  # fmt: skip


def test_nps_and_repeat_rate_from_the_data(client: TestClient, tea: TenantWithKeys) -> None:
    # 2 promoters and 1 detractor of 4 answers: 50 % - 25 % = 25.00, the target exactly
    nps = measure(client, tea, "nps")
    assert nps.status_code == 201, nps.text
    assert (nps.json()["value"], nps.json()["measured_by"]) == ("25.00", "MemberLab")
    assert "n=4" in nps.json()["note"]
    # 3 members bought in the period, 1 of them on two days: 33.33 %, below 35
    repeat = measure(client, tea, "repeat_rate")
    assert repeat.json()["value"] == "33.33"

    status = client.get(f"{API}/{N}/status", params={"as_of": "2026-11-24"},
                        headers=tea.headers()).json()  # fmt: skip
    states = {s["code"]: s for s in status["standards"]}
    assert states["nps"]["state"] == "passed"
    assert states["repeat_rate"]["state"] == "improving"  # an improvement round opens
    assert states["repeat_rate"]["improvement_rounds_left"] == 2


def test_what_cannot_be_measured_is_said(client: TestClient, tea: TenantWithKeys) -> None:
    cases = measure(client, tea, "case_deadline_met")  # no case was ever closed
    assert cases.status_code == 422
    assert "no data" in cases.json()["errors"][0]["message"]
    unknown = measure(client, tea, "loyalty")
    assert unknown.status_code == 422
    early = client.post(f"{API}/{N}/standards/nps/measure", json={"on": "2026-11-10"},
                        headers=tea.headers())  # fmt: skip
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "on"
