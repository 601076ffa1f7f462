"""Pages of the engagement: the page for the consultancy's staff (where a contract stands, read
from the API with the staff member's key) and the public needs-questionnaire page of a link
(``/q/<token>``: no login, made for a phone, in zh-CN or en).

Templates are Jinja2 with autoescaping on, so an answer with a ``<script>`` in it is shown as
text; the staff page fills its tables with ``textContent`` for the same reason. The public
page has no script at all, and fetches nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from memberlab.core.errors import InvalidInput, MemberLabError
from memberlab.core.i18n import Language, t
from memberlab.core.pages import APP_HEADERS, page_language, render, script_strings
from memberlab.core.web import state_of
from memberlab.engagement import answers
from memberlab.engagement.questionnaire import QuestionnaireDefinition, QuestionType

router = APIRouter(include_in_schema=False)

STRINGS = (
    "key",
    "number",
    "as_of",
    "load",
    "payments",
    "instalment",
    "due",
    "payable",
    "paid",
    "state",
    "deliverables",
    "deliverable",
    "late_days",
    "breaches",
    "owed",
    "state_paid",
    "state_overdue",
    "state_due",
    "state_awaiting_trigger",
    "state_not_due",
    "state_paid_late",
    "state_pending",
    "state_submitted",
    "state_accepted",
    "state_deemed_accepted",
    "state_rejected",
    "questionnaire",
    "question",
    "answer",
    "no_answers",
    "answered",
    "new_link",
    "link_made",
    "source_link",
    "source_import",
    "source_manual",
)


@router.get("/app/engagements", response_class=HTMLResponse)
def engagement_page(request: Request) -> HTMLResponse:
    lang = page_language(request, state_of(request).settings.language)
    strings = {name: t(f"engagement.page.{name}", lang) for name in STRINGS}
    strings["lang"] = lang
    return render(
        "engagement.html",
        200,
        APP_HEADERS,
        lang=lang,
        main_class="wide",
        title=t("engagement.page.title", lang),
        t=strings,
        strings_json=script_strings(strings),
    )


# --- the public questionnaire page -------------------------------------------------------------


def _message(lang: Language, status: int, title_key: str, message: str) -> HTMLResponse:
    return render("message.html", status, lang=lang, title=t(title_key, lang), message=message)


def _sections(
    definition: QuestionnaireDefinition,
    lang: Language,
    form: Mapping[str, list[str]],
    errors: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The questions grouped by section, in order, with what was given and what is wrong."""
    groups: list[dict[str, Any]] = []
    for question in definition.questions:
        section = definition.section(question.section)
        title = section.title.get(lang) if section else None
        if not groups or groups[-1]["code"] != question.section:
            groups.append({"code": question.section, "title": title, "questions": []})
        kind = question.type
        item: dict[str, Any] = {
            "id": question.id,
            "text": question.text.get(lang),
            "help": question.help.get(lang) if question.help else None,
            "required": question.required,
            "given": form.get(question.id, []),
            "error": errors.get(question.id),
            "kind": kind.value,
        }
        if kind in (QuestionType.CHOICE, QuestionType.MULTI_CHOICE):
            item["options"] = [{"code": o.code, "text": o.text.get(lang)} for o in question.options]
        elif kind is QuestionType.NUMBER:
            item["unit"] = question.unit.get(lang) if question.unit else None
            item["inputmode"] = "numeric" if question.integer else "decimal"
        else:
            item.update(
                multiline=question.multiline,
                max_length=question.max_length,
                input_type={"email": "email", "phone": "tel"}.get(question.format or "", "text"),
            )
        groups[-1]["questions"].append(item)
    return groups


def _questionnaire_page(
    opened: answers.OpenLink,
    lang: Language,
    form: Mapping[str, list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    definition = opened.definition
    return render(
        "questionnaire.html",
        status,
        lang=lang,
        title=definition.title.get(lang),
        intro=definition.intro.get(lang) if definition.intro else None,
        contract=opened.engagement.contract_number,
        sections=_sections(definition, lang, form or {}, errors or {}),
        errors=bool(errors),
        t={
            "submit": t("engagement.qpage.submit", lang),
            "fix": t("engagement.qpage.fix", lang, count=len(errors or {})),
            "required": t("engagement.qpage.required", lang),
            "contract": t("engagement.qpage.contract", lang),
        },
    )


def _link_problem(error: MemberLabError, lang: Language) -> HTMLResponse:
    if isinstance(error, answers.LinkUnknown):
        status, title, text = 404, "engagement.qpage.unknown_title", "engagement.qpage.unknown"
    elif isinstance(error, answers.LinkUsed):
        status, title, text = 410, "engagement.qpage.used_title", "engagement.qpage.used"
    elif isinstance(error, answers.LinkReplaced):
        status, title, text = 410, "engagement.qpage.replaced_title", "engagement.qpage.replaced"
    elif isinstance(error, answers.LinkExpired):
        status, title, text = 410, "engagement.qpage.expired_title", "engagement.qpage.expired"
    else:
        raise error
    return _message(lang, status, title, t(text, lang))


@router.get("/q/{token}", response_class=HTMLResponse)
def questionnaire_page(token: str, request: Request) -> HTMLResponse:
    state = state_of(request)
    lang = page_language(request, None)
    try:
        tenant_id = answers.tenant_of_link(state.database, token)
        with state.database.session(tenant_id=tenant_id) as session:
            opened = answers.open_link(session, token, now=state.clock())
            lang = page_language(request, opened.link.language)
            return _questionnaire_page(opened, lang)
    except answers.LINK_PROBLEMS as error:
        return _link_problem(error, page_language(request, getattr(error, "language", None)))


@router.post("/q/{token}", response_class=HTMLResponse)
async def answer_questionnaire(token: str, request: Request) -> HTMLResponse:
    state = state_of(request)
    lang = page_language(request, None)
    raw = await request.form()
    form = {key: [str(v) for v in raw.getlist(key)] for key in raw}
    evidence_root = Path(state.settings.data_dir) / "evidence"
    try:
        tenant_id = answers.tenant_of_link(state.database, token)
        with state.database.session(tenant_id=tenant_id) as session:
            opened = answers.open_link(session, token, now=state.clock())
            lang = page_language(request, opened.link.language)
            thanks = opened.definition.thanks
            try:
                answers.submit_link(
                    session, token, form, now=state.clock(), evidence_root=evidence_root
                )
            except InvalidInput as invalid:
                session.rollback()  # nothing is stored, not even the link's opening
                messages = {e.loc: e.message(lang) for e in invalid.errors}
                return _questionnaire_page(opened, lang, form, messages, status=422)
    except answers.LINK_PROBLEMS as error:
        return _link_problem(error, page_language(request, getattr(error, "language", None)))
    message = thanks.get(lang) if thanks else t("engagement.qpage.thanks", lang)
    return _message(lang, 200, "engagement.qpage.thanks_title", message)
