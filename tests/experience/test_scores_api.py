"""Scores from the store through the API: by touchpoint, period, tier and RFM segment, and
whether a change between two periods is more than noise."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from experience_setup import API, ok, tea_chain
from factories import TenantWithKeys
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.experience.models import SurveyResponse
from memberlab.members.models import Member

OCTOBER = datetime.fromisoformat("2026-10-10T12:00:00+08:00")
NOVEMBER = datetime.fromisoformat("2026-11-10T12:00:00+08:00")


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    """M-1 (a store buyer) answered: October 40 answers at NPS 0 (-100), November 40 at 10."""
    tenant = tea_chain(state, client)
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        member = session.scalar(select(Member).where(Member.member_id == "M-1"))
        assert member is not None
        for month, score, touchpoint in ((OCTOBER, 0, "store"), (NOVEMBER, 10, "delivery")):
            for i in range(40):
                session.add(
                    SurveyResponse(
                        response_id=f"{month:%m}-{i}",
                        member_pk=member.id,
                        responded_at=month + timedelta(minutes=i),
                        survey="transactional",
                        touchpoint=touchpoint,
                        nps=score,
                        source="import",
                        created_at=month,
                    )
                )
    return tenant


def test_scores_by_touchpoint_month_tier_and_segment(
    client: TestClient, tea: TenantWithKeys
) -> None:
    headers = tea.headers(Role.ANALYST)

    by_touchpoint = ok(
        client.get(f"{API}/experience/scores", params={"by": "touchpoint"}, headers=headers)
    )
    assert [(r["group"]["touchpoint"], r["n"], r["value"]) for r in by_touchpoint["rows"]] == [
        ("delivery", 40, 100.0),
        ("store", 40, -100.0),
    ]
    monthly = ok(
        client.get(f"{API}/experience/scores", params={"period": "month"}, headers=headers)
    )
    assert [r["group"]["period"] for r in monthly["rows"]] == ["2026-10-01", "2026-11-01"]
    grouped = ok(
        client.get(
            f"{API}/experience/scores",
            params=[("by", "tier"), ("by", "segment"), ("from", "2026-11-01")],
            headers=headers,
        )
    )
    ((row),) = grouped["rows"]
    assert row["group"]["tier"] == "sprout"
    assert row["group"]["segment"]  # M-1's RFM segment today, whatever it is
    assert (row["n"], row["too_small"]) == (40, False)


def test_a_change_between_two_periods_is_tested(client: TestClient, tea: TenantWithKeys) -> None:
    params = {
        "before_from": "2026-10-01",
        "before_to": "2026-10-31",
        "after_from": "2026-11-01",
        "after_to": "2026-11-30",
    }
    change = ok(client.get(f"{API}/experience/scores/change", params=params, headers=tea.headers()))
    assert (change["before"]["value"], change["after"]["value"]) == (-100.0, 100.0)
    # the difference of the adjusted estimates (3/4 added to promoters and detractors, 3 to
    # n): 2 x (40.75 - 0.75) / 43 = 186.05 points, less extreme than the raw 200
    assert change["difference"] == pytest.approx(186.05, abs=0.01)
    assert change["significant"] is True
    assert change["p_value"] < 0.001

    backwards = client.get(
        f"{API}/experience/scores/change",
        params={**params, "after_to": "2026-10-15"},
        headers=tea.headers(),
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "after_to"
    empty = client.get(
        f"{API}/experience/scores/change",
        params={**params, "touchpoint": "app"},
        headers=tea.headers(),
    )
    assert empty.status_code == 422
    assert "at least 2 are needed" in empty.json()["errors"][0]["message"]


def test_comments_by_aspect_with_quotes(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    comments = [
        "外卖送得太慢了，等了一个多小时",
        "配送太慢，咖啡都凉了",
        "店员态度很好，很热情",
        "The delivery was very late and the coffee was cold.",
    ]
    with state.database.session(tenant_id=tea.tenant.id) as session:
        for i, text in enumerate(comments):
            session.add(
                SurveyResponse(
                    response_id=f"C-{i}",
                    responded_at=NOVEMBER,
                    survey="transactional",
                    nps=2 if i != 2 else 10,
                    comment=text,
                    source="import",
                    created_at=NOVEMBER,
                )
            )

    aspects = ok(client.get(f"{API}/experience/comments", headers=tea.headers(Role.ANALYST)))

    by_code = {a["aspect"]: a for a in aspects}
    delivery = by_code["delivery_speed"]
    assert delivery["mentions"] == 3  # two in Chinese, one in English
    assert delivery["share_negative"] == 1.0
    assert delivery["quotes"][0] in comments
    assert by_code["staff_attitude"]["share_negative"] == 0.0
