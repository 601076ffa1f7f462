"""Every route of the API, called as someone who must not see or change another tenant's data.

Tenant A ("victim") holds a member, a program and keys, all carrying marker strings.
Tenant B ("intruder") calls every route with each of its keys, with A's identifiers in the
path. Nothing of A may appear in any answer and nothing of A may change. Then every role
that lacks a route's permission is refused, and unauthenticated calls are refused.

``ROUTE_CALLS`` must name every route: adding a route without adding it here fails
``test_every_route_is_swept``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import TenantWithKeys, make_platform_key, make_tenant
from memberlab.core.access import Permission, Role, grants
from memberlab.core.app_state import AppState
from memberlab.core.models import ApiKey
from memberlab.core.web import Requires
from memberlab.datasets.demo import sample_program_text
from memberlab.engagement.models import EngagementEvent, EngagementVersion
from memberlab.experience.models import CaseNote, FollowUpCase, Survey
from memberlab.ledger.models import LedgerEntry, Order
from memberlab.members.models import Member
from memberlab.programs.models import ProgramActivation, ProgramVersion
from memberlab.webhooks.models import OutboxEvent, WebhookEndpoint

VICTIM_MARKERS = (
    "VictimName",
    "13900001111",
    "1111",
    "victim-ext-7",
    "victimtag",
    "VictimCity",
    "VictimCo",
    "受害者",
    "VictimComment",
)
SAMPLE = sample_program_text("teahouse")
VICTIM_PURCHASE = {
    "member_id": "VICTIM-001",
    "order_id": "victim-order-1",
    "channel": "store",
    "occurred_at": "2026-11-20T10:00:00+08:00",
    "lines": [{"sku": "victim-sku", "category": "tea", "amount": "128.00"}],
}


def _victim(state: AppState, client: TestClient) -> tuple[TenantWithKeys, dict[str, Any]]:
    victim = make_tenant(state, slug="victim", name_zh="受害者", name_en="VictimCo")
    headers = victim.headers()
    loaded = client.post("/api/v1/programs", content=SAMPLE, headers=headers)
    assert loaded.status_code == 201, loaded.text
    version_id = loaded.json()["version"]["id"]
    activation = client.post(
        f"/api/v1/programs/{version_id}/activate",
        json={"effective_from": "2026-01-01T00:00:00+08:00"},
        headers=headers,
    )
    assert activation.status_code == 201, activation.text
    member = client.post(
        "/api/v1/members",
        json={
            "member_id": "VICTIM-001",
            "name": "VictimName",
            "mobile": "13900001111",
            "external_id": "victim-ext-7",
            "tags": ["victimtag"],
            "city": "VictimCity",
        },
        headers=headers,
    )
    assert member.status_code == 201, member.text
    key_id = client.get("/api/v1/keys", headers=headers).json()[0]["id"]
    hook = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/victim-hook"}, headers=headers
    )
    assert hook.status_code == 201, hook.text
    purchase = client.post("/api/v1/purchases", json=VICTIM_PURCHASE, headers=headers)
    assert purchase.status_code == 201, purchase.text
    adjusted = client.post(
        "/api/v1/members/VICTIM-001/adjustments",
        json={"points": 5000, "reason": "victim goodwill"},
        headers={**headers, "Idempotency-Key": "victim-adj"},
    )
    assert adjusted.status_code == 201, adjusted.text
    events = client.get("/api/v1/webhooks/events", headers=headers).json()
    assert events, "the victim's purchase queued webhook events"
    # a survey, a link answered by an unhappy member with a comment, and the case it opened
    survey = client.post("/api/v1/experience/surveys", json=VICTIM_SURVEY, headers=headers)
    assert survey.status_code == 201, survey.text
    activated = client.post(
        "/api/v1/experience/surveys/victim_survey/status",
        json={"status": "active"},
        headers=headers,
    )
    assert activated.status_code == 200, activated.text
    link = client.post(
        "/api/v1/experience/surveys/victim_survey/invitations",
        json={"member_id": "VICTIM-001"},
        headers={**headers, "Idempotency-Key": "victim-invite"},
    )
    assert link.status_code == 201, link.text
    url = link.json()["url"]
    answer = client.post(url[url.index("/s/") :], data={"nps": "2", "comment": "VictimComment"})
    assert answer.status_code == 200, answer.text
    victim_cases = client.get("/api/v1/experience/cases", headers=headers).json()["items"]
    engagement = client.post("/api/v1/engagements", json=VICTIM_TERMS, headers=headers)
    assert engagement.status_code == 201, engagement.text
    signed = client.post(
        "/api/v1/engagements/VICTIM-ENG/events",
        json={"kind": "signed", "on": "2026-01-05", "payload": {}},
        headers=headers,
    )
    assert signed.status_code == 201, signed.text
    ids = {
        "member_id": "VICTIM-001",
        "version_id": version_id,
        "other_id": version_id,
        "key_id": key_id,
        "endpoint_id": hook.json()["id"],
        "event_id": events[0]["id"],
        "kind": "members",
        "what": "members",
        "code": "victim_survey",
        "case_id": victim_cases[0]["id"],
        "number": "VICTIM-ENG",
    }
    return victim, ids


VICTIM_SURVEY = {
    "code": "victim_survey",
    "title": {"zh": "受害者调查", "en": "VictimCo survey"},
    "questions": [
        {"id": "nps", "type": "nps"},
        {"id": "comment", "type": "text", "text": {"zh": "意见", "en": "Comment"}},
    ],
}
INTRUDER_SURVEY = {**VICTIM_SURVEY, "code": "intruder_survey", "title": {"zh": "调查", "en": "S"}}
_ENGAGEMENT = json.loads(
    json.dumps(
        yaml.safe_load(
            (
                Path(__file__).parents[1]
                / "src/memberlab/engagement/samples/membership_consulting.yaml"
            ).read_text(encoding="utf-8")
        ),
        default=str,
    )
)
VICTIM_TERMS = {
    **_ENGAGEMENT,
    "contract_number": "VICTIM-ENG",
    "parties": {
        **_ENGAGEMENT["parties"],
        "client": {**_ENGAGEMENT["parties"]["client"], "legal_name": "VictimCo Ltd"},
    },
}
INTRUDER_TERMS = {**_ENGAGEMENT, "contract_number": "INTRUDER-ENG"}


# What to send to each route: a request that would succeed for the right caller.
ROUTE_CALLS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/me"): {},
    ("POST", "/api/v1/tenants"): {"json": {"slug": "newco", "name_zh": "新", "name_en": "New"}},
    ("GET", "/api/v1/tenants"): {},
    ("GET", "/api/v1/keys"): {},
    ("POST", "/api/v1/keys"): {"json": {"role": "analyst"}},
    ("DELETE", "/api/v1/keys/{key_id}"): {},
    ("POST", "/api/v1/programs/validate"): {"content": SAMPLE},
    ("POST", "/api/v1/programs"): {"content": SAMPLE},
    ("GET", "/api/v1/programs"): {},
    ("GET", "/api/v1/programs/active"): {},
    ("GET", "/api/v1/programs/{version_id}"): {},
    ("POST", "/api/v1/programs/{version_id}/activate"): {"json": {}},
    ("GET", "/api/v1/programs/{version_id}/diff/{other_id}"): {},
    ("POST", "/api/v1/members"): {"json": {"name": "Intruder", "mobile": "13700002222"}},
    ("GET", "/api/v1/members"): {},
    ("GET", "/api/v1/members/{member_id}"): {},
    ("PATCH", "/api/v1/members/{member_id}"): {"json": {"city": "Hijacked"}},
    ("POST", "/api/v1/members/{member_id}/erase"): {},
    ("POST", "/api/v1/purchases"): {"json": {**VICTIM_PURCHASE, "order_id": "victim-order-2"}},
    ("POST", "/api/v1/returns"): {
        "json": {
            "return_id": "r-1",
            "order_id": "victim-order-1",
            "occurred_at": "2026-11-21T10:00:00+08:00",
        }
    },
    ("GET", "/api/v1/members/{member_id}/points"): {},
    ("GET", "/api/v1/members/{member_id}/ledger"): {},
    ("POST", "/api/v1/members/{member_id}/adjustments"): {
        "json": {"points": -10, "reason": "sweep"},
        "headers": {"Idempotency-Key": "sweep-adj"},
    },
    ("POST", "/api/v1/members/{member_id}/bonuses"): {
        "json": {"type": "review", "reference": "sweep-review"}
    },
    ("POST", "/api/v1/members/{member_id}/redemptions"): {
        "json": {"reward": "coupon_5"},
        "headers": {"Idempotency-Key": "sweep-redeem"},
    },
    ("POST", "/api/v1/members/{member_id}/paid-plans"): {
        "json": {"plan": "tea_pass"},
        "headers": {"Idempotency-Key": "sweep-plan"},
    },
    ("GET", "/api/v1/members/{member_id}/coupons"): {},
    ("GET", "/api/v1/rewards"): {},
    ("POST", "/api/v1/jobs/run"): {"json": {}},
    ("GET", "/api/v1/liability"): {},
    ("POST", "/api/v1/webhooks"): {"json": {"url": "http://127.0.0.1:9/intruder"}},
    ("GET", "/api/v1/webhooks"): {},
    ("DELETE", "/api/v1/webhooks/{endpoint_id}"): {},
    ("GET", "/api/v1/webhooks/events"): {},
    ("POST", "/api/v1/imports/{kind}"): {
        "content": "会员卡号,手机号,城市\nINTRUDER-1,13700003333,Hijacked\n".encode(),
        "params": {"file_name": "members.csv"},
    },
    ("GET", "/api/v1/exports/{what}"): {},
    ("GET", "/api/v1/analytics/clv"): {},
    ("GET", "/api/v1/analytics/rfm"): {},
    ("POST", "/api/v1/webhooks/events/{event_id}/retry"): {},
    ("GET", "/api/v1/experience/touchpoints"): {},
    ("PUT", "/api/v1/experience/touchpoints"): {
        "json": {"code": "kiosk", "stage": "buy", "name_zh": "自助机", "name_en": "Kiosk"}
    },
    ("GET", "/api/v1/experience/settings"): {},
    ("PATCH", "/api/v1/experience/settings"): {"json": {"contact_cap_days": 14}},
    ("POST", "/api/v1/experience/surveys"): {"json": INTRUDER_SURVEY},
    ("GET", "/api/v1/experience/surveys"): {},
    ("GET", "/api/v1/experience/surveys/{code}"): {},
    ("POST", "/api/v1/experience/surveys/{code}/status"): {"json": {"status": "closed"}},
    ("POST", "/api/v1/experience/surveys/{code}/invitations"): {
        "json": {"member_id": "VICTIM-001"},
        "headers": {"Idempotency-Key": "sweep-invite"},
    },
    ("POST", "/api/v1/experience/jobs"): {"json": {}},
    ("GET", "/api/v1/experience/scores"): {},
    ("GET", "/api/v1/experience/scores/change"): {
        "params": {
            "before_from": "2026-01-01",
            "before_to": "2026-06-30",
            "after_from": "2026-07-01",
            "after_to": "2026-12-31",
        }
    },
    ("GET", "/api/v1/experience/comments"): {},
    ("GET", "/api/v1/experience/drivers"): {"params": {"resamples": 10}},
    ("GET", "/api/v1/experience/value"): {},
    ("GET", "/api/v1/experience/cases"): {},
    ("GET", "/api/v1/experience/cases/measures"): {},
    ("GET", "/api/v1/experience/cases/{case_id}"): {},
    ("POST", "/api/v1/experience/cases/{case_id}/assign"): {"json": {"assignee": "intruder"}},
    ("POST", "/api/v1/experience/cases/{case_id}/notes"): {"json": {"text": "intruder"}},
    ("POST", "/api/v1/engagements/validate"): {"json": INTRUDER_TERMS},
    ("POST", "/api/v1/engagements"): {"json": INTRUDER_TERMS},
    ("GET", "/api/v1/engagements"): {},
    ("GET", "/api/v1/engagements/{number}"): {},
    ("GET", "/api/v1/engagements/{number}/versions"): {},
    ("POST", "/api/v1/engagements/{number}/events"): {
        "json": {"kind": "completed", "on": "2026-02-01", "payload": {}}
    },
    ("GET", "/api/v1/engagements/{number}/events"): {},
    ("GET", "/api/v1/engagements/{number}/status"): {},
    ("GET", "/api/v1/engagements/{number}/reminders"): {},
    ("POST", "/api/v1/engagements/{number}/standards/{code}/measure"): {"json": {}},
    ("POST", "/api/v1/engagements/{number}/evidence"): {
        "files": {"file": ("minutes.txt", b"intruder minutes")},
        "data": {"kind": "other", "title": "intruder"},
    },
    ("GET", "/api/v1/engagements/{number}/evidence"): {},
    ("GET", "/api/v1/engagements/{number}/evidence/verify"): {},
    ("POST", "/api/v1/engagements/{number}/changes/{code}/approve"): {
        "json": {"on": "2026-03-01", "decided_by": "intruder", "terms": INTRUDER_TERMS}
    },
    ("POST", "/api/v1/engagements/{number}/questionnaire/link"): {"json": {}},
    ("GET", "/api/v1/engagements/{number}/questionnaire"): {},
    ("POST", "/api/v1/engagements/{number}/questionnaire/answers"): {
        "json": {"answers": {"company_name": "intruder"}}
    },
    ("GET", "/api/v1/engagements/calendar/holidays"): {},
    ("PUT", "/api/v1/engagements/calendar/holidays"): {
        "json": {"text": "years:\n  2026:\n    rest_days: [2026-12-31]\n", "source": "intruder"}
    },
    ("DELETE", "/api/v1/engagements/calendar/holidays"): {},
    ("POST", "/api/v1/experience/cases/{case_id}/close"): {
        "json": {"resolution": "closed by intruder", "gesture_points": 10}
    },
}


# Routes whose path parameters name no object of the victim (a kind of file, two versions
# compared): the intruder's call may succeed on its own data.
PATHS_WITHOUT_VICTIM_IDS = {
    "/api/v1/programs/{version_id}/diff/{other_id}",
    "/api/v1/imports/{kind}",
    "/api/v1/exports/{what}",
}


@dataclass(frozen=True)
class Route:
    """A route as mounted: its full path and the endpoint's own ``APIRoute``."""

    path: str
    api_route: APIRoute

    @property
    def dependant(self) -> Any:
        return self.api_route.dependant


