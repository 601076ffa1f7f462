"""The demo tenant: a tea-and-coffee chain running the sample program.

``memberlab demo`` calls ``prepare_demo``; later the demo world generator fills it with
members and history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core import tenants as tenant_service
from memberlab.core.access import Role
from memberlab.core.models import Tenant
from memberlab.programs import service as program_service
from memberlab.programs.models import ProgramVersion

DEMO_SLUG = "demo-teahouse"
# The demo program is in force from well before the demo's history starts.
DEMO_PROGRAM_FROM = datetime(2020, 1, 1, tzinfo=UTC)
SAMPLE_PROGRAMS = ("teahouse", "department_store")


def sample_program_text(name: str) -> str:
    """The text of a shipped sample program (``teahouse`` or ``department_store``)."""
    return (
        resources.files("memberlab.programs")
        .joinpath("samples", f"{name}.yaml")
        .read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class DemoTenant:
    tenant: Tenant
    version: ProgramVersion
    admin_key: str


def prepare_demo(session: Session, *, now: datetime, created_by: str) -> DemoTenant:
    """Create (or reuse) the demo tenant with the sample program active; issue an admin key.

    Idempotent apart from the key: a key is only ever shown once, so each run makes one.
    """
    tenant = session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
    if tenant is None:
        tenant = tenant_service.create_tenant(
            session, slug=DEMO_SLUG, name_zh="茶语咖啡（演示）", name_en="Teahouse (demo)", now=now
        )
    session.info["tenant_id"] = tenant.id
    result = program_service.load(
        session, source=sample_program_text("teahouse"), created_by=created_by, now=now
    )
    try:
        active = program_service.active_version(session, as_of=now)
    except program_service.NoActiveProgram:
        active = None
    if active is None or active.id != result.version.id:
        # first time: in force from before the demo's history; later, a changed sample
        # takes over from now
        program_service.activate(
            session,
            version_id=result.version.id,
            effective_from=DEMO_PROGRAM_FROM if active is None else now,
            activated_by=created_by,
            now=now,
        )
    issued = tenant_service.create_key(
        session,
        role=Role.ADMIN,
        tenant_id=tenant.id,
        name="demo admin",
        created_by=created_by,
        now=now,
    )
    return DemoTenant(tenant=tenant, version=result.version, admin_key=issued.secret)
