"""CLI: ``memberlab engagement ...``: the contract's terms, what happens, where it stands,
the evidence and the documents."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    actor,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import current_language, t
from memberlab.core.tenants import get_tenant
from memberlab.engagement import service
from memberlab.engagement.definition import parse_definition_text
from memberlab.engagement.events import EventKind

engagement_app = typer.Typer(
    help="Engagements: contract terms, events, status, evidence, documents. / 咨询项目合同。",
    no_args_is_help=True,
)
evidence_app = typer.Typer(
    help="Proof of performance in a hash chain. / 履约证明材料（哈希链）。", no_args_is_help=True
)
engagement_app.add_typer(evidence_app, name="evidence")
FileArgument = typer.Argument(..., exists=True, dir_okay=False, help="YAML or JSON.")


def _read(file: Path):  # type: ignore[no-untyped-def]
    return parse_definition_text(file.read_text(encoding="utf-8-sig"))


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(errors=[FieldError(option, "core.v.date", {"value": value})]) from None


def _today(unit) -> dt.date:  # type: ignore[no-untyped-def]
    zone = get_tenant(unit.session, unit.tenant_id).timezone
    return unit.now.astimezone(ZoneInfo(zone)).date()


@engagement_app.command("validate")
def validate_command(file: Path = FileArgument) -> None:
    """Check an engagement file; every problem with its field and line. / 校验合同文件。"""
    spec = _read(file)
    say("engagement.cli.valid", number=spec.contract_number)


@engagement_app.command("create")
def create_command(file: Path = FileArgument, tenant: str | None = TenantOption) -> None:
    """Store a new engagement from its file (version 1). / 创建项目。"""
    spec = _read(file)
    with unit_of_work(tenant) as unit:
        service.create(unit.session, spec, actor=actor(), now=unit.now)
    say("engagement.cli.created", number=spec.contract_number)


@engagement_app.command("list")
def list_command(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """Every engagement. / 全部项目。"""
    with unit_of_work(tenant) as unit:
        rows = [
            (e.contract_number, e.status, e.current_version)
            for e in service.list_engagements(unit.session)
        ]
    if as_json:
        print_json([dict(zip(("contract_number", "status", "version"), r, strict=True))
                    for r in rows])  # fmt: skip
        return
    print_table(
        [t("engagement.cli.number"), t("engagement.cli.status"), t("engagement.cli.version")], rows
    )


@engagement_app.command("record")
def record_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    kind: EventKind = typer.Argument(..., help="signed, payment, submission, acceptance, ..."),
    on: str = typer.Option(..., "--on", help="The day it happened, YYYY-MM-DD."),
    data: str = typer.Option("{}", "--data", help='The details as JSON, e.g. {"amount": "1.00"}.'),
    key: str | None = typer.Option(None, "--key", help="Makes a retry harmless."),
    tenant: str | None = TenantOption,
) -> None:
    """Record what happened: signing, a payment, a submission, an acceptance, ...
    / 记录合同履行事项。"""
    day = _date(on, "--on")
    assert day is not None
    try:
        payload: Any = json.loads(data)
    except ValueError as error:
        raise InvalidInput(
            errors=[FieldError("--data", "core.v.json", {"detail": str(error)})]
        ) from None
    if not isinstance(payload, dict):
        raise InvalidInput(errors=[FieldError("--data", "core.v.mapping", {"value": data[:40]})])
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        recorded = service.record(
            unit.session, engagement, kind=kind, on=day, payload=payload, key=key,
            actor=actor(), now=unit.now, today=_today(unit),
        )  # fmt: skip
    say(
        "engagement.cli.replayed" if recorded.replayed else "engagement.cli.recorded",
        kind=kind.value,
        on=day.isoformat(),
    )


@engagement_app.command("approve")
def approve_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    code: str = typer.Argument(..., help="The change request's code. / 变更编号。"),
    file: Path = FileArgument,
    on: str = typer.Option(..., "--on", help="The day it was agreed, YYYY-MM-DD."),
    decided_by: str = typer.Option(..., "--by", help="Who agreed for the client."),
    tenant: str | None = TenantOption,
) -> None:
    """Agree a change request: the file's terms become the next version.
    / 批准变更申请：文件中的条款成为新版本。"""
    from memberlab.programs.validation import load_document

    day = _date(on, "--on")
    assert day is not None
    _read(file)  # every problem of the file, with its line, before anything is stored
    data, _ = load_document(file.read_text(encoding="utf-8-sig"))
    data = json.loads(json.dumps(data, default=str))
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        version = service.approve_change(
            unit.session, engagement, code=code, new_terms=data, on=day, decided_by=decided_by,
            actor=actor(), now=unit.now, today=_today(unit),
        )  # fmt: skip
        made = version.version
    say("engagement.cli.approved", code=code, version=made)


@engagement_app.command("measure")
def measure_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    code: str = typer.Argument(..., help="The standard's code. / 评估标准代码。"),
    on: str | None = typer.Option(None, "--on", help="Day of the assessment (default today)."),
    tenant: str | None = TenantOption,
) -> None:
    """Measure a standard (NPS, repeat rate, ...) from the data and record the assessment.
    / 由数据测量评估标准并记录。"""
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        zone = get_tenant(unit.session, unit.tenant_id).timezone
        today = _today(unit)
        recorded = service.measure_standard(
            unit.session, engagement, code, on=_date(on, "--on") or today, timezone=zone,
            actor=actor(), now=unit.now, today=today,
        )  # fmt: skip
        payload = dict(recorded.event.payload)
    say("engagement.cli.measured", standard=code, value=payload["value"], note=payload["note"])


@engagement_app.command("reminders")
def reminders_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    days: int = typer.Option(7, "--days", min=1, max=366),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (default today)."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """What falls due in the next days: payments, deliverables, acceptance windows, training.
    / 近期到期事项提醒。"""
    from memberlab.engagement.status import reminders

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        day = _date(as_of, "--as-of") or _today(unit)
        found = service.status(unit.session, engagement, day)
        due = reminders(service.terms(unit.session, engagement), found, days=days)
    if as_json:
        print_json([{"on": r.on.isoformat(), "kind": r.kind, "subject": r.subject,
                     "side": r.side} for r in due])  # fmt: skip
        return
    if not due:
        say("engagement.cli.no_reminders", days=days)
    for reminder in due:
        typer.echo(reminder.message().render(current_language()))


@engagement_app.command("status")
def status_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (default today)."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Payments due and overdue, deliverables, standards, breaches with their amounts.
    / 付款、交付、评估与违约情况。"""
    from memberlab.engagement.router import status_view

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        day = _date(as_of, "--as-of") or _today(unit)
        found = service.status(unit.session, engagement, day)
    view = status_view(found, current_language())
    if as_json:
        print_json(view)
        return
    print_table(
        [t("engagement.cli.instalment"), t("engagement.cli.due"), t("engagement.cli.payable"),
         t("engagement.cli.paid"), t("engagement.cli.status")],
        [(i["code"], i["due"] or "-", i["payable"], i["paid"], i["state"])
         for i in view["instalments"]],
        title=t("engagement.cli.payments", number=number, as_of=view["as_of"]),
    )  # fmt: skip
    print_table(
        [t("engagement.cli.deliverable"), t("engagement.cli.due"), t("engagement.cli.status"),
         t("engagement.cli.late_days")],
        [(d["code"], d["due"], d["state"], d["late_days"]) for d in view["deliverables"]],
    )  # fmt: skip
    for breach in view["breaches"]:
        say("engagement.cli.breach", description=breach["description"])
    say("engagement.cli.owed", **view["penalties_owed"])


