"""Members over HTTP: ``/api/v1/members``.

What each role sees of personal data, PATCH semantics, erasure, and bad input answered as
RFC 9457 problems in the language of ``Accept-Language`` with nothing written.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import FixedClock
from factories import TenantWithKeys, make_tenant
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.members.models import Member
from problems import assert_problem

URL = "/api/v1/members"
ZHANG = {
    "member_id": "M-001",
    "mobile": "138 1234 5678",
    "name": "张小明",
    "birthday": "1990-05-17",
    "city": "上海",
    "external_id": "wx-openid-1",
    "tags": ["vip"],
}
MOBILE_MESSAGE = {
    "en": "is not a valid mobile number (mainland China, or international with +country code)",
    "zh-CN": "不是有效的手机号（中国大陆号码，或带 +国家代码的国际号码）",
}


@pytest.fixture
def acme(state: AppState) -> TenantWithKeys:
    return make_tenant(state)


@pytest.fixture
def zhang(client: TestClient, acme: TenantWithKeys) -> dict[str, Any]:
    response = client.post(URL, json=ZHANG, headers=acme.headers())
    assert response.status_code == 201, response.text
    return response.json()


def stored_members(state: AppState, acme: TenantWithKeys) -> int:
    with state.database.session(tenant_id=acme.tenant.id) as session:
        return session.scalar(select(func.count()).select_from(Member)) or 0


# --- enrol and read -------------------------------------------------------------------------------


def test_enrol_answers_with_the_member(zhang: dict[str, Any], clock: FixedClock) -> None:
    assert zhang["member_id"] == "M-001"
    assert zhang["mobile"] == "+8613812345678"
    assert zhang["name"] == "张小明"
    assert zhang["birthday"] == "1990-05-17"
    assert zhang["tags"] == ["vip"]
    assert zhang["status"] == "active"
    assert zhang["erased"] is False
    assert zhang["enrolled_at"] == "2026-11-25T08:00:00Z"


@pytest.mark.parametrize(
    ("role", "mobile", "name", "birthday"),
    [
        (Role.ADMIN, "+8613812345678", "张小明", "1990-05-17"),
        (Role.OPERATOR, "+8613812345678", "张小明", "1990-05-17"),
        (Role.ANALYST, "138****5678", "张**", None),
        (Role.APP, "138****5678", "张**", None),
    ],
)
def test_the_detail_shows_personal_data_only_to_roles_that_may_see_it(
    client: TestClient,
    acme: TenantWithKeys,
    zhang: dict[str, Any],
    role: Role,
    mobile: str,
    name: str,
    birthday: str | None,
) -> None:
    response = client.get(f"{URL}/M-001", headers=acme.headers(role))

    assert response.status_code == 200
    body = response.json()
    assert (body["mobile"], body["name"], body["birthday"]) == (mobile, name, birthday)
    assert body["city"] == "上海"


def test_an_app_enrolling_a_member_gets_it_back_masked(
    client: TestClient, acme: TenantWithKeys
) -> None:
    response = client.post(URL, json=ZHANG, headers=acme.headers(Role.APP))

    assert response.status_code == 201
    assert (response.json()["mobile"], response.json()["name"]) == ("138****5678", "张**")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.APP])
def test_lists_are_masked_for_every_role(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any], role: Role
) -> None:
    response = client.get(URL, headers=acme.headers(role))

    assert response.status_code == 200
    [item] = response.json()["items"]
    assert (item["mobile"], item["name"], item["birthday"]) == ("138****5678", "张**", None)
    assert "13812345678" not in response.text
    assert "张小明" not in response.text


def test_an_unknown_member_is_a_problem_in_both_languages(
    client: TestClient, acme: TenantWithKeys
) -> None:
    en = assert_problem(client.get(f"{URL}/NOPE", headers=acme.headers()), 404, "members.not_found")
    zh = assert_problem(
        client.get(f"{URL}/NOPE", headers=acme.headers(lang="zh-CN")), 404, "members.not_found"
    )

    assert (en["title"], en["detail"]) == ("Not found", "No member NOPE.")
    assert (zh["title"], zh["detail"]) == ("未找到", "会员 NOPE 不存在。")
    assert "errors" not in en


# --- search and paging ----------------------------------------------------------------------------


@pytest.fixture
def crowd(client: TestClient, acme: TenantWithKeys) -> list[str]:
    ids = []
    for n in range(1, 6):
        body = {
            "member_id": f"P{n}",
            "mobile": f"1390000000{n}",
            "tags": ["even"] if n % 2 == 0 else ["odd"],
        }
        response = client.post(URL, json=body, headers=acme.headers())
        assert response.status_code == 201, response.text
        ids.append(body["member_id"])
    assert client.patch(f"{URL}/P5", json={"status": "frozen"}, headers=acme.headers()).is_success
    return ids


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"member_id": "P2"}, ["P2"]),
        ({"mobile": "139 0000 0003"}, ["P3"]),
        ({"mobile": "+86-139-0000-0003"}, ["P3"]),
        ({"mobile": "１３９０００００００３"}, ["P3"]),
        ({"tag": "even"}, ["P2", "P4"]),
        ({"status": "frozen"}, ["P5"]),
        ({"tag": "odd", "status": "active"}, ["P1", "P3"]),
    ],
)
def test_search(
    client: TestClient,
    acme: TenantWithKeys,
    crowd: list[str],
    params: dict[str, str],
    expected: list[str],
) -> None:
    response = client.get(URL, params=params, headers=acme.headers(Role.ANALYST))

    assert response.status_code == 200
    assert [m["member_id"] for m in response.json()["items"]] == expected


def test_search_by_external_id(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any]
) -> None:
    response = client.get(URL, params={"external_id": "wx-openid-1"}, headers=acme.headers())

    assert [m["member_id"] for m in response.json()["items"]] == ["M-001"]


def test_paging_follows_the_cursor_to_the_end(
    client: TestClient, acme: TenantWithKeys, crowd: list[str]
) -> None:
    pages = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = client.get(URL, params=params, headers=acme.headers()).json()
        pages.append([m["member_id"] for m in body["items"]])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]

    assert pages == [["P1", "P2"], ["P3", "P4"], ["P5"]]


@pytest.mark.parametrize(
    ("params", "field", "en", "zh"),
    [
        ({"mobile": "12345"}, "mobile", MOBILE_MESSAGE["en"], MOBILE_MESSAGE["zh-CN"]),
        ({"limit": "0"}, "limit", "must be at least 1", "必须不小于 1"),
        ({"limit": "501"}, "limit", "must be at most 500", "必须不大于 500"),
        ({"cursor": "-1"}, "cursor", "must be at least 0", "必须不小于 0"),
        (
            {"status": "gone"},
            "status",
            "must be one of: active, frozen, closed (got gone)",
            "必须是以下之一：active, frozen, closed（实际为 gone）",
        ),
    ],
)
def test_a_bad_search_is_a_problem_naming_the_parameter(
    client: TestClient,
    acme: TenantWithKeys,
    params: dict[str, str],
    field: str,
    en: str,
    zh: str,
) -> None:
    for lang, message in (("en", en), ("zh-CN", zh)):
        response = client.get(URL, params=params, headers=acme.headers(lang=lang))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [(field, message)]


# --- update and erase -----------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent_and_null_clears(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any], clock: FixedClock
) -> None:
    response = client.patch(
        f"{URL}/M-001", json={"city": None, "tags": ["tea"]}, headers=acme.headers()
    )

    assert response.status_code == 200
    body = response.json()
    assert body["city"] is None
    assert body["tags"] == ["tea"]
    assert {k: v for k, v in body.items() if k not in ("city", "tags")} == {
        k: v for k, v in zhang.items() if k not in ("city", "tags")
    }


def test_patch_with_an_empty_body_changes_nothing(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any]
) -> None:
    response = client.patch(f"{URL}/M-001", json={}, headers=acme.headers())

    assert response.json() == zhang


def test_erase_closes_the_member_and_removes_personal_data(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any]
) -> None:
    erased = client.post(f"{URL}/M-001/erase", headers=acme.headers())
    again = client.post(f"{URL}/M-001/erase", headers=acme.headers())
    shown = client.get(f"{URL}/M-001", headers=acme.headers())

    assert erased.status_code == again.status_code == 200
    assert erased.json() == again.json() == shown.json()
    body = shown.json()
    assert body["erased"] is True
    assert body["status"] == "closed"
    assert [body[k] for k in ("mobile", "name", "birthday", "city", "external_id")] == [None] * 5
    assert body["tags"] == []


def test_an_erased_member_cannot_be_changed(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any]
) -> None:
    client.post(f"{URL}/M-001/erase", headers=acme.headers())

    response = client.patch(f"{URL}/M-001", json={"city": "北京"}, headers=acme.headers())

    body = assert_problem(response, 409, "members.erased")
    assert body["detail"] == "Member M-001 has been erased and cannot be changed."
    assert client.get(f"{URL}/M-001", headers=acme.headers()).json()["city"] is None


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.APP])
def test_only_an_admin_may_erase(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any], role: Role
) -> None:
    response = client.post(f"{URL}/M-001/erase", headers=acme.headers(role))

    assert_problem(response, 403, "core.auth.role_refused")
    assert client.get(f"{URL}/M-001", headers=acme.headers()).json() == zhang


# --- bad input ------------------------------------------------------------------------------------

# (body, status, code, field, en, zh-CN). The body is sent after Zhang (M-001) is enrolled.
BAD_INPUT = {
    "bad mobile": (
        {"mobile": "1381234567"},
        422,
        "core.error.invalid_input",
        "mobile",
        MOBILE_MESSAGE["en"],
        MOBILE_MESSAGE["zh-CN"],
    ),
    "duplicate member_id": (
        {"member_id": "M-001"},
        409,
        "members.conflict",
        "member_id",
        "is already used by member M-001",
        "已被会员 M-001 使用",
    ),
    "duplicate external_id": (
        {"external_id": "wx-openid-1"},
        409,
        "members.conflict",
        "external_id",
        "is already used by member M-001",
        "已被会员 M-001 使用",
    ),
    "duplicate mobile": (
        {"mobile": "+86-138-1234-5678"},
        409,
        "members.conflict",
        "mobile",
        "is already used by member M-001",
        "已被会员 M-001 使用",
    ),
    "birthday in the future": (
        {"birthday": "2027-01-01"},
        422,
        "core.error.invalid_input",
        "birthday",
        "is not a possible birthday (got 2027-01-01)",
        "不是可能的生日（实际为 2027-01-01）",
    ),
    "enrolled in the future": (
        {"enrolled_at": "2026-12-01T09:00:00+08:00"},
        422,
        "core.error.invalid_input",
        "enrolled_at",
        "is in the future (got 2026-12-01T09:00:00+08:00)",
        "不能是将来的时间（实际为 2026-12-01T09:00:00+08:00）",
    ),
    "unknown field": (
        {"nickname": "小明"},
        422,
        "core.error.request_invalid",
        "nickname",
        "unknown field (did you mean name?)",
        "未知字段（是否应为 name？）",
    ),
    "tags not a list": (
        {"tags": "vip"},
        422,
        "core.error.request_invalid",
        "tags",
        "must be a list",
        "必须是列表",
    ),
    "birthday not a date": (
        {"birthday": "soon"},
        422,
        "core.error.request_invalid",
        "birthday",
        "must be a date such as 2026-11-25 (got soon)",
        "必须是日期，如 2026-11-25（实际为 soon）",
    ),
    "gender not a choice": (
        {"gender": "f"},
        422,
        "core.error.request_invalid",
        "gender",
        "must be one of: female, male, other, unknown (got f)",
        "必须是以下之一：female, male, other, unknown（实际为 f）",
    ),
    "consent not a boolean": (
        {"consents": {"sms": "maybe"}},
        422,
        "core.error.request_invalid",
        "consents.sms",
        "must be true or false (got maybe)",
        "必须是 true 或 false（实际为 maybe）",
    ),
    "member_id not text": (
        {"member_id": 42},
        422,
        "core.error.request_invalid",
        "member_id",
        "must be text",
        "必须是文本",
    ),
}
# the detail reads on its own: the summary, then the field it introduces
DETAILS = {
    "core.error.invalid_input": ("The input is not valid: {}", "输入无效：{}"),
    "core.error.request_invalid": ("The request is not valid: {}", "请求无效：{}"),
    "members.conflict": ("Another member already has this: {}", "已有其他会员使用了以下信息：{}"),
}
TITLES = {422: ("Invalid input", "输入无效"), 409: ("Conflict", "冲突")}


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "en", "zh"),
    list(BAD_INPUT.values()),
    ids=list(BAD_INPUT),
)
def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_written(
    state: AppState,
    client: TestClient,
    acme: TenantWithKeys,
    zhang: dict[str, Any],
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
    en: str,
    zh: str,
) -> None:
    sent = {"member_id": "M-002", **body}
    for lang, message, detail, title in (
        ("en", en, DETAILS[code][0], TITLES[status][0]),
        ("zh-CN", zh, DETAILS[code][1], TITLES[status][1]),
    ):
        response = client.post(URL, json=sent, headers=acme.headers(lang=lang))

        problem = assert_problem(response, status, code)
        assert response.headers["content-language"] == lang
        assert problem["title"] == title
        assert problem["detail"] == detail.format(f"{field}: {message}")
        assert [(e["field"], e["message"]) for e in problem["errors"]] == [(field, message)]

    assert stored_members(state, acme) == 1
    assert client.get(f"{URL}/M-001", headers=acme.headers()).json() == zhang


def test_a_misspelt_field_suggests_the_field_meant(
    client: TestClient, acme: TenantWithKeys
) -> None:
    en = client.post(URL, json={"nmae": "张小明"}, headers=acme.headers())
    zh = client.post(URL, json={"nmae": "张小明"}, headers=acme.headers(lang="zh-CN"))

    assert en.json()["errors"][0]["message"] == "unknown field (did you mean name?)"
    assert zh.json()["errors"][0]["message"] == "未知字段（是否应为 name？）"


def test_a_patch_with_bad_input_changes_nothing(
    client: TestClient, acme: TenantWithKeys, zhang: dict[str, Any]
) -> None:
    response = client.patch(
        f"{URL}/M-001", json={"city": "北京", "mobile": "12345"}, headers=acme.headers()
    )

    problem = assert_problem(response, 422, "core.error.invalid_input")
    assert [e["field"] for e in problem["errors"]] == ["mobile"]
    assert client.get(f"{URL}/M-001", headers=acme.headers()).json() == zhang


def test_a_body_that_is_not_json_is_a_problem(client: TestClient, acme: TenantWithKeys) -> None:
    response = client.post(
        URL,
        content=b"{not json",
        headers={**acme.headers(), "Content-Type": "application/json"},
    )

    problem = assert_problem(response, 422, "core.error.request_invalid")
    assert problem["errors"][0]["message"].startswith("is not valid JSON")
