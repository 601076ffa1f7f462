"""Programs over HTTP: ``/api/v1/programs``.

The body of ``POST /programs`` and ``POST /programs/validate`` is the program file itself
(YAML or JSON, UTF-8).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import TenantWithKeys, make_tenant
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text
from problems import assert_problem

URL = "/api/v1/programs"
TEAHOUSE = sample_program_text("teahouse")
TEAHOUSE_V2 = TEAHOUSE.replace("per_day: 2000", "per_day: 3000")
SEVERAL_MISTAKES = (Path(__file__).parent / "broken" / "several_mistakes.yaml").read_text(
    encoding="utf-8"
)
SEVERAL_MISTAKES_ERRORS = {
    "en": [
        ("points.value_per_point", "must be a number (got free)", 6),
        ("tiers[1].threshold", "is required", 14),
        ("tiers[1].treshold", "unknown field (did you mean threshold?)", 16),
        (
            "tiers[2].code",
            "must be a code of lower-case letters, digits and _ starting with a letter (got Gold)",
            17,
        ),
    ],
    "zh-CN": [
        ("points.value_per_point", "必须是数字（实际为 free）", 6),
        ("tiers[1].threshold", "为必填项", 14),
        ("tiers[1].treshold", "未知字段（是否应为 threshold？）", 16),
        ("tiers[2].code", "必须是以字母开头、由小写字母、数字和 _ 组成的代码（实际为 Gold）", 17),
    ],
}


@pytest.fixture
def acme(state: AppState) -> TenantWithKeys:
    return make_tenant(state)


def load(client: TestClient, acme: TenantWithKeys, source: str | bytes) -> Any:
    return client.post(URL, content=source, headers=acme.headers())


def stored(client: TestClient, acme: TenantWithKeys) -> list[tuple[str, int]]:
    response = client.get(URL, headers=acme.headers(Role.ANALYST))
    assert response.status_code == 200
    return [(v["code"], v["version"]) for v in response.json()]


# --- validate -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["teahouse", "department_store"])
def test_validate_accepts_the_samples(client: TestClient, acme: TenantWithKeys, name: str) -> None:
    response = client.post(
        f"{URL}/validate", content=sample_program_text(name), headers=acme.headers(Role.ANALYST)
    )

    assert response.status_code == 200
    assert response.json() == {"valid": True, "code": name, "errors": []}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_validate_lists_every_problem_with_its_path_and_line(
    client: TestClient, acme: TenantWithKeys, lang: str
) -> None:
    response = client.post(
        f"{URL}/validate", content=SEVERAL_MISTAKES, headers=acme.headers(lang=lang)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert body["code"] is None
    assert [(e["field"], e["message"], e["line"]) for e in body["errors"]] == (
        SEVERAL_MISTAKES_ERRORS[lang]
    )
    assert stored(client, acme) == []


def test_validate_never_stores(client: TestClient, acme: TenantWithKeys) -> None:
    client.post(f"{URL}/validate", content=TEAHOUSE, headers=acme.headers())

    assert stored(client, acme) == []


# --- load -----------------------------------------------------------------------------------------


def test_load_stores_version_1_then_answers_200_for_the_same_content(
    client: TestClient, acme: TenantWithKeys
) -> None:
    first = load(client, acme, TEAHOUSE)
    again = load(client, acme, TEAHOUSE)

    assert first.status_code == 201
    assert first.json()["created"] is True
    assert (first.json()["version"]["code"], first.json()["version"]["version"]) == (
        "teahouse",
        1,
    )
    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}
    assert stored(client, acme) == [("teahouse", 1)]


def test_a_changed_file_is_version_2(client: TestClient, acme: TenantWithKeys) -> None:
    first = load(client, acme, TEAHOUSE).json()["version"]

    second = load(client, acme, TEAHOUSE_V2)

    assert second.status_code == 201
    assert second.json()["version"]["version"] == 2
    assert stored(client, acme) == [("teahouse", 1), ("teahouse", 2)]
    shown = client.get(f"{URL}/{first['id']}", headers=acme.headers()).json()
    assert shown["definition"]["earning"]["caps"]["per_day"] == 2000
    assert shown["sha256"] == first["sha256"]


def test_a_json_file_loads_too(client: TestClient, acme: TenantWithKeys) -> None:
    yaml_version = load(client, acme, TEAHOUSE).json()["version"]
    definition = client.get(f"{URL}/{yaml_version['id']}", headers=acme.headers()).json()[
        "definition"
    ]

    response = client.post(URL, json=definition, headers=acme.headers())

    assert response.status_code == 200  # the same program, already stored
    assert response.json()["version"]["id"] == yaml_version["id"]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_loading_a_broken_file_is_422_with_the_errors_and_stores_nothing(
    client: TestClient, acme: TenantWithKeys, lang: str
) -> None:
    response = client.post(URL, content=SEVERAL_MISTAKES, headers=acme.headers(lang=lang))

    problem = assert_problem(response, 422, "programs.invalid")
    # the detail reads on its own: the summary, then each field with its message
    fields = [f"{field}: {message}" for field, message, _ in SEVERAL_MISTAKES_ERRORS[lang]]
    assert (
        problem["detail"]
        == {
            "en": "The program file is not valid: " + "; ".join(fields),
            "zh-CN": "会员计划文件无效：" + "；".join(fields),
        }[lang]
    )
    assert [(e["field"], e["message"], e["line"]) for e in problem["errors"]] == (
        SEVERAL_MISTAKES_ERRORS[lang]
    )
    assert stored(client, acme) == []


@pytest.mark.parametrize("path", [URL, f"{URL}/validate"])
@pytest.mark.parametrize(
    ("lang", "message"), [("en", "body is not UTF-8 text."), ("zh-CN", "body 不是 UTF-8 文本。")]
)
def test_a_body_that_is_not_utf8_is_refused_clearly(
    client: TestClient, acme: TenantWithKeys, path: str, lang: str, message: str
) -> None:
    gbk = TEAHOUSE.encode("gbk")

    response = client.post(path, content=gbk, headers=acme.headers(lang=lang))

    problem = assert_problem(response, 422, "core.error.invalid_input")
    assert [(e["field"], e["message"]) for e in problem["errors"]] == [("body", message)]
    assert stored(client, acme) == []


def test_a_utf8_file_with_a_byte_order_mark_loads(client: TestClient, acme: TenantWithKeys) -> None:
    response = load(client, acme, b"\xef\xbb\xbf" + TEAHOUSE.encode())

    assert response.status_code == 201
    assert stored(client, acme) == [("teahouse", 1)]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.OPERATOR, Role.APP])
def test_only_an_admin_may_load(client: TestClient, acme: TenantWithKeys, role: Role) -> None:
    response = client.post(URL, content=TEAHOUSE, headers=acme.headers(role))

    assert_problem(response, 403, "core.auth.role_refused")
    assert stored(client, acme) == []


# --- activate and read back -----------------------------------------------------------------------


@pytest.fixture
def two_versions(client: TestClient, acme: TenantWithKeys) -> tuple[int, int]:
    first = load(client, acme, TEAHOUSE).json()["version"]["id"]
    second = load(client, acme, TEAHOUSE_V2).json()["version"]["id"]
    return first, second


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def activate(client: TestClient, acme: TenantWithKeys, version_id: int, when: str | None) -> Any:
    body = {} if when is None else {"effective_from": when}
    return client.post(f"{URL}/{version_id}/activate", json=body, headers=acme.headers())


def active_at(client: TestClient, acme: TenantWithKeys, as_of: str) -> Any:
    return client.get(f"{URL}/active", params={"as_of": as_of}, headers=acme.headers(Role.APP))


def test_no_program_is_active_at_first(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    problem = assert_problem(
        client.get(f"{URL}/active", headers=acme.headers(lang="zh-CN")), 404, "programs.no_active"
    )

    assert problem["detail"] == "该租户尚未启用任何会员计划。"


def test_activation_defaults_to_now(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    first, _ = two_versions

    response = activate(client, acme, first, None)

    assert response.status_code == 201
    assert response.json()["effective_from"] == "2026-11-25T08:00:00Z"
    assert response.json()["activated_at"] == "2026-11-25T08:00:00Z"
    assert response.json()["activated_by"].startswith("key:")
    active = client.get(f"{URL}/active", headers=acme.headers()).json()
    assert active["version"]["id"] == first
    assert active["activation"] == response.json()


def test_the_active_program_follows_the_effective_dates(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    first, second = two_versions
    assert activate(client, acme, first, "2026-01-01T00:00:00+08:00").status_code == 201
    assert active_at(client, acme, "2026-12-01T00:00:00Z").json()["version"]["id"] == first

    assert activate(client, acme, second, "2026-07-01T00:00:00+08:00").status_code == 201

    for as_of, expected in [
        ("2026-03-01T00:00:00+08:00", first),
        ("2026-06-30T23:59:59+08:00", first),
        ("2026-07-01T00:00:00+08:00", second),
        ("2026-06-30T16:00:00Z", second),
        ("2026-12-01T00:00:00Z", second),
    ]:
        response = active_at(client, acme, as_of)
        assert response.json()["version"]["id"] == expected, as_of
    assert active_at(client, acme, "2025-12-31T23:59:59+08:00").status_code == 404


@pytest.mark.parametrize(
    ("timezone", "utc"),
    [
        ("Asia/Shanghai", "2026-06-30T16:00:00+00:00"),
        ("Europe/London", "2026-06-30T23:00:00+00:00"),
    ],
)
def test_a_date_without_a_zone_is_read_in_the_tenants_zone(
    state: AppState, client: TestClient, timezone: str, utc: str
) -> None:
    tenant = make_tenant(state, slug="zoned", timezone=timezone)
    version = load(client, tenant, TEAHOUSE).json()["version"]["id"]

    response = activate(client, tenant, version, "2026-07-01T00:00:00")
    in_force = client.get(
        f"{URL}/active", params={"as_of": "2026-07-01T00:00:00"}, headers=tenant.headers()
    )
    just_before = client.get(
        f"{URL}/active", params={"as_of": "2026-06-30T23:59:59"}, headers=tenant.headers()
    )

    assert instant(response.json()["effective_from"]) == datetime.fromisoformat(utc)
    assert in_force.status_code == 200
    assert just_before.status_code == 404


@pytest.mark.parametrize(
    ("lang", "detail"),
    [
        (
            "en",
            "The effective date 2026-01-01T00:00:00+08:00 is before the active version's "
            "(2026-06-30T16:00:00+00:00).",
        ),
        (
            "zh-CN",
            "生效日期 2026-01-01T00:00:00+08:00 早于当前启用版本的生效日期"
            "（2026-06-30T16:00:00+00:00）。",
        ),
    ],
)
def test_an_activation_earlier_than_the_one_in_force_is_refused(
    client: TestClient,
    acme: TenantWithKeys,
    two_versions: tuple[int, int],
    lang: str,
    detail: str,
) -> None:
    first, second = two_versions
    activate(client, acme, second, "2026-07-01T00:00:00+08:00")

    response = client.post(
        f"{URL}/{first}/activate",
        json={"effective_from": "2026-01-01T00:00:00+08:00"},
        headers=acme.headers(lang=lang),
    )

    problem = assert_problem(response, 422, "programs.activation_before")
    assert problem["detail"] == detail
    assert active_at(client, acme, "2026-12-01T00:00:00Z").json()["version"]["id"] == second
    assert active_at(client, acme, "2026-03-01T00:00:00Z").status_code == 404


def test_activating_an_unknown_version_is_not_found(
    client: TestClient, acme: TenantWithKeys
) -> None:
    problem = assert_problem(activate(client, acme, 99999999, None), 404, "programs.not_found")

    assert problem["detail"] == "No program version 99999999."


def test_an_unknown_field_in_an_activation_is_refused(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    first, _ = two_versions

    response = client.post(
        f"{URL}/{first}/activate", json={"effective": "2026-07-01"}, headers=acme.headers()
    )

    problem = assert_problem(response, 422, "core.error.request_invalid")
    assert [e["field"] for e in problem["errors"]] == ["effective"]


# --- diff -----------------------------------------------------------------------------------------


def test_diff_lists_the_changed_paths(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    first, second = two_versions

    forward = client.get(f"{URL}/{first}/diff/{second}", headers=acme.headers(Role.ANALYST))
    same = client.get(f"{URL}/{first}/diff/{first}", headers=acme.headers(Role.ANALYST))

    assert forward.status_code == 200
    assert forward.json() == [{"path": "earning.caps.per_day", "before": 2000, "after": 3000}]
    assert same.json() == []


def test_diff_with_an_unknown_version_is_not_found(
    client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    first, _ = two_versions

    response = client.get(f"{URL}/{first}/diff/99999999", headers=acme.headers())

    assert_problem(response, 404, "programs.not_found")


def test_another_tenants_version_cannot_be_diffed(
    state: AppState, client: TestClient, acme: TenantWithKeys, two_versions: tuple[int, int]
) -> None:
    other = make_tenant(state, slug="other")
    theirs = client.post(URL, content=TEAHOUSE_V2, headers=other.headers()).json()["version"]
    first, _ = two_versions

    response = client.get(f"{URL}/{first}/diff/{theirs['id']}", headers=acme.headers())

    assert_problem(response, 404, "programs.not_found")
