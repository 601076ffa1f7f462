"""Single-use survey links: the public page in the member's language, one answer per link,
every bad answer named and nothing stored, scripts shown as text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from experience_setup import (
    API,
    GOOD_ANSWER,
    active_survey,
    invite,
    ok,
    path_of,
    sample_survey,
    tea_chain,
)
from factories import TenantWithKeys
from memberlab.core.app_state import AppState
from memberlab.experience.models import FollowUpCase, SurveyInvitation, SurveyResponse


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    return tea_chain(state, client)


def counts(state: AppState, tenant: TenantWithKeys) -> dict[str, int]:
    with state.database.session(tenant_id=tenant.tenant.id) as session:
        answered = select(func.count()).where(SurveyInvitation.answered_at.is_not(None))
        return {
            "responses": session.scalar(select(func.count()).select_from(SurveyResponse)) or 0,
            "answered": session.scalar(answered.select_from(SurveyInvitation)) or 0,
            "cases": session.scalar(select(func.count()).select_from(FollowUpCase)) or 0,
        }


def test_a_member_answers_once_through_the_link(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    survey = active_survey(client, tea, "after_purchase")
    link = invite(client, tea, survey, order_id="O-1", touchpoint="store")
    assert link["url"].startswith("http://127.0.0.1:8000/s/")
    assert link["language"] == "zh-CN"  # no preference on file: the tenant's first language

    page = client.get(path_of(link["url"]))
    assert page.status_code == 200
    assert "消费体验调查" in page.text
    assert "您有多大可能向朋友或同事推荐我们" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the link is the credential
    english = client.get(path_of(link["url"]) + "?lang=en")
    assert "How likely are you to recommend us" in english.text

    thanks = client.post(path_of(link["url"]), data=GOOD_ANSWER)
    assert thanks.status_code == 200, thanks.text
    assert "感谢您的反馈" in thanks.text

    with state.database.session(tenant_id=tea.tenant.id) as session:
        response = session.scalar(select(SurveyResponse))
        assert response is not None
        assert (response.nps, response.csat, response.ces) == (9, 5, 6)
        assert (response.rating_speed, response.rating_product_quality) == (4, 5)
        assert response.rating_staff is None  # optional, not answered
        assert (response.touchpoint, response.order_id, response.source) == ("store", "O-1", "link")
        assert response.answers["improve"] == ["app", "price"]
        assert response.answers["visit_reason"] == "taste"
        assert response.comment == "拿铁很好喝"
    assert counts(state, tea) == {"responses": 1, "answered": 1, "cases": 0}  # a promoter

    again = client.post(path_of(link["url"]), data={**GOOD_ANSWER, "nps": "0"})
    assert again.status_code == 410
    assert "已作答" in again.text
    assert client.get(path_of(link["url"])).status_code == 410
    assert counts(state, tea)["responses"] == 1


@pytest.mark.parametrize(
    ("change", "question", "message"),
    [
        ({"nps": "11"}, "nps", "11 is not a whole number from 0 to 10"),
        ({"nps": "seven"}, "nps", "seven is not a whole number from 0 to 10"),
        ({"csat": ""}, "csat", "Please answer this question"),
        ({"visit_reason": "free_cake"}, "visit_reason", "free_cake is not one of the choices"),
        ({"comment": "好" * 2001}, "comment", "The text is 2001 characters long; at most 2000"),
    ],
)
def test_a_bad_answer_is_named_and_nothing_is_stored(
    client: TestClient, state: AppState, tea: TenantWithKeys, change, question, message
) -> None:
    survey = active_survey(client, tea, "after_purchase")
    link = invite(client, tea, survey)

    page = client.post(path_of(link["url"]) + "?lang=en", data={**GOOD_ANSWER, **change})

    assert page.status_code == 422
    assert f'id="e-{question}"' in page.text
    assert message in page.text
    assert counts(state, tea) == {"responses": 0, "answered": 0, "cases": 0}
    # the link still works: the member corrects the answer
    assert client.post(path_of(link["url"]), data=GOOD_ANSWER).status_code == 200
    assert counts(state, tea)["responses"] == 1


def test_a_script_in_a_comment_is_shown_as_text(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    survey = active_survey(client, tea, "after_purchase")
    link = invite(client, tea, survey)
    script = '<script>alert("x")</script>'

    page = client.post(path_of(link["url"]), data={**GOOD_ANSWER, "nps": "12", "comment": script})

    assert page.status_code == 422
    assert script not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "script-src" not in page.headers["Content-Security-Policy"]  # no script may run


def test_unknown_and_expired_links(
    client: TestClient, state: AppState, tea: TenantWithKeys
) -> None:
    assert client.get("/s/not-a-real-token").status_code == 404
    assert client.post("/s/not-a-real-token", data=GOOD_ANSWER).status_code == 404

    survey = active_survey(client, tea, "after_purchase")
    link = invite(client, tea, survey)
    state.clock.now += timedelta(days=8)  # link_valid_days: 7  # type: ignore[attr-defined]

    page = client.post(path_of(link["url"]) + "?lang=en", data=GOOD_ANSWER)
    assert page.status_code == 410
    assert "expired" in page.text
    assert counts(state, tea)["responses"] == 0


def test_an_invitation_replays_with_its_key_and_respects_the_contact_cap(
    client: TestClient, tea: TenantWithKeys
) -> None:
    survey = active_survey(client, tea, "after_purchase")
    first = invite(client, tea, survey, key="k-1")
    assert invite(client, tea, survey, key="k-1") == first  # a retry gets the same link

    refused = client.post(
        f"{API}/experience/surveys/{survey}/invitations",
        json={"member_id": "M-1"},
        headers={**tea.headers(), "Idempotency-Key": "k-2"},
    )
    assert refused.status_code == 409
    assert "nobody is asked more than once in 30 days" in refused.json()["detail"]
    forced = invite(client, tea, survey, key="k-3", respect_contact_cap=False)
    assert forced["url"] != first["url"]


def test_survey_definitions_are_checked_and_only_drafts_change(
    client: TestClient, tea: TenantWithKeys
) -> None:
    empty = client.post(
        f"{API}/experience/surveys",
        json=sample_survey("after_purchase", questions=[]),
        headers=tea.headers(),
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "questions"

    survey = active_survey(client, tea, "after_purchase")
    changed = client.post(
        f"{API}/experience/surveys",
        json=sample_survey("after_purchase", link_valid_days=3),
        headers=tea.headers(),
    )
    assert changed.status_code == 409
    assert "only a draft can be changed" in changed.json()["detail"]
    closed = ok(
        client.post(
            f"{API}/experience/surveys/{survey}/status",
            json={"status": "closed"},
            headers=tea.headers(),
        )
    )
    assert closed["status"] == "closed"
    reopened = client.post(
        f"{API}/experience/surveys/{survey}/status",
        json={"status": "active"},
        headers=tea.headers(),
    )
    assert reopened.status_code == 409