def api_routes(client: TestClient) -> list[tuple[str, Route]]:
    """Every (method, route) under /api/, as FastAPI mounts them (included routers flattened)."""
    return [
        (method, Route(context.path, context.original_route))
        for context in iter_route_contexts(client.app.routes)
        if isinstance(context.original_route, APIRoute) and (context.path or "").startswith("/api/")
        for method in sorted(context.original_route.methods)
    ]


def requirement(route: Route) -> Requires | None:
    """The ``Requires`` dependency guarding a route, found in its dependency tree."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Requires):
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def call(
    client: TestClient, method: str, route: Route, ids: dict[str, Any], headers: dict[str, str]
):
    spec = dict(ROUTE_CALLS[(method, route.path)])
    headers = {**headers, **spec.pop("headers", {})}
    return client.request(method, route.path.format(**ids), headers=headers, **spec)


def tenant_ids_in(body: Any) -> set[int]:
    """Every tenant id an answer names (``tenant_id`` fields and ``tenant`` objects)."""
    found: set[int] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "tenant_id" and isinstance(value, int):
                found.add(value)
            elif key == "tenant" and isinstance(value, dict) and isinstance(value.get("id"), int):
                found.add(value["id"])
            found |= tenant_ids_in(value)
    elif isinstance(body, list):
        for item in body:
            found |= tenant_ids_in(item)
    return found


def victim_snapshot(state: AppState, tenant_id: int) -> dict[str, Any]:
    with state.database.session(tenant_id=tenant_id) as session:
        member = session.scalar(select(Member))
        return {
            "member": {c.key: getattr(member, c.key) for c in Member.__table__.columns},
            "versions": session.scalar(select(func.count()).select_from(ProgramVersion)),
            "activations": session.scalar(select(func.count()).select_from(ProgramActivation)),
            "keys": [
                (k.id, k.revoked_at)
                for k in session.scalars(
                    select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id)
                )
            ],
            "entries": session.scalar(select(func.count()).select_from(LedgerEntry)),
            "points": session.scalar(select(func.sum(LedgerEntry.points))),
            "orders": session.scalar(select(func.count()).select_from(Order)),
            "hooks": [(h.id, h.active) for h in session.scalars(select(WebhookEndpoint))],
            "events": [(e.id, e.status, e.attempts) for e in session.scalars(select(OutboxEvent))],
            "surveys": [(v.code, v.status) for v in session.scalars(select(Survey))],
            "cases": [
                (c.id, c.status, c.assignee, c.closed_at)
                for c in session.scalars(select(FollowUpCase))
            ],
            "case_notes": session.scalar(select(func.count()).select_from(CaseNote)),
            "engagement_events": session.scalar(select(func.count()).select_from(EngagementEvent)),
            "engagement_versions": session.scalar(
                select(func.count()).select_from(EngagementVersion)
            ),
        }


def test_every_route_is_swept(client: TestClient) -> None:
    routes = {(method, route.path) for method, route in api_routes(client)}
    assert routes == set(ROUTE_CALLS), "update ROUTE_CALLS to cover the routes that exist"
    for method, route in api_routes(client):
        assert requirement(route) is not None, f"{method} {route.path} has no access check"


def test_no_route_leaks_or_changes_another_tenants_data(
    state: AppState, client: TestClient
) -> None:
    victim, ids = _victim(state, client)
    intruder = make_tenant(state, slug="intruder", name_zh="入侵者", name_en="Intruder")
    before = victim_snapshot(state, victim.tenant.id)

    answered = 0
    for role in (Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.APP):
        for method, route in api_routes(client):
            response = call(client, method, route, ids, intruder.headers(role))
            body = response.text
            for marker in VICTIM_MARKERS:
                assert marker not in body, f"{role} {method} {route.path} leaked {marker!r}"
            if response.headers["content-type"].startswith("application/json"):
                assert victim.tenant.id not in tenant_ids_in(response.json()), (
                    f"{role} {method} {route.path} named the victim tenant"
                )
            if "{" in route.path and route.path not in PATHS_WITHOUT_VICTIM_IDS:
                # A's identifiers do not exist for B: refused or not found, never served.
                assert response.status_code in (403, 404), (role, method, route.path, body)
            answered += response.status_code < 400
    assert answered > 0  # the intruder's own calls did succeed: the sweep reached the routes
    assert victim_snapshot(state, victim.tenant.id) == before


def test_roles_without_the_permission_are_refused(state: AppState, client: TestClient) -> None:
    victim, ids = _victim(state, client)
    platform_key = make_platform_key(state)
    keys = {**victim.keys, Role.PLATFORM: platform_key}
    before = victim_snapshot(state, victim.tenant.id)
    refused = 0
    for method, route in api_routes(client):
        needed = requirement(route)
        assert needed is not None
        for role, secret in keys.items():
            allowed = (needed.permission is None or grants(role, needed.permission)) and not (
                needed.tenant and role is Role.PLATFORM
            )
            if allowed:
                continue
            response = call(
                client,
                method,
                route,
                ids,
                {"Authorization": f"Bearer {secret}", "Accept-Language": "en"},
            )
            assert response.status_code == 403, (role, method, route.path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            refused += 1
    assert refused > 20
    assert victim_snapshot(state, victim.tenant.id) == before


def test_role_policy_matches_the_contract() -> None:
    """What each role may do, as the issue states it (a second statement of access.py)."""
    writes = {
        Permission.PROGRAMS_WRITE,
        Permission.MEMBERS_WRITE,
        Permission.MEMBERS_ERASE,
        Permission.KEYS_MANAGE,
        Permission.TENANTS_MANAGE,
    }
    assert not any(grants(Role.ANALYST, p) for p in writes)
    assert grants(Role.ANALYST, Permission.MEMBERS_READ)
    assert grants(Role.APP, Permission.MEMBERS_WRITE)
    assert grants(Role.APP, Permission.MEMBERS_READ)
    assert not grants(Role.APP, Permission.MEMBERS_PII)
    assert not grants(Role.APP, Permission.PROGRAMS_WRITE)
    assert grants(Role.OPERATOR, Permission.MEMBERS_WRITE)
    assert not grants(Role.OPERATOR, Permission.KEYS_MANAGE)
    # operators work the follow-up cases; only admins design surveys and send links
    assert grants(Role.OPERATOR, Permission.CASES_WORK)
    assert not grants(Role.OPERATOR, Permission.EXPERIENCE_MANAGE)
    assert not grants(Role.ANALYST, Permission.CASES_WORK)  # cases hold members' words
    assert not grants(Role.APP, Permission.CASES_WORK)
    assert all(grants(Role.ADMIN, p) for p in Permission if p is not Permission.TENANTS_MANAGE)
    assert [p for p in Permission if grants(Role.PLATFORM, p)] == [Permission.TENANTS_MANAGE]


@pytest.mark.parametrize("authorization", [None, "Bearer ml_unknown", "Bearer nonsense", "Basic x"])
def test_calls_without_a_valid_key_are_refused(
    client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    ids = {
        "member_id": "M1",
        "version_id": 1,
        "other_id": 1,
        "key_id": 1,
        "endpoint_id": 1,
        "event_id": 1,
        "kind": "members",
        "what": "members",
        "code": "victim_survey",
        "case_id": 1,
        "number": "VICTIM-ENG",
    }
    for method, route in api_routes(client):
        response = call(client, method, route, ids, headers)
        assert response.status_code in (401, 403), (method, route.path)
        assert response.json()["code"].startswith("core.")


def test_a_revoked_key_is_refused(state: AppState, client: TestClient) -> None:
    acme = make_tenant(state)
    keys = client.get("/api/v1/keys", headers=acme.headers()).json()
    key_id = next(k["id"] for k in keys if k["role"] == "analyst")
    assert client.delete(f"/api/v1/keys/{key_id}", headers=acme.headers()).status_code == 200
    response = client.get("/api/v1/members", headers=acme.headers(Role.ANALYST))
    assert response.status_code == 401
    assert response.json()["detail"] == "The API key has been revoked."
    zh = client.get("/api/v1/members", headers=acme.headers(Role.ANALYST, lang="zh-CN"))
    assert zh.json()["detail"] == "API 密钥已被吊销。"
