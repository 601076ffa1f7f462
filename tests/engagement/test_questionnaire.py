"""The needs questionnaire (需求调查表): the client answers once through a public link (no
login, in zh-CN or en), or the consultant imports the answers; every bad answer is named and
nothing is stored; the answers become the engagement's questionnaire event (the deliverable
handed in), an evidence item in the hash chain, and what the consultant reads."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import TenantWithKeys, make_tenant
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.errors import InvalidInput
from memberlab.engagement.models import EngagementEvent, EvidenceItem, QuestionnaireLink
from memberlab.engagement.questionnaire import (
    InvalidQuestionnaire,
    QuestionType,
    check_answers,
    default_questionnaire,
    validate_questionnaire,
)

API = "/api/v1/engagements"
SAMPLE = Path(__file__).parents[2] / "src/memberlab/engagement/samples/membership_consulting.yaml"
TERMS: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")), default=str)
)
NUMBER = TERMS["contract_number"]

# what the client's project contact types on the phone: every required question answered
GOOD = {
    "company_name": "茶语咖啡（上海）有限公司",
    "brands": "茶语、茶语 Express",
    "industry": "food_beverage",
    "channels": ["own_stores", "mini_program", "delivery"],
    "store_count": "128",
    "member_count": "35万",
    "active_share": "42.5",
    "current_program": "points",
    "goals": ["repeat", "retention"],
    "pain_points": "积分没人用，会员不知道自己有什么权益。",
    "budget": "100k_500k",
    "data_available": ["members", "transactions"],
    "contact_name": "李娜",
    "contact_phone": "021-6888 0000",
    "contact_email": "li.na@chayu.example",
}


def form(**changes: Any) -> dict[str, list[str]]:
    """GOOD as the page posts it (one value per ticked box), with ``changes``."""
    answers = {**GOOD, **changes}
    return {k: v if isinstance(v, list) else [v] for k, v in answers.items() if v is not None}


@pytest.fixture
def firm(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="firm")
    created = client.post(API, json=TERMS, headers=tenant.headers())
    assert created.status_code == 201, created.text
    return tenant


def link(client: TestClient, firm: TenantWithKeys, **body: Any) -> dict[str, Any]:
    made = client.post(f"{API}/{NUMBER}/questionnaire/link", json=body, headers=firm.headers())
    assert made.status_code == 201, made.text
    return made.json()


def path_of(url: str) -> str:
    return url[url.index("/q/") :]


def counts(state: AppState, firm: TenantWithKeys) -> dict[str, int]:
    with state.database.session(tenant_id=firm.tenant.id) as session:
        answered = select(func.count()).where(QuestionnaireLink.answered_at.is_not(None))
        return {
            "events": session.scalar(select(func.count()).select_from(EngagementEvent)) or 0,
            "evidence": session.scalar(select(func.count()).select_from(EvidenceItem)) or 0,
            "answered": session.scalar(answered.select_from(QuestionnaireLink)) or 0,
        }


# --- the questionnaire and the checking of answers (pure) ------------------------------------


def test_the_default_questionnaire_asks_what_a_program_design_needs() -> None:
    needs = default_questionnaire()

    assert needs.reference == "needs@1"
    assert needs.title.zh == "会员项目需求调查表"
    assert [s.code for s in needs.sections] == [
        "company", "channels", "members", "goals", "resources", "contacts",
    ]  # fmt: skip
    types = {q.id: q.type for q in needs.questions}
    assert types["member_count"] is QuestionType.NUMBER
    assert types["current_program"] is QuestionType.CHOICE
    assert types["goals"] is QuestionType.MULTI_CHOICE
    assert types["pain_points"] is QuestionType.TEXT
    required = {q.id for q in needs.questions if q.required}
    assert {"company_name", "member_count", "goals", "budget", "contact_phone"} <= required
    assert all(q.text.zh and q.text.en for q in needs.questions)


def test_answers_are_typed_as_people_write_them() -> None:
    answers = check_answers(
        default_questionnaire(),
        form(
            store_count="1,280",  # thousands separators
            member_count="35万",  # 万: ten thousand
            industry="餐饮、茶饮与咖啡",  # a choice by its text
            channels=["Own stores;微信小程序"],  # several choices in one cell
        ),
    )

    assert answers["store_count"] == 1280
    assert answers["member_count"] == 350_000
    assert answers["active_share"] == "42.5"  # a decimal is kept exactly, as text
    assert answers["industry"] == "food_beverage"
    assert answers["channels"] == ["own_stores", "mini_program"]
    assert answers["goals"] == ["repeat", "retention"]
    assert "contact_title" not in answers  # optional, not answered


@pytest.mark.parametrize(
    ("lang", "messages"),
    [
        ("en", {
            "company_name": "Please answer this question.",
            "store_count": "many is not a number.",
            "member_count": "1.5 is not a whole number.",
            "active_share": "120 is above the largest answer allowed, 100.",
            "current_program": "crm is not one of the choices (none, points, tiers, "
                               "points_and_tiers, paid, other).",
            "budget": "Choose one answer only (got under_100k, over_2m).",
            "contact_email": "li.na is not an e-mail address.",
        }),
        ("zh-CN", {
            "company_name": "请回答此题。",
            "store_count": "many 不是数字。",
            "member_count": "1.5 不是整数。",
            "active_share": "120 大于允许的最大值 100。",
            "current_program": "crm 不是可选项（none, points, tiers, points_and_tiers, paid, "
                               "other）。",
            "budget": "此题只能选一项（收到 under_100k, over_2m）。",
            "contact_email": "li.na 不是有效的电子邮箱。",
        }),
    ],
)  # fmt: skip
def test_every_bad_answer_is_named_in_both_languages(lang: str, messages: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_answers(
            default_questionnaire(),
            form(
                company_name=None,
                store_count="many",
                member_count="1.5",
                active_share="120",
                current_program="crm",
                budget=["under_100k", "over_2m"],
                contact_email="li.na",
            ),
        )

    assert {e.loc: e.message(lang) for e in caught.value.errors} == messages  # type: ignore[arg-type]


def test_a_questionnaire_that_does_not_hold_is_refused() -> None:
    data = default_questionnaire().model_dump(mode="json")
    data["questions"][2]["options"] = data["questions"][2]["options"][:1]  # industry: one option
    data["questions"][3]["min"] = 0  # positioning is text: no minimum
    data["questions"].append(data["questions"][0])  # company_name twice

    with pytest.raises(InvalidQuestionnaire) as caught:
        validate_questionnaire(data)

    found = {(e.loc, e.key) for e in caught.value.errors}
    assert ("questions[2].options", "engagement.questionnaire.v.options") in found
    assert ("questions[3].min", "engagement.questionnaire.v.unused") in found
    assert ("questions", "engagement.questionnaire.v.duplicate") in found


# --- the public link -------------------------------------------------------------------------


def test_the_client_answers_once_through_the_link(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    made = link(client, firm)
    assert made["url"].startswith("http://127.0.0.1:8000/q/")
    assert (made["language"], made["questionnaire"]) == ("zh-CN", "needs@1")  # the tenant's
    page = client.get(path_of(made["url"]))
    assert page.status_code == 200
    assert "会员项目需求调查表" in page.text
    assert "现有会员人数" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the link is the credential
    assert "<script" not in page.text  # the public page runs no script
    english = client.get(path_of(made["url"]) + "?lang=en")
    assert "Membership program needs questionnaire" in english.text

    # a missing answer and a bad number: named on the page, nothing stored
    script = "<script>alert(1)</script>"
    refused = client.post(
        path_of(made["url"]), data=form(company_name=None, store_count="很多", pain_points=script)
    )
    assert refused.status_code == 422
    assert "请回答此题。" in refused.text
    assert "很多 不是数字。" in refused.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text  # kept, shown as text
    assert script not in refused.text
    assert counts(state, firm) == {"events": 0, "evidence": 0, "answered": 0}

    thanks = client.post(path_of(made["url"]), data=form())
    assert thanks.status_code == 200, thanks.text
    assert "感谢您的填写" in thanks.text
    assert counts(state, firm) == {"events": 1, "evidence": 1, "answered": 1}

    again = client.post(path_of(made["url"]), data=form(member_count="1"))
    assert again.status_code == 410
    assert "此调查表已提交" in again.text
    assert client.get(path_of(made["url"])).status_code == 410
    assert counts(state, firm)["events"] == 1
    unknown = client.get("/q/not-a-token?lang=en")
    assert unknown.status_code == 404
    assert "This questionnaire link does not exist" in unknown.text

    # the consultant reads the answers, in either language
    shown = client.get(
        f"{API}/{NUMBER}/questionnaire", headers=firm.headers(Role.ANALYST, lang="en")
    ).json()
    latest = shown["latest"]
    assert (latest["source"], latest["answered_by"], latest["evidence_seq"]) == ("link", "李娜", 1)
    answers = {a["id"]: a for a in latest["answers"]}
    assert answers["member_count"]["answer"] == 350_000
    assert answers["member_count"]["text"] == "350000 members"
    assert (
        answers["goals"]["text"] == "Raise the repeat rate, Reduce churn, win back lapsed members"
    )
    assert answers["goals"]["question"].startswith("The engagement's most important goals")
    assert [x["state"] for x in shown["links"]] == ["answered"]
    zh = client.get(f"{API}/{NUMBER}/questionnaire", headers=firm.headers(lang="zh-CN")).json()
    assert {a["id"]: a["text"] for a in zh["latest"]["answers"]}["goals"] == (
        "提升复购率、减少流失、唤醒沉睡会员"
    )


def test_the_answers_hand_in_the_questionnaire_and_join_the_evidence_chain(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    client.post(path_of(link(client, firm)["url"]), data=form()).raise_for_status()

    events = client.get(f"{API}/{NUMBER}/events", headers=firm.headers()).json()
    (answered,) = events
    assert (answered["kind"], answered["on"]) == ("questionnaire", "2026-11-25")  # today
    assert answered["payload"]["deliverable"] == "needs_questionnaire"
    assert answered["payload"]["questionnaire"] == "needs@1"
    # the deliverable of the needs-questionnaire annex is handed in (late: due 20 January)
    found = client.get(f"{API}/{NUMBER}/status", headers=firm.headers()).json()
    needs = next(d for d in found["deliverables"] if d["code"] == "needs_questionnaire")
    assert (needs["state"], needs["submitted_on"]) == ("submitted", "2026-11-25")
    assert needs["late_days"] == 309
    # the answers are an item of the hash chain, and the chain holds
    (item,) = client.get(f"{API}/{NUMBER}/evidence", headers=firm.headers()).json()
    assert (item["seq"], item["kind"]) == (1, "questionnaire")
    assert item["title"] == "会员项目需求调查表 / Membership program needs questionnaire"
    assert client.get(f"{API}/{NUMBER}/evidence/verify", headers=firm.headers()).json()["ok"]
    stored = next((state.settings.data_dir / "evidence").rglob("*.json"))
    document = json.loads(stored.read_text(encoding="utf-8"))
    assert document["format"] == "memberlab-questionnaire/1"
    company = document["answers"][0]
    assert company["question"] == {"zh-CN": "公司全称", "en": "Company's legal name"}
    assert company["answer"] == GOOD["company_name"]


def test_a_new_link_replaces_the_open_one_and_a_link_expires(
    client: TestClient, state: AppState, firm: TenantWithKeys, clock
) -> None:
    first = link(client, firm)
    second = link(client, firm, language="en", valid_days=3)
    assert second["language"] == "en"

    replaced = client.get(path_of(first["url"]))
    assert replaced.status_code == 410
    assert "顾问已发送此调查表的新链接" in replaced.text
    page = client.get(path_of(second["url"]))
    assert "Membership program needs questionnaire" in page.text  # the link's language

    clock.now = clock.now + timedelta(days=3, minutes=1)
    expired = client.post(path_of(second["url"]), data=form())
    assert expired.status_code == 410
    assert "This questionnaire link has expired" in expired.text
    assert counts(state, firm)["events"] == 0
    shown = client.get(f"{API}/{NUMBER}/questionnaire", headers=firm.headers()).json()
    assert [x["state"] for x in shown["links"]] == ["replaced", "expired"]
    assert shown["latest"] is None
    bad = client.post(
        f"{API}/{NUMBER}/questionnaire/link", json={"language": "fr"}, headers=firm.headers()
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "language"


# --- answers imported by the consultant ------------------------------------------------------


def test_answers_are_imported_through_the_api(
    client: TestClient, state: AppState, firm: TenantWithKeys
) -> None:
    body = {"answers": {**GOOD, "store_count": 128}, "on": "2026-01-15", "answered_by": "王明"}

    imported = client.post(f"{API}/{NUMBER}/questionnaire/answers", json=body,
                           headers=firm.headers())  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert imported.json()["answers"]["channels"] == ["own_stores", "mini_program", "delivery"]
    again = client.post(f"{API}/{NUMBER}/questionnaire/answers", json=body,
                        headers=firm.headers())  # fmt: skip
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert counts(state, firm) == {"events": 1, "evidence": 1, "answered": 0}

    # handed in on 15 January, before its due date: on time, then accepted by default
    found = client.get(f"{API}/{NUMBER}/status", params={"as_of": "2026-02-20"},
                       headers=firm.headers()).json()  # fmt: skip
    needs = next(d for d in found["deliverables"] if d["code"] == "needs_questionnaire")
    assert (needs["state"], needs["late_days"]) == ("deemed_accepted", 0)
    assert "needs_questionnaire" not in {b["subject"] for b in found["breaches"]}

    refused = client.post(
        f"{API}/{NUMBER}/questionnaire/answers",
        json={"answers": {**GOOD, "member_count": "lots", "favourite_colour": "green"}},
        headers=firm.headers(lang="en"),
    )
    assert refused.status_code == 422
    errors = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert errors["member_count"] == "lots is not a number."
    assert errors["favourite_colour"].startswith("No question favourite_colour in the questionn")
    assert counts(state, firm)["events"] == 1
