"""HTTP routes for data in and out: ``POST /imports/{kind}`` (the file as the request body)
and ``GET /exports/{what}`` (a file in the asked format)."""

from __future__ import annotations

import secrets
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from memberlab.core.access import Permission
from memberlab.core.errors import FieldError, Forbidden, InvalidInput
from memberlab.core.i18n import current_language
from memberlab.core.web import RequestContext, requires
from memberlab.dataio import export
from memberlab.dataio.loaders import ImportOptions, run_import
from memberlab.programs import service as program_service

router = APIRouter(tags=["data"])

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


class ImportKindName(StrEnum):
    MEMBERS = "members"
    TRANSACTIONS = "transactions"
    RETURNS = "returns"
    RESPONSES = "responses"
    PRODUCTS = "products"
    STORES = "stores"


class ExportName(StrEnum):
    MEMBERS = "members"
    TRANSACTIONS = "transactions"
    LEDGER = "ledger"
    LIABILITY = "liability"
    STORES = "stores"
    PRODUCTS = "products"
    RESPONSES = "responses"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


@router.post(
    "/imports/{kind}",
    summary="Import a client file (CSV in UTF-8/GBK/GB18030, XLSX or Parquet) sent as the body",
    description=(
        "Send the file's bytes as the request body. Headers in Chinese or English are "
        "recognised; bad rows are reported with row, column, value and reason (``rejects``), "
        "the good ones load, unless ``all_or_nothing``. Importing the same file again "
        "changes nothing."
    ),
)
async def post_import(
    kind: ImportKindName,
    request: Request,
    ctx: Annotated[RequestContext, requires(Permission.DATA_IMPORT)],
    file_name: Annotated[str, Query(max_length=200)] = "upload",
    sheet: str | None = None,
    encoding: str | None = None,
    all_or_nothing: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    body = await request.body()
    if not body:
        raise InvalidInput(errors=[FieldError("body", "dataio.file.empty")])
    if len(body) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            errors=[
                FieldError("body", "dataio.upload.too_big", {"limit_mb": MAX_UPLOAD_BYTES >> 20})
            ]
        )
    ctx.session.commit()  # the import works in its own transactions
    assert ctx.principal.tenant_id is not None
    with tempfile.TemporaryDirectory(prefix="memberlab-upload-") as folder:
        safe_name = Path(file_name).name or "upload"
        path = Path(folder) / safe_name
        path.write_bytes(body)
        rejects_path = Path(folder) / "rejects.csv"
        summary = await run_in_threadpool(
            run_import,
            ctx.state,
            tenant_id=ctx.principal.tenant_id,
            kind=kind.value,
            path=path,
            options=ImportOptions(
                sheet=sheet,
                encoding=encoding,
                all_or_nothing=all_or_nothing,
                dry_run=dry_run,
                rejects_path=rejects_path,
                language=current_language(),
            ),
        )
        rejects = _read_rejects(rejects_path) if summary.rejects_file else []
    answer = summary.as_dict()
    answer["file"] = safe_name
    answer["rejects_file"] = None
    answer["rejects"] = rejects
    return answer


def _read_rejects(path: Path) -> list[dict[str, Any]]:
    import polars as pl

    frame = pl.read_csv(path, infer_schema=False)
    frame.columns = ["row", "column", "value", "code", "reason"]
    return [{**r, "row": int(r["row"]) if r["row"] else None} for r in frame.head(1000).to_dicts()]


@router.get(
    "/exports/{what}",
    summary="Export stored data as CSV (UTF-8 with BOM, for Excel), XLSX or Parquet",
    response_class=FileResponse,
)
def get_export(
    what: ExportName,
    ctx: Annotated[RequestContext, requires(Permission.REPORTS_READ)],
    background: BackgroundTasks,
    format: ExportFormat = ExportFormat.CSV,
    pii: bool = False,
    member_id: str | None = None,
) -> FileResponse:
    if pii and not ctx.principal.can(Permission.MEMBERS_PII):
        raise Forbidden(
            "core.auth.role_refused",
            role=ctx.principal.role.value,
            permission=Permission.MEMBERS_PII.value,
        )
    session = ctx.session
    if what == ExportName.MEMBERS:
        frames = {"members": export.members_frame(session, vault=ctx.state.vault, reveal=pii)}
    elif what == ExportName.TRANSACTIONS:
        frames = {"transactions": export.transactions_frame(session)}
    elif what == ExportName.LEDGER:
        frames = {"ledger": export.ledger_frame(session, member_id)}
    elif what == ExportName.LIABILITY:
        frames = export.liability_frames(session, as_of=ctx.now)
    elif what == ExportName.STORES:
        frames = {"stores": export.stores_frame(session)}
    elif what == ExportName.PRODUCTS:
        frames = {"products": export.products_frame(session)}
    else:
        frames = {"responses": export.responses_frame(session)}
    try:
        version = program_service.active_version(session, as_of=ctx.now)
        timezone = program_service.definition_of(version).timezone
    except program_service.NoActiveProgram:
        timezone = ctx.state.settings.timezone
    folder = Path(tempfile.mkdtemp(prefix="memberlab-export-"))
    name = f"{what.value}.{format.value}"
    if len(frames) > 1 and format != ExportFormat.XLSX:
        # several tables: one file needs sheets; CSV and Parquet get the first table
        frames = dict([next(iter(frames.items()))])
    paths = export.write_tables(frames, folder / name, format=format.value, timezone=timezone)
    background.add_task(_remove, folder)
    return FileResponse(
        paths[0],
        media_type=MEDIA_TYPES[format.value],
        filename=f"{what.value}-{secrets.token_hex(3)}.{format.value}",
    )


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
