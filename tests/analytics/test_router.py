"""The analytics routes on the store: the demo world (tiny) imported, then CLV and RFM."""

from __future__ import annotations

import io

import polars as pl
import pytest
from fastapi.testclient import TestClient

from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.tenants import create_key
from memberlab.datasets.demo import build_demo_world, prepare_demo


@pytest.fixture
def demo(state: AppState) -> dict[str, str]:
    with state.database.session(platform=True) as session:
        built = prepare_demo(session, now=state.clock(), created_by="test")
        tenant_id = built.tenant.id
        analyst = create_key(
            session, role=Role.ANALYST, tenant_id=tenant_id, name="analyst", now=state.clock()
        ).secret
    build_demo_world(state, tenant_id=tenant_id, members=300, seed=5)
    return {"Authorization": f"Bearer {analyst}", "Accept-Language": "en"}


def test_clv_on_the_store_fits_both_models(client: TestClient, demo: dict[str, str]) -> None:
    answer = client.get("/api/v1/analytics/clv", params={"time_unit": "week"}, headers=demo)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["params"]) == {"r", "alpha", "a", "b"}
    assert set(body["spend_model"]["params"]) == {"p", "q", "gamma"}
    assert body["converged"] is True
    assert body["loglik"] < 0
    assert 0 < body["expected_alive"] <= body["members"] <= 300


def test_clv_per_member_file(client: TestClient, demo: dict[str, str]) -> None:
    answer = client.get("/api/v1/analytics/clv", params={"members_format": "parquet"}, headers=demo)

    assert answer.status_code == 200
    frame = pl.read_parquet(io.BytesIO(answer.content))
    assert {"member_id", "p_alive", "expected_purchases", "clv"} <= set(frame.columns)
    assert frame["p_alive"].is_between(0, 1).all()


def test_rfm_segments_cover_every_member(client: TestClient, demo: dict[str, str]) -> None:
    body = client.get("/api/v1/analytics/rfm", headers=demo).json()

    assert sum(s["members"] for s in body["segments"]) == body["members"] > 0
    assert all(s["name_zh"] and s["name_en"] for s in body["segments"])
