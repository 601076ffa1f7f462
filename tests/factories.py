"""Plain factory functions for tests, with keyword-only overrides."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from memberlab.core import tenants
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.models import Tenant


@dataclass(frozen=True)
class TenantWithKeys:
    tenant: Tenant
    keys: dict[Role, str]

    def headers(self, role: Role = Role.ADMIN, *, lang: str = "en") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", "Accept-Language": lang}


def make_tenant(
    state: AppState,
    *,
    slug: str = "acme",
    name_zh: str = "艾克米",
    name_en: str = "Acme",
    timezone: str = "Asia/Shanghai",
) -> TenantWithKeys:
    """A tenant with one key of each tenant role, committed."""
    now = state.clock()
    with state.database.session(platform=True) as session:
        tenant = tenants.create_tenant(
            session, slug=slug, name_zh=name_zh, name_en=name_en, timezone=timezone, now=now
        )
        keys = {
            role: tenants.create_key(
                session, role=role, tenant_id=tenant.id, name=role.value, now=now
            ).secret
            for role in (Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.APP)
        }
    return TenantWithKeys(tenant, keys)


def make_platform_key(state: AppState) -> str:
    with state.database.session(platform=True) as session:
        return tenants.create_key(
            session, role=Role.PLATFORM, tenant_id=None, now=state.clock()
        ).secret


def run_program(
    client: TestClient,
    tenant: TenantWithKeys,
    text: str,
    *,
    effective_from: str = "2025-01-01T00:00:00+08:00",
) -> int:
    """Load a program through the API and activate it from ``effective_from``: its version id."""
    loaded = client.post("/api/v1/programs", content=text, headers=tenant.headers())
    assert loaded.status_code == 201, loaded.text
    version: int = loaded.json()["version"]["id"]
    activated = client.post(
        f"/api/v1/programs/{version}/activate",
        json={"effective_from": effective_from},
        headers=tenant.headers(),
    )
    assert activated.status_code == 201, activated.text
    return version
