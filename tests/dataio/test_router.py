"""The data routes: a client file POSTed as the body of ``/imports/{kind}``, stored data
fetched from ``/exports/{what}`` in the format asked for."""

from __future__ import annotations

import io

import polars as pl
import pytest
from fastapi.testclient import TestClient

from factories import TenantWithKeys, make_tenant, run_program
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text

API = "/api/v1"
MEMBERS_GBK = (
    "会员卡号,手机号,姓名,生日\nM001,13812345678,张三,1990年5月3日\nM002,abc,李四,1985-02-30\n"
).encode("gbk")


@pytest.fixture
def tea(state: AppState, client: TestClient) -> TenantWithKeys:
    tenant = make_tenant(state, slug="tea", name_zh="茶语", name_en="Teahouse")
    run_program(
        client, tenant, sample_program_text("teahouse"), effective_from="2020-01-01T00:00:00+08:00"
    )
    return tenant


def test_a_gbk_file_posted_as_the_body_loads_its_good_rows_and_names_the_bad_ones(
    client: TestClient, tea: TenantWithKeys
) -> None:
    answer = client.post(
        f"{API}/imports/members",
        content=MEMBERS_GBK,
        params={"file_name": "会员.csv"},
        headers=tea.headers(Role.OPERATOR, lang="zh-CN"),
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"], body["loaded"], body["rejected"]) == (2, 1, 1)
    assert body["encoding"] == "gbk"
    assert body["mapping"]["columns"]["member_id"] == "会员卡号"
    reasons = {(r["row"], r["column"]): r["reason"] for r in body["rejects"]}
    assert reasons == {
        (3, "手机号"): "abc 不是有效的手机号",
        (3, "生日"): "1985-02-30 不是实际存在的日期",
    }
    member = client.get(f"{API}/members/M001", headers=tea.headers(Role.OPERATOR))
    assert member.json()["birthday"] == "1990-05-03"


def test_the_same_file_posted_twice_changes_nothing(
    client: TestClient, tea: TenantWithKeys
) -> None:
    first = client.post(f"{API}/imports/members", content=MEMBERS_GBK, headers=tea.headers())
    second = client.post(f"{API}/imports/members", content=MEMBERS_GBK, headers=tea.headers())

    assert (first.json()["loaded"], second.json()["loaded"], second.json()["skipped"]) == (1, 0, 1)


def test_all_or_nothing_loads_nothing_when_a_row_is_bad(
    client: TestClient, tea: TenantWithKeys
) -> None:
    answer = client.post(
        f"{API}/imports/members",
        content=MEMBERS_GBK,
        params={"all_or_nothing": True},
        headers=tea.headers(),
    )

    assert answer.json()["refused"] is True
    assert answer.json()["loaded"] == 0
    assert client.get(f"{API}/members/M001", headers=tea.headers()).status_code == 404


@pytest.mark.parametrize(
    ("content", "lang", "message"),
    [
        (b"", "en", "body: the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "en", "upload: is a binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "zh-CN", "upload: 是二进制文件"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_problem_naming_why(
    client: TestClient, tea: TenantWithKeys, content: bytes, lang: str, message: str
) -> None:
    answer = client.post(f"{API}/imports/members", content=content, headers=tea.headers(lang=lang))

    assert answer.status_code == 422
    problem = answer.json()
    rendered = [f"{e['field']}: {e['message']}" for e in problem["errors"]]
    assert rendered[0].startswith(message), rendered


def test_a_missing_required_column_is_named(client: TestClient, tea: TenantWithKeys) -> None:
    answer = client.post(
        f"{API}/imports/transactions",
        content="会员卡号,实付金额\nM001,12\n".encode(),
        headers=tea.headers(),
    )

    assert answer.status_code == 422
    fields = sorted(e["field"] for e in answer.json()["errors"])
    assert fields == ["occurred_at", "order_id"]


def test_the_analyst_may_not_import(client: TestClient, tea: TenantWithKeys) -> None:
    answer = client.post(
        f"{API}/imports/members", content=MEMBERS_GBK, headers=tea.headers(Role.ANALYST)
    )

    assert answer.status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_exports_come_back_in_the_format_asked_and_read_as_they_were_stored(
    client: TestClient, tea: TenantWithKeys, fmt: str
) -> None:
    client.post(f"{API}/imports/members", content=MEMBERS_GBK, headers=tea.headers())

    answer = client.get(
        f"{API}/exports/members", params={"format": fmt, "pii": True}, headers=tea.headers()
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].endswith(f'.{fmt}"')
    data = io.BytesIO(answer.content)
    if fmt == "csv":
        assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese
        frame = pl.read_csv(data, infer_schema=False)
    elif fmt == "xlsx":
        frame = pl.read_excel(data, infer_schema_length=0)
    else:
        frame = pl.read_parquet(data)
    row = frame.row(0, named=True)
    assert (row["member_id"], str(row["mobile"]), row["name"]) == ("M001", "+8613812345678", "张三")


def test_personal_data_in_an_export_needs_the_right_to_see_it(
    client: TestClient, tea: TenantWithKeys
) -> None:
    client.post(f"{API}/imports/members", content=MEMBERS_GBK, headers=tea.headers())

    refused = client.get(
        f"{API}/exports/members", params={"pii": True}, headers=tea.headers(Role.ANALYST)
    )
    masked = client.get(f"{API}/exports/members", headers=tea.headers(Role.ANALYST))

    assert refused.status_code == 403
    frame = pl.read_csv(io.BytesIO(masked.content), infer_schema=False)
    assert frame.row(0, named=True)["mobile"] == "138****5678"
    assert frame.row(0, named=True)["name"] is None