# --- documents -----------------------------------------------------------------------------------


def _writer(out: Path, kind: str):  # type: ignore[no-untyped-def]
    from memberlab.engagement import documents

    suffix = out.suffix.lower()
    if suffix not in (".docx", ".pdf"):
        raise InvalidInput(
            errors=[FieldError("out", "core.v.choice", {"value": suffix or out.name,
                                                        "expected": ".docx, .pdf"})]
        )  # fmt: skip
    if kind == "contract":
        return documents.contract_docx if suffix == ".docx" else documents.contract_pdf
    if suffix == ".docx":
        return documents.supplementary_agreement_docx
    return documents.supplementary_agreement_pdf


@engagement_app.command("contract")
def contract_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    out: Path = typer.Argument(..., dir_okay=False, help="contract.docx or contract.pdf"),
    version: int | None = typer.Option(None, "--version", help="Default: the terms in force."),
    tenant: str | None = TenantOption,
) -> None:
    """Write the filled contract (DOCX or PDF) in the chosen language. / 生成合同文本。"""
    write = _writer(out, "contract")
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        chosen = version or engagement.current_version
        spec = service.terms(unit.session, engagement, chosen)
        now = unit.now
    written = write(spec, current_language(), out, version=chosen, generated_at=now)
    say("engagement.cli.written", path=str(written))


