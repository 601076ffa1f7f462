"""Set-up shared by the experience tests: a tea chain running its program, a member who
bought at a store, and the sample surveys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from factories import TenantWithKeys, make_tenant
from memberlab.core.app_state import AppState
from memberlab.datasets.demo import sample_program_text

API = "/api/v1"
SAMPLES = Path(__file__).parents[1] / "src" / "memberlab" / "experience" / "samples"
PROGRAM_FROM = "2025-01-01T00:00:00+08:00"


def sample_survey(name: str, **changes: Any) -> dict[str, Any]:
    data = yaml.safe_load((SAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return {**data, **changes}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def tea_chain(state: AppState, client: TestClient, slug: str = "tea") -> TenantWithKeys:
    """The teahouse program, active since 2025, and member M-1 with one store purchase."""
    tenant = make_tenant(state, slug=slug, name_zh="茶语", name_en="Teahouse")
    headers = tenant.headers()
    version = ok(
        client.post(f"{API}/programs", content=sample_program_text("teahouse"), headers=headers),
        201,
    )["version"]["id"]
    ok(
        client.post(
            f"{API}/programs/{version}/activate",
            json={"effective_from": PROGRAM_FROM},
            headers=headers,
        ),
        201,
    )
    buy(client, tenant, "M-1", "O-1", "2026-11-20T10:00:00+08:00")
    return tenant


def buy(
    client: TestClient,
    tenant: TenantWithKeys,
    member_id: str,
    order_id: str,
    when: str,
    channel: str = "store",
    amount: str = "38.00",
) -> dict[str, Any]:
    body = {
        "member_id": member_id,
        "order_id": order_id,
        "occurred_at": when,
        "channel": channel,
        "store": "S-001",
        "lines": [{"sku": "latte", "category": "coffee", "amount": amount}],
    }
    return ok(client.post(f"{API}/purchases", json=body, headers=tenant.headers()), 201)


def active_survey(client: TestClient, tenant: TenantWithKeys, name: str, **changes: Any) -> str:
    body = sample_survey(name, **changes)
    ok(client.post(f"{API}/experience/surveys", json=body, headers=tenant.headers()), 201)
    ok(
        client.post(
            f"{API}/experience/surveys/{body['code']}/status",
            json={"status": "active"},
            headers=tenant.headers(),
        )
    )
    return body["code"]


def invite(
    client: TestClient,
    tenant: TenantWithKeys,
    survey: str,
    member_id: str = "M-1",
    key: str = "invite-1",
    **extra: Any,
) -> dict[str, Any]:
    response = client.post(
        f"{API}/experience/surveys/{survey}/invitations",
        json={"member_id": member_id, **extra},
        headers={**tenant.headers(), "Idempotency-Key": key},
    )
    return ok(response, 201)


def path_of(url: str) -> str:
    return url[url.index("/s/") :]


# answers to the after_purchase sample that pass every check
GOOD_ANSWER = {
    "nps": "9",
    "csat": "5",
    "ces": "6",
    "speed": "4",
    "quality": "5",
    "visit_reason": "taste",
    "improve": ["price", "app"],
    "comment": "拿铁很好喝",
}
