"""Follow-up cases: an unhappy answer opens one with a deadline; staff assign, note and close
it with a gesture through the engine; the member is asked again; the measures add up."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from experience_setup import (
    API,
    GOOD_ANSWER,
    active_survey,
    buy,
    invite,
    ok,
    path_of,
    tea_chain,
)
from factories import TenantWithKeys
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.experience.models import SurveyInvitation, SurveyResponse


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = tea_chain(state, client)
    active_survey(client, tenant, "after_purchase")
    active_survey(client, tenant, "after_case")
    return tenant


def unhappy(client: TestClient, tenant: TenantWithKeys, member: str = "M-1", **answer) -> None:
    link = invite(client, tenant, "after_purchase", member_id=member, key=f"inv-{member}")
    body = {**GOOD_ANSWER, "nps": "3", "comment": "排队太久，店员态度差", **answer}
    assert client.post(path_of(link["url"]), data=body).status_code == 200


def cases(client: TestClient, tenant: TenantWithKeys, **params) -> list[dict]:
    page = ok(
        client.get(f"{API}/experience/cases", params=params, headers=tenant.headers(Role.OPERATOR))
    )
    return page["items"]


def test_a_detractor_opens_a_case_due_in_48_hours(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    unhappy(client, tea)

    (case,) = cases(client, tea)
    assert (case["member_id"], case["reason"], case["status"]) == ("M-1", "detractor", "open")
    assert (case["nps"], case["comment"]) == (3, "排队太久，店员态度差")
    opened = state.clock()
    assert case["due_at"] == (opened + timedelta(hours=48)).isoformat().replace("+00:00", "Z")
    assert cases(client, tea, overdue="true") == []
    state.clock.now += timedelta(hours=49)  # type: ignore[attr-defined]
    (late,) = cases(client, tea, overdue="true")
    assert late["overdue"] is True


def test_a_low_csat_opens_a_case_and_a_happy_answer_none(
    client: TestClient, tea: TenantWithKeys
) -> None:
    unhappy(client, tea, nps="8", csat="2")
    assert [c["reason"] for c in cases(client, tea)] == ["low_csat"]


def test_working_and_closing_a_case_with_points_asks_again(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    unhappy(client, tea)
    (case,) = cases(client, tea)
    operator = tea.headers(Role.OPERATOR)
    before = ok(client.get(f"{API}/members/M-1/points", headers=operator))["balances"]["available"]

    ok(client.post(f"{API}/experience/cases/{case['id']}/assign", json={"assignee": "王店长"},
                   headers=operator))  # fmt: skip
    noted = ok(
        client.post(
            f"{API}/experience/cases/{case['id']}/notes",
            json={"text": "已致电会员致歉"},
            headers=operator,
        )
    )
    assert (noted["status"], noted["assignee"]) == ("in_progress", "王店长")
    closed = ok(
        client.post(
            f"{API}/experience/cases/{case['id']}/close",
            json={"resolution": "致歉并补偿 200 积分", "gesture_points": 200},
            headers=operator,
        )
    )

    assert closed["status"] == "closed"
    assert closed["gesture"]["points"] == 200
    assert [n["kind"] for n in closed["notes"]] == ["assign", "note", "gesture", "close"]
    after = ok(client.get(f"{API}/members/M-1/points", headers=operator))["balances"]["available"]
    assert after == before + 200
    # the after_case survey asks again a day later (its delay), exempt from the contact cap
    with state.database.session(tenant_id=tea.tenant.id) as session:
        resurvey = session.scalar(
            select(SurveyInvitation).where(SurveyInvitation.trigger == "case_closed")
        )
        assert resurvey is not None
        assert resurvey.case_pk == case["id"]
        assert resurvey.created_at == state.clock() + timedelta(hours=24)
    refused = client.post(
        f"{API}/experience/cases/{case['id']}/notes", json={"text": "again"}, headers=operator
    )
    assert refused.status_code == 409  # closed is closed


def test_a_coupon_gesture_and_a_refused_gesture_change_nothing(
    client: TestClient, tea: TenantWithKeys
) -> None:
    unhappy(client, tea)
    (case,) = cases(client, tea)
    operator = tea.headers(Role.OPERATOR)

    both = client.post(
        f"{API}/experience/cases/{case['id']}/close",
        json={"resolution": "x", "gesture_points": 10, "gesture_coupon": "coupon_5"},
        headers=operator,
    )
    assert both.status_code == 422
    unknown = client.post(
        f"{API}/experience/cases/{case['id']}/close",
        json={"resolution": "x", "gesture_coupon": "no_such_reward"},
        headers=operator,
    )
    assert unknown.status_code == 404
    assert cases(client, tea)[0]["status"] == "open"  # nothing half-done

    closed = ok(
        client.post(
            f"{API}/experience/cases/{case['id']}/close",
            json={"resolution": "送一张 5 元券", "gesture_coupon": "coupon_5"},
            headers=operator,
        )
    )
    coupons = ok(client.get(f"{API}/members/M-1/coupons", headers=operator))
    assert [c["code"] for c in coupons] == [closed["gesture"]["coupon"]]


def test_measures_deadline_met_and_recovery(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    unhappy(client, tea, member="M-1")
    buy(client, tea, "M-2", "O-2", "2026-11-21T10:00:00+08:00")
    unhappy(client, tea, member="M-2")
    first, second = sorted(cases(client, tea), key=lambda c: c["member_id"])
    operator = tea.headers(Role.OPERATOR)
    close = {"resolution": "已回访"}
    ok(client.post(f"{API}/experience/cases/{first['id']}/close", json=close, headers=operator))
    state.clock.now += timedelta(hours=60)  # type: ignore[attr-defined]
    ok(client.post(f"{API}/experience/cases/{second['id']}/close", json=close, headers=operator))
    # M-1 comes back after the case; M-2 does not
    buy(client, tea, "M-1", "O-9", state.clock().isoformat())

    measures = ok(client.get(f"{API}/experience/cases/measures", headers=tea.headers()))

    assert (measures["opened"], measures["closed"], measures["open"]) == (2, 2, 0)
    assert measures["deadline_met_rate"] == 0.5  # the second took 60 hours of 48
    assert (measures["recovered"], measures["followed_detractors"]) == (1, 2)
    assert measures["recovery_rate"] == 0.5
    assert measures["median_hours_to_close"] == pytest.approx(30.0)


def test_imported_answers_open_cases_only_when_recent(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    with state.database.session(tenant_id=tea.tenant.id) as session:
        now = state.clock()
        for number, days_ago in (("R-old", 30), ("R-new", 3)):
            session.add(
                SurveyResponse(
                    response_id=number,
                    responded_at=now - timedelta(days=days_ago),
                    survey="transactional",
                    nps=1,
                    source="import",
                    created_at=now,
                )
            )

    report = ok(client.post(f"{API}/experience/jobs", json={}, headers=tea.headers()))

    assert report["cases_opened"] == 1  # R-new; R-old is older than case_window_days (7)
    assert (
        ok(client.post(f"{API}/experience/jobs", json={}, headers=tea.headers()))["cases_opened"]
        == 0
    )
    (case,) = cases(client, tea)
    # due 48 hours after the answer, not after the job noticed it: already overdue
    answered = state.clock() - timedelta(days=3)
    assert datetime.fromisoformat(case["due_at"]) == answered + timedelta(hours=48)
    assert case["overdue"] is True