@engagement_app.command("supplement")
def supplement_command(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    version: int = typer.Argument(..., help="The version an agreed change made. / 变更后版本。"),
    out: Path = typer.Argument(..., dir_okay=False, help="agreement.docx or agreement.pdf"),
    tenant: str | None = TenantOption,
) -> None:
    """Write the supplementary agreement of a change (DOCX or PDF). / 生成补充协议。"""
    write = _writer(out, "supplement")
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        rows = {v.version: v for v in service.versions(unit.session, engagement)}
        if version not in rows or version < 2:
            raise InvalidInput(
                errors=[FieldError("version", "engagement.cli.no_change_version",
                                   {"value": version, "versions": ", ".join(map(str, rows))})]
            )  # fmt: skip
        before = service.terms(unit.session, engagement, version - 1)
        after = service.terms(unit.session, engagement, version)
        row = rows[version]
        approved = next(
            (e.on for e in service.events(unit.session, engagement)
             if e.kind is EventKind.CHANGE_APPROVED and e.payload.get("code") == row.change_code),
            row.created_at.date(),
        )  # fmt: skip
        code, reason, now = row.change_code or str(version), row.reason, unit.now
    written = write(before, after, current_language(), out, change_code=code, reason=reason,
                    effective_on=approved, generated_at=now)  # fmt: skip
    say("engagement.cli.written", path=str(written))


@engagement_app.command("handbook")
def handbook_command(
    out: Path = typer.Argument(..., dir_okay=False, help="handbook.pdf or handbook.docx"),
    brand: str | None = typer.Option(None, "--brand", help="Printed under the title."),
    tenant: str | None = TenantOption,
) -> None:
    """The staff handbook of the program in force (rules, tiers, benefits, points, FAQ).
    / 由现行会员计划生成员工手册。"""
    from memberlab.engagement.handbook import handbook_docx, handbook_pdf
    from memberlab.programs import service as programs

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".docx"):
        raise InvalidInput(
            errors=[FieldError("out", "core.v.choice", {"value": suffix or out.name,
                                                        "expected": ".pdf, .docx"})]
        )  # fmt: skip
    with unit_of_work(tenant) as unit:
        program = programs.definition_of(programs.active_version(unit.session, as_of=unit.now))
        now = unit.now
    write = handbook_pdf if suffix == ".pdf" else handbook_docx
    written = write(program, current_language(), out, brand=brand, generated_at=now)
    say("engagement.cli.written", path=str(written))


# --- evidence ------------------------------------------------------------------------------------


def evidence_root(unit) -> Path:  # type: ignore[no-untyped-def]
    return Path(unit.state.settings.data_dir) / "evidence"


@evidence_app.command("add")
def evidence_add(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False),
    kind: str = typer.Option(..., "--kind", help="deliverable, acceptance, assessment, ..."),
    title: str = typer.Option(..., "--title"),
    tenant: str | None = TenantOption,
) -> None:
    """Add a file to the engagement's evidence chain. / 添加履约证明材料。"""
    from memberlab.engagement.evidence import add_evidence

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        item = add_evidence(
            unit.session, evidence_root(unit), engagement_pk=engagement.id, kind=kind,
            title=title, uploaded_by=actor(), now=unit.now, source_path=file,
        )  # fmt: skip
        seq, digest = item.seq, item.sha256
    say("engagement.cli.evidence_added", seq=seq, sha256=digest)


@evidence_app.command("verify")
def evidence_verify(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    tenant: str | None = TenantOption,
) -> None:
    """Check every stored file and the chain; exit code 1 when anything changed.
    / 校验全部材料与哈希链。"""
    from memberlab.engagement.evidence import verify

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        report = verify(unit.session, evidence_root(unit), engagement.id)
    typer.echo(report.render(current_language()))
    if not report.ok:
        raise typer.Exit(1)


