"""The diagnosis from the store, through the API and the CLI: at the store the speed rating
drives NPS; at delivery, late orders are the pain; promoters come back more often."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cli_runner import Cli, running_cli
from experience_setup import API, buy, ok, tea_chain
from factories import TenantWithKeys
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.experience.models import SurveyResponse
from memberlab.members.models import Member

ANSWERED = datetime.fromisoformat("2026-04-01T12:00:00+08:00")
LATE = ["外卖送得太慢了，等了一个小时", "配送太慢，咖啡都凉了", "The delivery was very late."]
FINE = ["味道不错", "Nice coffee.", "还可以"]


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    """300 answers of 300 members. Store: NPS = 2 x speed - 1 (+ noise), staff and
    cleanliness random. Delivery: a third complain of lateness and score 2, the rest 9.
    Promoters buy again after answering, detractors do not."""
    tenant = tea_chain(state, client)
    rng = np.random.default_rng(5)
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        for i in range(300):
            member = Member(
                member_id=f"D-{i}",
                enrolled_at=ANSWERED - timedelta(days=30),
                created_at=ANSWERED,
                updated_at=ANSWERED,
            )
            session.add(member)
            session.flush()
            answer = SurveyResponse(
                response_id=f"A-{i}",
                member_pk=member.id,
                responded_at=ANSWERED + timedelta(minutes=i),
                survey="transactional",
                source="import",
                created_at=ANSWERED,
            )
            if i < 150:
                speed = int(rng.integers(1, 6))
                answer.touchpoint = "store"
                answer.rating_speed = speed
                answer.rating_staff = int(rng.integers(1, 6))
                answer.rating_cleanliness = int(rng.integers(1, 6))
                answer.nps = int(np.clip(2 * speed - 1 + rng.integers(-1, 2), 0, 10))
                answer.comment = FINE[i % 3]
            else:
                late = i % 3 == 0
                answer.touchpoint = "delivery"
                answer.nps = 2 if late else 9
                answer.comment = LATE[i % 3] if late else FINE[i % 3]
            session.add(answer)
    for i in range(150, 300):
        if i % 3:  # the happy delivery customers come back
            buy(client, tenant, f"D-{i}", f"B-{i}", "2026-05-15T12:00:00+08:00")
    return tenant


def test_drivers_and_pain_points_through_the_api(client: TestClient, tea: TenantWithKeys) -> None:
    found = ok(
        client.get(
            f"{API}/experience/drivers",
            params={"resamples": 200},
            headers=tea.headers(Role.ANALYST),
        )
    )

    store = [w for w in found["weights"] if w["touchpoint"] == "store"]
    top = min(store, key=lambda w: w["rank"])
    assert top["attribute"] == "speed"
    assert top["share"] > 0.8
    assert top["share_low"] <= top["share"] <= top["share_high"]
    worst = found["pain_points"][0]
    assert (worst["touchpoint"], worst["aspect"]) == ("delivery", "delivery_speed")
    assert worst["mean_nps_negative"] == 2.0
    assert worst["quotes"][0] in LATE
    assert found["aspects"][0]["aspect"] == "delivery_speed"


def test_what_an_nps_point_is_worth(client: TestClient, tea: TenantWithKeys) -> None:
    value = ok(client.get(f"{API}/experience/value", headers=tea.headers(Role.ANALYST)))

    by_segment = {row["segment"]: row for row in value["segments"]}
    assert by_segment["promoter"]["repeat_rate"] > by_segment["detractor"]["repeat_rate"]
    assert value["value_per_point"] > 0


@pytest.fixture
def cli(state: AppState, tea: TenantWithKeys, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    with running_cli(state, monkeypatch) as runner:
        yield runner


def test_the_diagnosis_on_the_command_line(cli: Cli, tmp_path) -> None:
    shown = cli.ok("cx", "diagnose", "--out", tmp_path / "diagnosis.xlsx")
    assert "外卖配送" in shown  # delivery, in Chinese
    assert (tmp_path / "diagnosis.xlsx").stat().st_size > 0
    english = cli.ok("--lang", "en", "cx", "value")
    assert "One NPS point is worth about" in english


def test_nothing_to_diagnose_says_so(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    with state.database.session(tenant_id=tea.tenant.id) as session:
        for answer in session.scalars(select(SurveyResponse)):
            session.delete(answer)
    found = ok(client.get(f"{API}/experience/drivers", headers=tea.headers(Role.ANALYST)))
    assert found["weights"] == []
    assert found["pain_points"] == []
    assert found["skipped"]  # why there are no weights
