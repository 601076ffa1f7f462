"""CLI: ``memberlab program validate|load|activate|show|list|diff``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    Unit,
    actor,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import t
from memberlab.core.tenants import get_tenant
from memberlab.programs import service
from memberlab.programs.schemas import (
    Activation,
    Change,
    LoadedProgram,
    ProgramVersionDetail,
    ProgramVersionSummary,
)
from memberlab.programs.validation import InvalidProgram, parse_program_text

program_app = typer.Typer(
    help="Program files and versions. / 会员计划文件与版本。", no_args_is_help=True
)


def read_program_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            errors=[
                FieldError(
                    str(path),
                    "programs.file_unreadable",
                    {"path": path, "reason": exc.strerror or exc},
                )
            ]
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            errors=[FieldError(str(path), "programs.file_encoding", {"path": path})]
        ) from None


def _when(value: str | None, unit: Unit) -> datetime:
    """``--effective-from``: now by default; a date-time without a zone is in the tenant's zone."""
    if not value:
        return unit.now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            errors=[FieldError("--effective-from", "core.v.datetime", {"value": value})]
        ) from None
    if moment.tzinfo:
        return moment
    return moment.replace(tzinfo=ZoneInfo(get_tenant(unit.session, unit.tenant_id).timezone))


@program_app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Program file (YAML or JSON). / 计划文件。"),
    as_json: bool = JsonOption,
) -> None:
    """Check a program file; exit 1 with every problem if it is not valid. / 校验计划文件。"""
    source = read_program_file(file)
    try:
        program = parse_program_text(source)
    except InvalidProgram as exc:
        if as_json:
            print_json({"valid": False, "errors": [e.as_dict() for e in exc.errors]})
            raise typer.Exit(1) from None
        raise
    if as_json:
        print_json({"valid": True, "code": program.code, "tiers": len(program.tiers)})
    else:
        say("programs.cli.valid", path=file, code=program.code, tiers=len(program.tiers))


@program_app.command("load")
def load(
    file: Path = typer.Argument(..., help="Program file (YAML or JSON). / 计划文件。"),
    tenant: str | None = TenantOption,
    activate: bool = typer.Option(False, "--activate", help="Also make it active. / 同时启用。"),
    effective_from: str | None = typer.Option(None, help="With --activate: ISO date-time."),
    as_json: bool = JsonOption,
) -> None:
    """Store a program file as a new immutable version. / 载入计划文件为新版本。"""
    source = read_program_file(file)
    with unit_of_work(tenant) as unit:
        result = service.load(unit.session, source=source, created_by=actor(), now=unit.now)
        activation = None
        if activate:
            activation = service.activate(
                unit.session,
                version_id=result.version.id,
                effective_from=_when(effective_from, unit),
                activated_by=actor(),
                now=unit.now,
            )
        loaded = LoadedProgram(
            version=ProgramVersionSummary.model_validate(result.version), created=result.created
        )
    if as_json:
        print_json(
            {
                **loaded.model_dump(mode="json"),
                "activation": Activation.model_validate(activation) if activation else None,
            }
        )
        return
    v = loaded.version
    if loaded.created:
        say("programs.cli.loaded", code=v.code, version=v.version, sha=v.sha256[:12])
    else:
        say("programs.cli.unchanged", code=v.code, version=v.version)
    if activation:
        say(
            "programs.cli.activated",
            code=v.code,
            version=v.version,
            effective_from=activation.effective_from.isoformat(),
        )


@program_app.command("activate")
def activate_cmd(
    ref: str = typer.Argument(..., help="Version id or code@version. / 版本。"),
    tenant: str | None = TenantOption,
    effective_from: str | None = typer.Option(None, help="ISO date-time (default now)."),
    as_json: bool = JsonOption,
) -> None:
    """Make a version the live program from a date. / 启用某个版本。"""
    with unit_of_work(tenant) as unit:
        version = service.find_version(unit.session, ref)
        activation = service.activate(
            unit.session,
            version_id=version.id,
            effective_from=_when(effective_from, unit),
            activated_by=actor(),
            now=unit.now,
        )
        view = Activation.model_validate(activation)
        code, number = version.code, version.version
    if as_json:
        print_json(view)
    else:
        say(
            "programs.cli.activated",
            code=code,
            version=number,
            effective_from=view.effective_from.isoformat(),
        )


@program_app.command("list")
def list_cmd(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """List stored versions. / 列出已存版本。"""
    with unit_of_work(tenant) as unit:
        views = [
            ProgramVersionSummary.model_validate(v) for v in service.list_versions(unit.session)
        ]
    if as_json:
        print_json(views)
        return
    print_table(
        [
            t(f"programs.cli.column.{c}")
            for c in ("id", "code", "version", "sha256", "created", "by")
        ],
        [[v.id, v.code, v.version, v.sha256[:12], v.created_at, v.created_by] for v in views],
    )


@program_app.command("show")
def show(
    ref: str | None = typer.Argument(None, help="Version id or code@version (default: active)."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Show a version (default: the one in force). / 查看版本（默认当前生效版本）。"""
    with unit_of_work(tenant) as unit:
        version = (
            service.find_version(unit.session, ref)
            if ref
            else service.active_version(unit.session, as_of=unit.now)
        )
        view = ProgramVersionDetail.model_validate(version)
        source = version.source
    if as_json:
        print_json(view)
    else:
        typer.echo(source)


@program_app.command("diff")
def diff(
    before: str = typer.Argument(..., help="Version id or code@version."),
    after: str = typer.Argument(..., help="Version id or code@version."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """What changes from one version to another. / 比较两个版本。"""
    with unit_of_work(tenant) as unit:
        a = service.find_version(unit.session, before)
        b = service.find_version(unit.session, after)
        changes = [
            Change(path=c.path, before=c.before, after=c.after)
            for c in service.diff(a.definition, b.definition)
        ]
    if as_json:
        print_json(changes)
        return
    if not changes:
        say("programs.cli.no_difference")
        return
    print_table(
        [t("programs.cli.column.path"), t("programs.cli.column.from"), t("programs.cli.column.to")],
        [[c.path, c.before, c.after] for c in changes],
    )