@evidence_app.command("export")
def evidence_export(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    out: Path = typer.Argument(..., help="bundle.zip, or a folder. / 输出。"),
    tenant: str | None = TenantOption,
) -> None:
    """Write the proof of performance: index.pdf, manifest.json and the files.
    / 导出履约证明材料包。"""
    from memberlab.engagement.evidence import export_bundle

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        written = export_bundle(
            unit.session, evidence_root(unit), engagement.id, out, lang=current_language(),
            definition=service.terms(unit.session, engagement), now=unit.now,
        )  # fmt: skip
    say("engagement.cli.exported", path=str(written))


@evidence_app.command("check")
def evidence_check(bundle: Path = typer.Argument(..., exists=True)) -> None:
    """Check an exported bundle on its own, without the database. / 校验导出的材料包。"""
    from memberlab.engagement.evidence import verify_bundle

    report = verify_bundle(bundle)
    typer.echo(report.render(current_language()))
    if not report.ok:
        raise typer.Exit(1)


# --- the needs questionnaire ---------------------------------------------------------------------

questionnaire_app = typer.Typer(
    help="The needs questionnaire: public link, import, answers. / 需求调查表。",
    no_args_is_help=True,
)
engagement_app.add_typer(questionnaire_app, name="questionnaire")


@questionnaire_app.command("link")
def questionnaire_link(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    language: str | None = typer.Option(None, "--language", help="zh-CN or en (page language)."),
    days: int | None = typer.Option(None, "--days", min=1, max=365, help="Valid for (days)."),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """A public link for the client to answer the questionnaire once (replaces an open one).
    / 生成需求调查表的公开链接（仅可提交一次）。"""
    from memberlab.engagement.answers import issue_link

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        issued = issue_link(
            unit.session,
            engagement,
            base_url=unit.state.settings.resolved_public_url,
            actor=actor(),
            now=unit.now,
            language=language,
            valid_days=days,
        )
        url, expires, lang = issued.url, issued.link.expires_at, issued.link.language
    if as_json:
        print_json({"url": url, "expires_at": expires, "language": lang})
        return
    say("engagement.cli.link", url=url, expires=expires.isoformat(timespec="minutes"))


@questionnaire_app.command("show")
def questionnaire_show(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """The client's answers (the latest set) and the links sent. / 查看需求调查表回答。"""
    from memberlab.engagement.answers import view

    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        found = view(unit.session, engagement, lang=current_language(), now=unit.now)
    if as_json:
        print_json(found)
        return
    latest = found["latest"]
    if latest is None:
        say("engagement.cli.no_answers", number=number)
    else:
        say(
            "engagement.cli.answered",
            on=latest["on"],
            by=latest["answered_by"],
            source=t(f"engagement.page.source_{latest['source']}"),
            seq=latest["evidence_seq"] or "-",
        )
        print_table(
            [t("engagement.page.question"), t("engagement.page.answer")],
            [(a["question"], a["text"]) for a in latest["answers"]],
            title=found["questionnaire"]["title"],
        )
    for link in found["links"]:
        say(
            "engagement.cli.link_state",
            created=link["created_at"][:16],
            state=t(f"engagement.cli.link_{link['state']}"),
            expires=link["expires_at"][:16],
        )


@questionnaire_app.command("import")
def questionnaire_import(
    number: str = typer.Argument(..., help="Contract number. / 合同编号。"),
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="YAML, JSON, CSV or XLSX. / 回答文件。"
    ),
    on: str | None = typer.Option(None, "--on", help="The day the client handed it in."),
    answered_by: str | None = typer.Option(None, "--by", help="Who answered for the client."),
    row: int | None = typer.Option(None, "--row", help="Sheet row, when it has several."),
    tenant: str | None = TenantOption,
) -> None:
    """Import the client's answers from a file; every bad answer is named, nothing is stored
    then. / 导入需求调查表回答（有误则逐项指出，不做任何保存）。"""
    from memberlab.engagement.answers import import_answers, read_answers_file

    found = read_answers_file(file, row=row)
    day = _date(on, "--on") or found.on
    with unit_of_work(tenant) as unit:
        engagement = service.get(unit.session, number)
        submitted = import_answers(
            unit.session,
            engagement,
            found.form,
            actor=actor(),
            now=unit.now,
            evidence_root=evidence_root(unit),
            on=day,
            answered_by=answered_by or found.answered_by,
            lines=found.lines,
            language=found.language,
        )
        on_day, seq = submitted.event.happened_on, submitted.evidence_seq
    say(
        "engagement.cli.answers_replayed"
        if submitted.replayed
        else "engagement.cli.answers_imported",
        count=len(submitted.answers),
        on=on_day.isoformat(),
        seq=seq or "-",
    )


@questionnaire_app.command("template")
def questionnaire_template(
    out: Path = typer.Argument(..., dir_okay=False, help="answers.csv or answers.yaml"),
) -> None:
    """Write the questionnaire as a file to fill in and import (CSV for Excel, or YAML).
    / 导出可填写后导入的需求调查表文件。"""
    import csv

    from memberlab.engagement.answers import template_rows
    from memberlab.engagement.questionnaire import default_questionnaire

    definition = default_questionnaire()
    lang = current_language()
    rows = template_rows(definition, lang)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as handle:  # Excel reads the BOM
            writer = csv.writer(handle)
            writer.writerow(
                ["id", t("engagement.page.question"), t("engagement.cli.choices"), "answer"]
            )
            writer.writerows(rows)
    elif suffix in (".yaml", ".yml"):
        lines = [
            f"# {definition.title.get(lang)} ({definition.reference})",
            f"# {t('engagement.cli.template_hint')}",
            "answered_by:",
            "answered_on:",
            "answers:",
        ]
        for question_id, text, hint, _ in rows:
            comment = f"{text}" + (f" - {hint}" if hint else "")
            lines.append(f"  {question_id}:  # {comment}")
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        raise InvalidInput(
            errors=[
                FieldError(
                    "out", "core.v.choice", {"value": suffix or out.name, "expected": ".csv, .yaml"}
                )
            ]
        )
    say("engagement.cli.written", path=str(out))


# --- the tenant's holiday table ------------------------------------------------------------------

holidays_app = typer.Typer(
    help="The tenant's holiday table over the built-in one. / 自定义节假日表。",
    no_args_is_help=True,
)
engagement_app.add_typer(holidays_app, name="holidays")


@holidays_app.command("set")
def holidays_set(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="In the form of holidays_cn.yaml."
    ),
    source: str = typer.Option(..., "--source", help="Where the table comes from. / 来源。"),
    tenant: str | None = TenantOption,
) -> None:
    """Store a holiday override (checked like the built-in table, every problem with its line);
    every due date then uses it. / 保存自定义节假日表，到期日按其计算。"""
    from memberlab.engagement import holidays

    text = file.read_text(encoding="utf-8-sig")
    with unit_of_work(tenant) as unit:
        row = holidays.store(
            unit.session, text=text, source=source, actor=actor(), now=unit.now, file_name=file.name
        )
        version, dated = row.calendar_version, row.dated
    say("engagement.cli.holidays_set", version=version, source=source, dated=dated.isoformat())


