"""CLI: ``memberlab import members|transactions|returns|responses|products|stores FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    app_state,
    err_console,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.i18n import current_language, t
from memberlab.dataio import export
from memberlab.dataio.loaders import ImportOptions, ImportSummary, run_import
from memberlab.dataio.mapping import read_mapping_file

import_app = typer.Typer(
    help="Import client files (CSV in UTF-8/GBK/GB18030, XLSX, Parquet). / 导入客户数据文件。",
    no_args_is_help=True,
)

FileArgument = typer.Argument(..., exists=True, dir_okay=False, help="CSV, XLSX or Parquet.")
MappingOption = typer.Option(
    None, "--mapping", exists=True, dir_okay=False,
    help="YAML file: field -> column header. / 列映射文件（字段: 列标题）。",
)  # fmt: skip
SheetOption = typer.Option(None, "--sheet", help="XLSX sheet (default: the first). / 工作表。")
EncodingOption = typer.Option(
    None, "--encoding", help="Text encoding (default: detected). / 文本编码（默认自动识别）。"
)
AllOrNothingOption = typer.Option(
    False, "--all-or-nothing", help="Load nothing if any row is bad. / 有任何错误行则全部不导入。"
)
DryRunOption = typer.Option(
    False, "--dry-run", help="Show mapping, counts and first errors; write nothing. / 试运行。"
)
RejectsOption = typer.Option(
    None, "--rejects", dir_okay=False,
    help="Where to write rejected rows (default: FILE.rejects.csv). / 错误行文件。",
)  # fmt: skip


def _run(
    kind: str,
    file: Path,
    tenant: str | None,
    mapping: Path | None,
    sheet: str | None,
    encoding: str | None,
    all_or_nothing: bool,
    dry_run: bool,
    rejects: Path | None,
    as_json: bool,
) -> None:
    state = app_state()
    with unit_of_work(tenant) as unit:
        tenant_id = unit.tenant_id
    assert tenant_id is not None
    options = ImportOptions(
        overrides=read_mapping_file(mapping) if mapping else None,
        sheet=sheet,
        encoding=encoding,
        all_or_nothing=all_or_nothing,
        dry_run=dry_run,
        rejects_path=rejects,
        language=current_language(),
    )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=as_json,
        transient=True,
        console=err_console,
    ) as bar:
        task = bar.add_task(file.name, total=None)
        summary = run_import(
            state,
            tenant_id=tenant_id,
            kind=kind,
            path=file,
            options=options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(summary.as_dict())
    else:
        _show(summary)
    if summary.refused:
        raise typer.Exit(1)


def _show(summary: ImportSummary) -> None:
    detail = ""
    if summary.encoding:
        detail = f", {summary.encoding}"
    elif summary.sheet:
        detail = f", {summary.sheet}"
    say("dataio.cli.read_as", format=summary.format.upper(), detail=detail)
    if summary.dry_run:
        print_table(
            [t("dataio.rejects.column"), "→"],
            [(header, field) for field, header in summary.mapping["columns"].items()],
            title=t("dataio.cli.mapping"),
        )
        if summary.mapping["ignored"]:
            say("dataio.cli.ignored", columns=", ".join(summary.mapping["ignored"]))
    say(
        "dataio.cli.summary",
        file=Path(summary.file).name,
        rows=summary.rows,
        loaded=summary.loaded,
        skipped=summary.skipped,
        rejected=summary.rejected,
    )
    if summary.first_rejects:
        print_table(
            [t(f"dataio.rejects.{k}") for k in ("row", "column", "value", "reason")],
            [(r["row"], r["column"], r["value"], r["reason"]) for r in summary.first_rejects],
            title=t("dataio.cli.first_rejects"),
        )
    if summary.refused:
        say("dataio.cli.refused", rejected=summary.rejected)
    if summary.dry_run:
        say("dataio.cli.dry_run")
    if summary.rejects_file:
        say("dataio.cli.rejects_file", path=summary.rejects_file)


def _command(kind: str, help_text: str) -> None:
    def command(
        file: Path = FileArgument,
        tenant: str | None = TenantOption,
        mapping: Path | None = MappingOption,
        sheet: str | None = SheetOption,
        encoding: str | None = EncodingOption,
        all_or_nothing: bool = AllOrNothingOption,
        dry_run: bool = DryRunOption,
        rejects: Path | None = RejectsOption,
        as_json: bool = JsonOption,
    ) -> None:
        _run(kind, file, tenant, mapping, sheet, encoding, all_or_nothing, dry_run, rejects,
             as_json)  # fmt: skip

    command.__doc__ = help_text
    import_app.command(kind)(command)


_command("members", "Members and their profiles. / 会员及其资料。")
_command(
    "transactions",
    "Purchases (order or line level) and returns, applied through the program's rules; "
    "resumable. / 消费与退货（订单级或商品行级），按会员计划规则入账，可断点续传。",
)
_command("returns", "Returns of earlier orders, by line. / 退货（按商品行）。")
_command("responses", "Survey responses (问卷星 exports, generic CSV). / 问卷答卷。")
_command("products", "Products (SKU, names, category, price). / 商品。")
_command("stores", "Stores (code, names, city, opening date). / 门店。")


# --- export ----------------------------------------------------------------------------------

export_app = typer.Typer(
    help="Export stored data to CSV (for Excel), XLSX or Parquet. / 导出数据。",
    no_args_is_help=True,
)
OutArgument = typer.Argument(..., dir_okay=False, help="file.csv | file.xlsx | file.parquet")
FormatOption = typer.Option(None, "--format", help="csv | xlsx | parquet (default: from OUT).")


def _export(
    what: str,
    out: Path,
    tenant: str | None,
    fmt: str | None,
    as_json: bool,
    reveal: bool = False,
    member: str | None = None,
) -> None:
    state = app_state()
    with unit_of_work(tenant) as unit:
        timezone = _timezone(unit)
        session = unit.session
        if what == "members":
            frames = {what: export.members_frame(session, vault=state.vault, reveal=reveal)}
        elif what == "transactions":
            frames = {what: export.transactions_frame(session)}
        elif what == "ledger":
            frames = {what: export.ledger_frame(session, member)}
        elif what == "liability":
            frames = export.liability_frames(session, as_of=unit.now)
        elif what == "stores":
            frames = {what: export.stores_frame(session)}
        elif what == "products":
            frames = {what: export.products_frame(session)}
        else:
            frames = {what: export.responses_frame(session)}
    paths = export.write_tables(frames, out, format=fmt, timezone=timezone)
    rows = sum(f.height for f in frames.values())
    if as_json:
        print_json({"what": what, "rows": rows, "files": [str(p) for p in paths]})
    else:
        for path in paths:
            say("dataio.cli.exported", rows=rows, path=str(path))


def _timezone(unit: Any) -> str:
    from memberlab.programs import service as program_service

    try:
        version = program_service.active_version(unit.session, as_of=unit.now)
    except program_service.NoActiveProgram:
        return unit.state.settings.timezone
    return program_service.definition_of(version).timezone


@export_app.command("members")
def export_members(
    out: Path = OutArgument,
    tenant: str | None = TenantOption,
    fmt: str | None = FormatOption,
    pii: bool = typer.Option(
        False, "--pii", help="Mobile, name, birthday in clear. / 导出明文个人信息。"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Members with tier, points and growth. / 会员及等级、积分、成长值。"""
    _export("members", out, tenant, fmt, as_json, reveal=pii)


@export_app.command("ledger")
def export_ledger(
    out: Path = OutArgument,
    tenant: str | None = TenantOption,
    fmt: str | None = FormatOption,
    member: str | None = typer.Option(None, "--member", help="Only this member. / 仅此会员。"),
    as_json: bool = JsonOption,
) -> None:
    """Ledger entries with running balances. / 积分流水及余额。"""
    _export("ledger", out, tenant, fmt, as_json, member=member)


def _simple_export(what: str, help_text: str) -> None:
    def command(
        out: Path = OutArgument,
        tenant: str | None = TenantOption,
        fmt: str | None = FormatOption,
        as_json: bool = JsonOption,
    ) -> None:
        _export(what, out, tenant, fmt, as_json)

    command.__doc__ = help_text
    export_app.command(what)(command)


_simple_export("transactions", "Purchase and return lines, as imported. / 消费与退货明细。")
_simple_export("liability", "Points outstanding by expiry month; monthly flows. / 积分负债。")
_simple_export("stores", "Stores. / 门店。")
_simple_export("products", "Products. / 商品。")
_simple_export("responses", "Survey responses. / 问卷答卷。")
