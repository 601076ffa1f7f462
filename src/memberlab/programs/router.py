"""HTTP routes for program files: validate, load, list, show, activate, diff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response, status

from memberlab.core.access import Permission
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.tenants import get_tenant
from memberlab.core.web import RequestContext, requires
from memberlab.programs import service
from memberlab.programs.schemas import (
    Activation,
    ActivationCreate,
    ActiveProgram,
    Change,
    LoadedProgram,
    ProgramVersionDetail,
    ProgramVersionSummary,
    ValidationReport,
)
from memberlab.programs.validation import InvalidProgram, parse_program_text

router = APIRouter(prefix="/programs", tags=["programs"])

_FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def program_source(request: Request) -> str:
    """The request body as the text of a program file (YAML or JSON, UTF-8)."""
    raw = await request.body()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            errors=[FieldError("body", "programs.file_encoding", {"path": "body"})]
        ) from None


Source = Annotated[str, Depends(program_source)]


@router.post(
    "/validate",
    response_model=ValidationReport,
    summary="Check a program file without storing it",
    openapi_extra=_FILE_BODY,
)
def validate(
    source: Source, _ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_READ)]
) -> ValidationReport:
    try:
        program = parse_program_text(source)
    except InvalidProgram as exc:
        return ValidationReport(valid=False, errors=[e.as_dict() for e in exc.errors])
    return ValidationReport(valid=True, code=program.code)


@router.post(
    "",
    response_model=LoadedProgram,
    status_code=status.HTTP_201_CREATED,
    summary="Store a program file as a new immutable version",
    openapi_extra=_FILE_BODY,
)
def load(
    source: Source,
    response: Response,
    ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_WRITE)],
) -> LoadedProgram:
    result = service.load(ctx.session, source=source, created_by=ctx.principal.actor, now=ctx.now)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return LoadedProgram(
        version=ProgramVersionSummary.model_validate(result.version), created=result.created
    )


@router.get("", response_model=list[ProgramVersionSummary], summary="List stored versions")
def list_versions(
    ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_READ)],
) -> list[ProgramVersionSummary]:
    return [ProgramVersionSummary.model_validate(v) for v in service.list_versions(ctx.session)]


@router.get("/active", response_model=ActiveProgram, summary="The program in force")
def active(
    ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_READ)],
    as_of: Annotated[datetime | None, Query(description="Default: now")] = None,
) -> ActiveProgram:
    moment = _aware(as_of, ctx) if as_of else ctx.now
    version = service.active_version(ctx.session, as_of=moment)
    activation = [a for a in service.activations(ctx.session) if a.effective_from <= moment][-1]
    return ActiveProgram(
        activation=Activation.model_validate(activation),
        version=ProgramVersionDetail.model_validate(version),
    )


@router.get("/{version_id}", response_model=ProgramVersionDetail, summary="One stored version")
def show(
    version_id: int, ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_READ)]
) -> ProgramVersionDetail:
    return ProgramVersionDetail.model_validate(service.get_version(ctx.session, version_id))


@router.post(
    "/{version_id}/activate",
    response_model=Activation,
    status_code=status.HTTP_201_CREATED,
    summary="Make a version the live program from a date",
)
def activate(
    version_id: int,
    body: ActivationCreate,
    ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_WRITE)],
) -> Activation:
    effective_from = _aware(body.effective_from, ctx) if body.effective_from else ctx.now
    activation = service.activate(
        ctx.session,
        version_id=version_id,
        effective_from=effective_from,
        activated_by=ctx.principal.actor,
        now=ctx.now,
    )
    return Activation.model_validate(activation)


@router.get(
    "/{version_id}/diff/{other_id}",
    response_model=list[Change],
    summary="What changes from one version to another",
)
def diff(
    version_id: int,
    other_id: int,
    ctx: Annotated[RequestContext, requires(Permission.PROGRAMS_READ)],
) -> list[Change]:
    before = service.get_version(ctx.session, version_id)
    after = service.get_version(ctx.session, other_id)
    return [
        Change(path=c.path, before=c.before, after=c.after)
        for c in service.diff(before.definition, after.definition)
    ]


def _aware(moment: datetime, ctx: RequestContext) -> datetime:
    """A date-time without a zone is read in the tenant's zone."""
    if moment.tzinfo:
        return moment
    return moment.replace(tzinfo=ZoneInfo(get_tenant(ctx.session, ctx.tenant_id).timezone))