@holidays_app.command("show")
def holidays_show(tenant: str | None = TenantOption, as_json: bool = JsonOption) -> None:
    """The calendar in use: its version, the override and its source, the years it knows.
    / 当前使用的工作日历。"""
    from memberlab.engagement import holidays

    with unit_of_work(tenant) as unit:
        found = holidays.view(unit.session)
    if as_json:
        print_json(found)
        return
    say("engagement.cli.calendar", version=found["calendar_version"])
    override = found["override"]
    if override is None:
        say("engagement.cli.no_override")
    else:
        say(
            "engagement.cli.override",
            label=override["label"],
            source=override["source"],
            dated=override["dated"],
            by=override["uploaded_by"],
            at=override["uploaded_at"][:16],
        )
    print_table(
        [t("engagement.cli.year"), t("engagement.cli.published"), t("engagement.cli.overridden")],
        [
            (y["year"], "✓" if y["published"] else "-", "✓" if y["overridden"] else "-")
            for y in found["years"]
        ],
    )


@holidays_app.command("remove")
def holidays_remove(tenant: str | None = TenantOption) -> None:
    """Stop using the override: the built-in table alone applies. / 停用自定义节假日表。"""
    from memberlab.engagement import holidays

    with unit_of_work(tenant) as unit:
        holidays.remove(unit.session, actor=actor(), now=unit.now)
    say("engagement.cli.holidays_removed")
