"""The demo tenant: a tea-and-coffee chain running the sample program.

``memberlab demo`` calls ``prepare_demo`` and then ``build_demo_world``: the generated world
(``datasets.world``) goes in through the same importers and engine a client's files use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from memberlab.core import tenants as tenant_service
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.models import Tenant
from memberlab.dataio.loaders import ImportOptions, ImportSummary, run_import
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


# --- the demo world in the store -------------------------------------------------------------

# What the world's files hold, in the order they are imported (members before their purchases).
WORLD_IMPORTS = (
    ("stores", "stores.parquet"),
    ("products", "products.parquet"),
    ("members", "members.parquet"),
    ("transactions", "transactions.parquet"),
    ("responses", "responses.parquet"),
)


@dataclass
class DemoWorld:
    folder: Path
    generated: bool  # False when an identical world was already on disk
    counts: dict[str, int]
    imported: dict[str, ImportSummary]


def world_folder(data_dir: Path, *, members: int, seed: int) -> Path:
    return data_dir / "demo-world" / f"{members}-members-seed-{seed}"


def build_demo_world(
    state: AppState,
    *,
    tenant_id: int,
    members: int,
    seed: int,
    step: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoWorld:
    """Generate the world (or reuse it) and import it through the importers and the engine.

    Safe to run again: the files are reused when their manifest matches, and every import
    skips what is already stored. The import of purchases brings every member up to now
    (expiry, reviews, birthdays), so the store is current when this returns.
    """
    from memberlab.datasets.world import generate_world

    folder = world_folder(state.settings.data_dir, members=members, seed=seed)
    manifest_path = folder / "manifest.json"
    generated = False
    if not _same_world(manifest_path, members=members, seed=seed):
        if step:
            step("generate")
        generate_world(folder, members=members, seed=seed, progress=progress)
        generated = True
    counts = json.loads(manifest_path.read_text(encoding="utf-8"))["counts"]
    imported: dict[str, ImportSummary] = {}
    for kind, name in WORLD_IMPORTS:
        if step:
            step(kind)
        imported[kind] = run_import(
            state,
            tenant_id=tenant_id,
            kind=kind,
            path=folder / name,
            options=ImportOptions(rejects_path=folder / f"{name}.rejects.csv"),
            progress=progress,
        )
    return DemoWorld(folder, generated, counts, imported)


def _same_world(manifest_path: Path, *, members: int, seed: int) -> bool:
    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    from memberlab.datasets.world import GENERATOR, VERSION

    return (
        manifest.get("members") == members
        and manifest.get("seed") == seed
        and manifest.get("generator") == GENERATOR
        and manifest.get("version") == VERSION  # a world of an older generator is made again
    )


# --- the experience side of the demo ---------------------------------------------------------

DEMO_SURVEYS = ("after_purchase", "after_case", "relationship")
DEMO_CASE_WINDOW_DAYS = 45  # the history ends in October: open cases for its last weeks


@dataclass(frozen=True)
class DemoExperience:
    surveys: int
    cases_opened: int
    open_cases: int


def prepare_demo_experience(state: AppState, *, tenant_id: int) -> DemoExperience:
    """The sample surveys active, and follow-up cases for the detractors of the history's last
    weeks (a backlog to work through, many of them overdue). Safe to run again."""
    from importlib import resources

    from memberlab.experience import cases, journey, surveys
    from memberlab.experience.jobs import run_jobs

    now = state.clock()
    folder = resources.files("memberlab.experience") / "samples"
    with state.database.session(tenant_id=tenant_id) as session:
        journey.ensure_defaults(session)
        for name in DEMO_SURVEYS:
            definition = surveys.parse_definition_text(
                folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
            )
            existing = {s.code: s for s in surveys.list_surveys(session)}
            if definition.code not in existing:
                surveys.save_survey(session, definition, now=now, actor="demo")
            if existing.get(definition.code) is None or existing[definition.code].status == "draft":
                surveys.set_status(session, definition.code, surveys.SurveyStatus.ACTIVE, now=now)
        journey.update_rules(
            session, journey.SettingsUpdate(case_window_days=DEMO_CASE_WINDOW_DAYS), now=now
        )
        report = run_jobs(session, as_of=now, base_url=state.settings.resolved_public_url)
        measures = cases.measures(session, now=now)
    return DemoExperience(len(DEMO_SURVEYS), report.cases_opened, measures.open)
